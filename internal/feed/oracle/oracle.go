// Package oracle reads Oracle Linux ELSA OVAL (com.oracle.elsa-all.xml, the
// per-year com.oracle.elsa-YYYY.xml and single ELSA-YYYY-NNNN.xml documents)
// into advisories keyed by binary rpm name.
//
// The documents are Red Hat OVAL v1 in shape and are read by redhat.ParseOVAL
// (criteria flattened to disjunctive normal form; one advisory per "P is
// earlier than EVR" test, model.StateFixed in that EVR, epoch kept as given).
// Oracle's own tests are its guards, rpminfo tests on oraclelinux-release:
//
//   - "Oracle Linux N is installed" (state version "^N"): namespace oracle:N;
//   - "Oracle Linux arch is A" (state arch A): the machine architecture. The
//     packages under it are those of A's repositories, so the advisory's Arch
//     is A with noarch, plus i686 on x86_64 (multilib) and i386-i686 on i386.
//     Per-arch blocks can carry different fixed versions (ELSA-2022-4803).
//
// "Module N:S is enabled" sets Module; signature-key tests count as true.
// ID is the ELSA id (reference source "elsa"), Aliases its CVEs, severity
// Oracle's LOW/MODERATE/IMPORTANT/CRITICAL mapped like Red Hat's (N/A is
// Unknown). Fixed versions naming a ksplice build ("….ksplice1.el7") apply
// only to Ksplice userspace-patched packages, which container images do not
// carry; comparing an ordinary build with them would raise false alarms, so
// they are skipped. The scope is oracle-oval/<file base name>.
package oracle

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-scanner/vigil/internal/feed/redhat"
	"github.com/vigil-scanner/vigil/internal/model"
)

// Feed is the Oracle Linux OVAL feed.
type Feed struct{}

// Name implements feed.Feed.
func (Feed) Name() string { return "oracle-oval" }

// URLs implements feed.Feed.
func (Feed) URLs() []string {
	return []string{"https://linux.oracle.com/security/oval/com.oracle.elsa-all.xml.bz2"}
}

var oracleName = regexp.MustCompile(`^(com\.oracle\.elsa-|ELSA-)`)

// Sniff implements feed.Feed.
func (Feed) Sniff(name string, head []byte) bool {
	if !bytes.Contains(head, []byte("<oval_definitions")) {
		return false
	}
	return bytes.Contains(head, []byte("Oracle Errata System")) || bytes.Contains(head, []byte("com.oracle.elsa")) ||
		oracleName.MatchString(redhat.StripExt(name))
}

// Parse implements feed.Feed.
func (Feed) Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, error) {
	base := redhat.StripExt(name)
	if base == "" || base == "." || base == "/" {
		return "", fmt.Errorf("oracle-oval: no file name to derive the scope from: %q", name)
	}
	opts := redhat.OVALOptions{Source: "oracle-oval", IDSource: "elsa", Platform: platform}
	_, err := redhat.ParseOVAL(ctx, r, opts, func(a model.Advisory) error {
		if strings.Contains(strings.ToLower(a.FixedVersion), "ksplice") {
			return nil
		}
		return emit(a)
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return "oracle-oval/" + base, nil
}

var releaseVersion = regexp.MustCompile(`^\^?(\d+)$`)

// platform classifies the rpminfo tests on oraclelinux-release (OL5 also
// used enterprise-release).
func platform(t redhat.Test) (redhat.Condition, bool, error) {
	if t.Type != "rpminfo_test" || (t.ObjectName != "oraclelinux-release" && t.ObjectName != "enterprise-release") ||
		t.State == nil || t.State.SignatureKeyID != "" {
		return redhat.Condition{}, false, nil
	}
	st := t.State
	switch {
	case st.Version != "" && st.Arch == "" && st.EVR == "":
		m := releaseVersion.FindStringSubmatch(st.Version)
		if m == nil || st.VersionOp != "pattern match" {
			return redhat.Condition{}, false, fmt.Errorf("release test %s: unsupported version %s %q", t.ID, st.VersionOp, st.Version)
		}
		return redhat.Condition{Kind: redhat.CondPlatform, Namespace: "oracle:" + m[1]}, true, nil
	case st.Arch != "" && st.Version == "" && st.EVR == "":
		arches, err := redhat.ArchPattern(st.Arch)
		if err != nil {
			return redhat.Condition{}, false, fmt.Errorf("arch test %s: %w", t.ID, err)
		}
		var out []string
		for _, a := range arches {
			out = append(out, packageArches(a)...)
		}
		slices.Sort(out)
		return redhat.Condition{Kind: redhat.CondArch, Arch: slices.Compact(out)}, true, nil
	}
	return redhat.Condition{}, false, fmt.Errorf("release test %s (%q): unsupported state", t.ID, t.Comment)
}

// packageArches lists the package architectures installed on a machine of
// architecture a.
func packageArches(a string) []string {
	switch a {
	case "x86_64":
		return []string{"i686", "noarch", "x86_64"}
	case "i386", "i686":
		return []string{"i386", "i586", "i686", "noarch"}
	}
	return []string{a, "noarch"}
}
