package detect

import (
	"regexp"
	"strings"

	"github.com/vigil-scanner/vigil/internal/model"
)

// firstLine returns the first non-blank line of data, trimmed.
func firstLine(data []byte) string {
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

var alpineVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?(_[a-z]+[0-9]*)?$`)

// parseAlpineRelease reads etc/alpine-release: a bare version such as
// "3.20.3" or "3.21.0_alpha20240923". Anything else is not recognised.
func parseAlpineRelease(data []byte) (model.Distribution, bool) {
	v := firstLine(data)
	if !alpineVersion.MatchString(v) {
		return model.Distribution{}, false
	}
	return model.Distribution{ID: "alpine", VersionID: v}, true
}

var (
	debianPointRelease = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*(r[0-9]+)?$`)
	debianTestingMark  = regexp.MustCompile(`^([a-z][a-z0-9]*)/sid$`)
)

// parseDebianVersion reads etc/debian_version: a point release ("12.15",
// "6.0.10", "3.1r8") gives that version and the codename of its release; a
// "<codename>/sid" marker, which testing and unstable both carry, gives the
// codename and no version. Anything else is not recognised.
func parseDebianVersion(data []byte) (model.Distribution, bool) {
	v := firstLine(data)
	if debianPointRelease.MatchString(v) {
		c, _ := DebianCodename(v)
		return model.Distribution{ID: "debian", VersionID: v, VersionCodename: c}, true
	}
	if m := debianTestingMark.FindStringSubmatch(v); m != nil {
		return model.Distribution{ID: "debian", VersionCodename: m[1]}, true
	}
	return model.Distribution{}, false
}

// rhProducts maps the product names of Red Hat style release files to
// os-release IDs. Longer names come before their prefixes. "Red Hat Linux"
// is the product Red Hat sold before RHEL (its last release was 9, in 2003);
// it is not RHEL and gets an ID of its own.
var rhProducts = []struct{ name, id string }{
	{"Red Hat Enterprise Linux", "rhel"},
	{"Red Hat Linux", "redhat-linux"},
	{"CentOS", "centos"},
	{"Oracle Linux", "ol"},
	{"Rocky Linux", "rocky"},
	{"AlmaLinux", "almalinux"},
	{"Fedora", "fedora"},
	{"Amazon Linux", "amzn"},
}

var rhReleaseLine = regexp.MustCompile(`^(.+?) release ([0-9]+(?:\.[0-9]+)*)(?:\s|$)`)

// parseRHRelease reads a Red Hat style release file ("CentOS Linux release
// 7.6.1810 (Core)", "Oracle Linux Server release 8.9"): the product before
// " release " gives the ID by rhProducts and is kept as Name, the number after
// it is the version and the whole line is the pretty name. A product not in
// rhProducts is not recognised.
func parseRHRelease(data []byte) (model.Distribution, bool) {
	line := firstLine(data)
	m := rhReleaseLine.FindStringSubmatch(line)
	if m == nil {
		return model.Distribution{}, false
	}
	for _, p := range rhProducts {
		if m[1] == p.name || strings.HasPrefix(m[1], p.name+" ") {
			return model.Distribution{ID: p.id, Name: m[1], VersionID: m[2], PrettyName: line}, true
		}
	}
	return model.Distribution{}, false
}
