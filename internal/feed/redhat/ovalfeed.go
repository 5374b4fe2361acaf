package redhat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/vigil-scanner/vigil/internal/model"
)

// OVAL is the Red Hat OVAL feed (v1 com.redhat.rhsa-RHELn.xml and v2
// rhel-n[-including-unpatched].oval.xml).
type OVAL struct{}

// Name implements feed.Feed.
func (OVAL) Name() string { return "redhat-oval" }

// URLs implements feed.Feed: the v2 streams with unpatched definitions, which
// carry both the fixed (RHSA) and the affected (CVE) definitions.
func (OVAL) URLs() []string {
	var out []string
	for _, n := range []string{"7", "8", "9"} {
		out = append(out, "https://security.access.redhat.com/data/oval/v2/RHEL"+n+"/rhel-"+n+"-including-unpatched.oval.xml.bz2")
	}
	return out
}

var (
	rhelV1Name = regexp.MustCompile(`^com\.redhat\.rhsa-RHEL(\d+)`)
	rhelV2Name = regexp.MustCompile(`^rhel-(\d+)(?:-(.+))?$`)
)

// Sniff implements feed.Feed.
func (OVAL) Sniff(name string, head []byte) bool {
	if !bytes.Contains(head, []byte("<oval_definitions")) {
		return false
	}
	base := StripExt(name)
	return bytes.Contains(head, []byte("Red Hat OVAL")) || rhelV1Name.MatchString(base) || rhelV2Name.MatchString(base)
}

// Parse implements feed.Feed. The scope is redhat-oval/<kind>/rhel-<major>,
// kind being "v1" for com.redhat.rhsa-RHELn, "v2" for rhel-n.oval and
// "v2-<rest>" for rhel-n-<rest>.oval (e.g. v2-including-unpatched);
// other names are used as they are. The major comes from the file name, or
// else from the release guards. Advisories keep the release of their own
// guard: the RHEL 8 v1 file also states RHEL 7 fixes (RHSA-2019:1619 vim),
// which are kept as rhel:7.
func (OVAL) Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, error) {
	base := StripExt(name)
	kind, major := base, ""
	if m := rhelV1Name.FindStringSubmatch(base); m != nil {
		kind, major = "v1", m[1]
	} else if m := rhelV2Name.FindStringSubmatch(base); m != nil {
		kind, major = "v2", m[1]
		if m[2] != "" {
			kind += "-" + m[2]
		}
	}
	opts := OVALOptions{Source: "redhat-oval", IDSource: "RHSA", Platform: rhelPlatform}
	if major != "" {
		opts.Namespace = "rhel:" + major
	}
	sum, err := ParseOVAL(ctx, r, opts, emit)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if major == "" {
		if len(sum.Namespaces) != 1 {
			return "", fmt.Errorf("%s: cannot tell the release of the document from its name or its guards %v", name, sum.Namespaces)
		}
		major = strings.TrimPrefix(sum.Namespaces[0], "rhel:")
	}
	return "redhat-oval/" + kind + "/rhel-" + major, nil
}

var (
	releaseVersion = regexp.MustCompile(`^\^(\d+)(?:[^\d]|\[\^\\d\]|\\\.|$)`)
)

// rhelPlatform classifies Red Hat's release guards: the rpmverifyfile test
// on /etc/redhat-release (state version "^8[^\d]": RHEL 8 is installed;
// check "none satisfy": "Red Hat Enterprise Linux must be installed", true
// only without RHEL, so false in a scanned RHEL image), and the older
// rpminfo tests on redhat-release* packages.
func rhelPlatform(t Test) (Condition, bool, error) {
	release := (t.Type == "rpmverifyfile_test" && t.ObjectFilepath == "/etc/redhat-release") ||
		(t.Type == "rpminfo_test" && strings.HasPrefix(t.ObjectName, "redhat-release") && t.State != nil && t.State.Version != "")
	if !release {
		return Condition{}, false, nil
	}
	if t.Check == "none satisfy" {
		return Condition{Kind: CondFalse}, true, nil
	}
	if t.State == nil || t.State.VersionOp != "pattern match" {
		return Condition{}, false, fmt.Errorf("release test %s (%q): no version pattern", t.ID, t.Comment)
	}
	m := releaseVersion.FindStringSubmatch(t.State.Version)
	if m == nil {
		return Condition{}, false, fmt.Errorf("release test %s: unsupported version pattern %q", t.ID, t.State.Version)
	}
	return Condition{Kind: CondPlatform, Namespace: "rhel:" + m[1]}, true, nil
}

var compressExt = []string{".gz", ".bz2", ".xz", ".zst", ".json", ".xml", ".oval"}

// StripExt returns the base name of a file name or URL without compression,
// ".xml", ".oval" and ".json" suffixes: ".../rhel-8.oval.xml.bz2" → "rhel-8".
func StripExt(name string) string {
	if u, err := url.Parse(name); err == nil && u.Scheme != "" {
		name = u.Path
	}
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	for again := true; again; {
		again = false
		for _, e := range compressExt {
			if b, ok := strings.CutSuffix(base, e); ok && b != "" {
				base, again = b, true
			}
		}
	}
	return base
}
