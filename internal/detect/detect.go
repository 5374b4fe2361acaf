// Package detect identifies the operating system of a container image from
// its release files, and names the Clair namespace whose vulnerability data
// applies to it.
//
// Sources, first match wins:
//
//  1. etc/os-release, or usr/lib/os-release when the former does not exist
//     (freedesktop rule), if it has an ID.
//  2. etc/lsb-release, if it has a DISTRIB_ID.
//  3. apt sources (etc/apt/sources.list, sources.list.d/*.list one-line
//     and *.sources deb822), if a suite names a Debian or Ubuntu release.
//     When suites disagree, the first entry on a *.debian.org or
//     *.ubuntu.com host wins, else the first entry, in apt's file order.
//  4. etc/debian_version ("12.15", or "trixie/sid" on testing and unstable).
//  5. etc/alpine-release.
//  6. etc/{oracle,almalinux,rocky,centos,fedora,redhat,system}-release, in
//     that order (Oracle Linux also ships a redhat-release naming RHEL); the
//     product named in the text, not the file name, gives the ID.
//
// When os-release has an ID but no VERSION_ID, the first of sources 2–6
// naming the same ID lends its version (and codename, if os-release has
// none).
//
// Codenames (Debian and Ubuntu only): VERSION_CODENAME, then
// UBUNTU_CODENAME, then the built-in table for VERSION_ID, then the first
// word of the VERSION text's "(...)" or ", ..." part ("7 (wheezy)",
// "12.04.5 LTS, Precise Pangolin").
//
// Debian testing and unstable: os-release there has no VERSION_ID, and
// debian_version reads "<codename>/sid" on both. A sid or unstable apt suite
// means unstable (codename sid); a codename suite, or testing resolved by
// the debian_version codename, gives that release's version from the table.
// Without such evidence the release stays without version and the namespace
// is debian:unstable: unstable data reports at least what testing data would.
//
// Namespaces (Clair's naming):
//   - debian:<major>, or debian:unstable without a version;
//   - ubuntu:<YY.MM>;
//   - alpine:v<major.minor>, or alpine:edge for a pre-release version
//     ("3.21.0_alpha20240923") or PRETTY_NAME "... edge"; without a version,
//     the "vX.Y" of PRETTY_NAME;
//   - rhel, centos, oracle (ID ol), rocky, alma (ID almalinux), fedora:
//     <major>; CentOS Stream is centos-stream:<major>, as CentOS Linux data
//     does not apply to it;
//   - amzn:<major>, or <YYYY.MM> for Amazon Linux AMI (2011–2018 releases);
//   - opensuse-leap:<major.minor> (also for the old ID opensuse when NAME
//     says Leap);
//   - any other ID: <ID>:<VERSION_ID> verbatim; none without a version.
//
// A release file that does not exist is skipped; one that is not a regular
// file, is larger than its bound (64 KiB, apt sources 256 KiB, lines 8 KiB,
// 128 files in sources.list.d) or cannot be read is an error, as is an os-release or lsb-release that
// does not parse. Unrecognised content in the other files is skipped.
package detect

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/vigil-scanner/vigil/internal/model"
)

// rhReleaseFiles are read in this order; see the package comment.
var rhReleaseFiles = []string{
	"etc/oracle-release",
	"etc/almalinux-release",
	"etc/rocky-release",
	"etc/centos-release",
	"etc/fedora-release",
	"etc/redhat-release",
	"etc/system-release",
}

// Patterns are the path.Match patterns, relative to the image root, of every
// file Detect may read.
var Patterns = slices.Concat(
	[]string{"etc/os-release", "usr/lib/os-release", "etc/lsb-release"},
	aptPatterns,
	[]string{"etc/debian_version", "etc/alpine-release"},
	rhReleaseFiles,
)

// Detect identifies the operating system of the image whose root is fsys.
// It returns ok=false, with no error, when no release file identifies one
// (a scratch image, say).
func Detect(fsys fs.FS) (model.Distribution, bool, error) {
	d, ok, err := detect(fsys)
	if err != nil {
		return model.Distribution{}, false, fmt.Errorf("detect: %w", err)
	}
	if !ok {
		return model.Distribution{}, false, nil
	}
	if d.ID == "ubuntu" && d.VersionID == "" {
		d.VersionID, _ = UbuntuVersion(d.VersionCodename)
	}
	d.Namespace = namespace(d)
	return d, true, nil
}

func detect(fsys fs.FS) (model.Distribution, bool, error) {
	d, ok, err := fromOSRelease(fsys)
	if err != nil || (ok && d.VersionID != "") {
		return d, ok, err
	}
	fb, fbOK, err := fromOtherFiles(fsys, d.ID)
	if err != nil || !ok {
		return fb, fbOK, err
	}
	if fbOK {
		d.VersionID = fb.VersionID
		if d.VersionCodename == "" {
			d.VersionCodename = fb.VersionCodename
		}
	}
	return d, true, nil
}

// fromOSRelease reads os-release; ok is false when there is none or it has
// no ID.
func fromOSRelease(fsys fs.FS) (model.Distribution, bool, error) {
	name := "etc/os-release"
	kv, ok, err := readKeyValues(fsys, name)
	if err == nil && !ok {
		name = "usr/lib/os-release"
		kv, ok, err = readKeyValues(fsys, name)
	}
	if err != nil || !ok || kv["ID"] == "" {
		return model.Distribution{}, false, err
	}
	d := model.Distribution{
		ID:              kv["ID"],
		Name:            kv["NAME"],
		VersionID:       kv["VERSION_ID"],
		VersionCodename: kv["VERSION_CODENAME"],
		PrettyName:      kv["PRETTY_NAME"],
		CPE:             kv["CPE_NAME"],
		Source:          name,
	}
	if like := strings.Fields(kv["ID_LIKE"]); len(like) > 0 {
		d.IDLike = like
	}
	if d.VersionCodename == "" {
		d.VersionCodename = codename(d.ID, kv["UBUNTU_CODENAME"], d.VersionID, kv["VERSION"])
	}
	return d, true, nil
}

// readKeyValues reads and parses an os-release style file; ok is false when
// it does not exist.
func readKeyValues(fsys fs.FS, name string) (map[string]string, bool, error) {
	data, ok, err := readFile(fsys, name, maxReleaseFile)
	if err != nil || !ok {
		return nil, false, err
	}
	kv, err := parseKeyValues(data)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	return kv, true, nil
}

// codename derives the codename of a Debian or Ubuntu release without
// VERSION_CODENAME (see the package comment).
func codename(id, ubuntuCodename, versionID, versionText string) string {
	var table func(string) (string, bool)
	switch id {
	case "debian":
		table = DebianCodename
	case "ubuntu":
		if ubuntuCodename != "" {
			return ubuntuCodename
		}
		table = UbuntuCodename
	default:
		return ""
	}
	if c, ok := table(versionID); ok {
		return c
	}
	text := versionText
	if _, in, ok := strings.Cut(text, "("); ok {
		text, _, _ = strings.Cut(in, ")")
	} else if _, after, ok := strings.Cut(text, ", "); ok {
		text = after
	} else {
		return ""
	}
	word, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	word = strings.ToLower(word)
	if word == "" || strings.Trim(word, "abcdefghijklmnopqrstuvwxyz") != "" {
		return ""
	}
	return word
}

// fromOtherFiles identifies the system from the sources after os-release,
// the first that names id when id is not empty.
func fromOtherFiles(fsys fs.FS, id string) (model.Distribution, bool, error) {
	for _, find := range []func(fs.FS) (model.Distribution, bool, error){
		fromLSBRelease, fromAptSources, fromDebianVersion, fromAlpineRelease, fromRHRelease,
	} {
		d, ok, err := find(fsys)
		if err != nil || ok && (id == "" || d.ID == id) {
			return d, ok, err
		}
	}
	return model.Distribution{}, false, nil
}

func fromLSBRelease(fsys fs.FS) (model.Distribution, bool, error) {
	const name = "etc/lsb-release"
	kv, ok, err := readKeyValues(fsys, name)
	if err != nil || !ok {
		return model.Distribution{}, false, err
	}
	d, ok := lsbDistribution(kv)
	d.Source = name
	return d, ok, nil
}

// lsbDistribution reads the DISTRIB_* keys of lsb-release: the ID is
// DISTRIB_ID lowercased with blanks as "-"; a DISTRIB_RELEASE not starting
// with a digit ("n/a", "testing") and a DISTRIB_CODENAME of "n/a" count as
// absent.
func lsbDistribution(kv map[string]string) (model.Distribution, bool) {
	name := strings.TrimSpace(kv["DISTRIB_ID"])
	if name == "" {
		return model.Distribution{}, false
	}
	d := model.Distribution{
		ID:              strings.ToLower(strings.Join(strings.Fields(name), "-")),
		Name:            name,
		VersionCodename: strings.ToLower(strings.TrimSpace(kv["DISTRIB_CODENAME"])),
		PrettyName:      kv["DISTRIB_DESCRIPTION"],
	}
	if r := strings.TrimSpace(kv["DISTRIB_RELEASE"]); r != "" && r[0] >= '0' && r[0] <= '9' {
		d.VersionID = r
	}
	if d.VersionCodename == "n/a" {
		d.VersionCodename = ""
	}
	if d.VersionCodename == "" {
		d.VersionCodename = codename(d.ID, "", d.VersionID, "")
	}
	return d, true
}

func fromAptSources(fsys fs.FS) (model.Distribution, bool, error) {
	entries, err := aptSources(fsys)
	if err != nil {
		return model.Distribution{}, false, err
	}
	e, id, code, ok := primarySuite(entries)
	if !ok {
		return model.Distribution{}, false, nil
	}
	d := model.Distribution{ID: id, VersionCodename: code, Source: e.file}
	if id == "debian" && code == "" { // testing: the codename is debian_version's
		dv, ok, err := fromDebianVersion(fsys)
		if err != nil {
			return model.Distribution{}, false, err
		}
		if ok && dv.VersionID == "" {
			d.VersionCodename = dv.VersionCodename
		}
	}
	if id == "debian" {
		d.VersionID, _ = DebianVersion(d.VersionCodename)
	} else {
		d.VersionID, _ = UbuntuVersion(d.VersionCodename)
	}
	return d, true, nil
}

// primarySuite picks the entry that names the release (see the package
// comment) and the release its suite names.
func primarySuite(entries []aptEntry) (e aptEntry, id, codename string, ok bool) {
	for _, official := range []bool{true, false} {
		for _, e := range entries {
			if official && !officialArchive(e.uri) {
				continue
			}
			if id, codename, ok := suiteRelease(e.suite); ok {
				return e, id, codename, true
			}
		}
	}
	return aptEntry{}, "", "", false
}

func fromDebianVersion(fsys fs.FS) (model.Distribution, bool, error) {
	return fromReleaseFile(fsys, "etc/debian_version", parseDebianVersion)
}

func fromAlpineRelease(fsys fs.FS) (model.Distribution, bool, error) {
	return fromReleaseFile(fsys, "etc/alpine-release", parseAlpineRelease)
}

func fromRHRelease(fsys fs.FS) (model.Distribution, bool, error) {
	for _, name := range rhReleaseFiles {
		if d, ok, err := fromReleaseFile(fsys, name, parseRHRelease); err != nil || ok {
			return d, ok, err
		}
	}
	return model.Distribution{}, false, nil
}

// fromReleaseFile reads name and parses it with parse.
func fromReleaseFile(fsys fs.FS, name string, parse func([]byte) (model.Distribution, bool)) (model.Distribution, bool, error) {
	data, ok, err := readFile(fsys, name, maxReleaseFile)
	if err != nil || !ok {
		return model.Distribution{}, false, err
	}
	d, ok := parse(data)
	d.Source = name
	return d, ok, nil
}

// namespace names the Clair namespace of d (see the package comment).
func namespace(d model.Distribution) string {
	v := d.VersionID
	switch d.ID {
	case "debian":
		if v == "" {
			return "debian:unstable"
		}
		return prefixed("debian:", major(v))
	case "ubuntu":
		return prefixed("ubuntu:", majorMinor(v))
	case "alpine":
		return prefixed("alpine:", alpineBranch(v, d.PrettyName))
	case "rhel", "fedora", "rocky":
		return prefixed(d.ID+":", major(v))
	case "centos":
		if strings.HasPrefix(d.Name, "CentOS Stream") {
			return prefixed("centos-stream:", major(v))
		}
		return prefixed("centos:", major(v))
	case "ol":
		return prefixed("oracle:", major(v))
	case "almalinux":
		return prefixed("alma:", major(v))
	case "amzn":
		if m, mm := major(v), majorMinor(v); len(m) == 4 && m < "2023" && mm != "" {
			return prefixed("amzn:", mm)
		}
		return prefixed("amzn:", major(v))
	case "opensuse-leap":
		return prefixed("opensuse-leap:", majorMinor(v))
	case "opensuse": // Leap 42.x and 15.0 still used this ID
		if strings.Contains(d.Name, "Leap") {
			return prefixed("opensuse-leap:", majorMinor(v))
		}
	}
	return prefixed(d.ID+":", v)
}

// prefixed returns p+s, or "" when s is empty.
func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// major returns the leading number of v ("8" of "8.10"), or "".
func major(v string) string {
	return v[:len(v)-len(strings.TrimLeft(v, "0123456789"))]
}

// majorMinor returns "<major>.<minor>" of v ("3.11" of "3.11.5"), or "" when
// v does not start so.
func majorMinor(v string) string {
	m := major(v)
	rest, ok := strings.CutPrefix(v[len(m):], ".")
	n := major(rest)
	if m == "" || !ok || n == "" {
		return ""
	}
	return m + "." + n
}

// alpineBranch names the secdb branch of an Alpine version: "v3.11" for
// 3.11.5, "edge" for pre-releases ("3.21.0_alpha20240923"), or, without a
// version, from PRETTY_NAME ("Alpine Linux v3.15", "Alpine Linux edge").
func alpineBranch(version, prettyName string) string {
	last := prettyName[strings.LastIndexByte(prettyName, ' ')+1:]
	if last == "edge" {
		return "edge"
	}
	if version == "" {
		if mm, ok := strings.CutPrefix(last, "v"); ok && majorMinor(mm) == mm {
			return last
		}
		return ""
	}
	if strings.Contains(version, "_") {
		return "edge"
	}
	if mm := majorMinor(version); mm != "" {
		return "v" + mm
	}
	return ""
}
