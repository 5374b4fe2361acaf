// Package match decides which stored advisories affect an image's packages.
//
// Rules:
//   - Advisories are looked up in the namespaces that hold data for the
//     image's distribution (DataNamespaces): its own Clair namespace, plus
//     Red Hat's for rebuilds that ship Red Hat's packages under the same
//     names and versions (CentOS Linux, Rocky, AlmaLinux: see below).
//   - A source-package advisory (Debian, Ubuntu, Alpine's origin) matches a
//     package whose source name equals the advisory's package, and compares
//     the package's source version (Debian's tracker speaks of source
//     versions: gcc-defaults 1.203 builds cpp 4:12.2.0-3); a binary-package
//     advisory (rpm) matches the binary name and compares the binary EVR.
//   - State fixed: affected when installed < fixed, by the advisory's version
//     format. Alpine images are compared with the rules of the apk-tools
//     major version they ship (2.x or 3.x disagree on leading zeros).
//     States unfixed, will-not-fix, fix-deferred, unimportant and end-of-life
//     affect every installed version and are reported with their state;
//     not-affected is never reported.
//   - An advisory restricted to architectures matches only packages of those
//     (noarch/all packages match any); one naming an rpm module stream
//     matches only packages of that module stream, and a non-modular one only
//     non-modular packages.
//   - When two sources speak of the same vulnerability id for the same
//     package, only the more authoritative one counts (sourceRank): the
//     Debian security tracker over Debian OVAL, which is generated from it
//     with less detail (no urgency, no unimportant or end-of-life states).
//     Its statement wins even when it says "not affected" or "fixed in a
//     version older than the installed one".
//
// CentOS Linux, Rocky Linux and AlmaLinux are matched with Red Hat data of
// the same major release (rhel:N) because they are rebuilt from Red Hat's
// sources with the same package names and EVRs; their own errata, when
// imported under their namespaces, are used as well. CentOS Stream is not:
// it runs ahead of RHEL, so RHEL fixed versions would be false answers.
package match

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vigil-scanner/vigil/internal/catalog/apk"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/version"
)

// Source gives the stored advisories of some namespaces naming some
// packages; *store.Store satisfies it.
type Source interface {
	Advisories(ctx context.Context, namespaces, packages []string) ([]model.Advisory, error)
}

// Result is the outcome of matching one image.
type Result struct {
	Findings []model.Finding
	Warnings []string // advisories that could not be evaluated, and why
}

// DataNamespaces lists the namespaces whose advisories apply to d.
func DataNamespaces(d *model.Distribution) []string {
	if d == nil || d.Namespace == "" {
		return nil
	}
	ns := []string{d.Namespace}
	if family, rel, ok := strings.Cut(d.Namespace, ":"); ok {
		switch family {
		case "centos", "rocky", "alma":
			ns = append(ns, "rhel:"+rel)
		}
	}
	return ns
}

// Match returns the findings of pkgs, installed on distribution d, against
// the advisories in src.
func Match(ctx context.Context, src Source, d *model.Distribution, pkgs []model.Package) (*Result, error) {
	res := &Result{}
	namespaces := DataNamespaces(d)
	if len(namespaces) == 0 || len(pkgs) == 0 {
		return res, nil
	}
	names := map[string]bool{}
	for _, p := range pkgs {
		names[p.Name] = true
		if p.SourceName != "" {
			names[p.SourceName] = true
		}
	}
	advs, err := src.Advisories(ctx, namespaces, sortedKeys(names))
	if err != nil {
		return nil, err
	}
	byName := map[string][]model.Advisory{}
	for _, a := range advs {
		byName[a.Package] = append(byName[a.Package], a)
	}
	apkFormat := version.FormatAPK
	if apk.APKToolsMajor(pkgs) == 2 {
		apkFormat = version.FormatAPK2
	}
	seen := map[string]bool{}
	warned := map[string]bool{}
	for _, p := range pkgs {
		for _, a := range authoritative(candidates(byName, p)) {
			affected, err := affects(a, p, apkFormat)
			if err != nil {
				msg := fmt.Sprintf("%s %s: %s %s: %v", p.Name, p.Version, a.Source, a.ID, err)
				if !warned[msg] {
					warned[msg] = true
					res.Warnings = append(res.Warnings, msg)
				}
				continue
			}
			if !affected {
				continue
			}
			key := recordKey(p) + "\x00" + a.ID
			if seen[key] {
				continue
			}
			seen[key] = true
			res.Findings = append(res.Findings, model.Finding{Package: p, Advisory: a})
		}
	}
	sort.SliceStable(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Package.Arch != b.Package.Arch {
			return a.Package.Arch < b.Package.Arch
		}
		return a.Advisory.ID < b.Advisory.ID
	})
	return res, nil
}

// candidates are the advisories naming p by the name their kind keys on.
func candidates(byName map[string][]model.Advisory, p model.Package) []model.Advisory {
	var out []model.Advisory
	src := sourceName(p)
	for _, a := range byName[src] {
		if a.SourcePackage {
			out = append(out, a)
		}
	}
	for _, a := range byName[p.Name] {
		if !a.SourcePackage {
			out = append(out, a)
		}
	}
	return out
}

func sourceName(p model.Package) string {
	if p.SourceName != "" {
		return p.SourceName
	}
	return p.Name
}

// sourceRank orders sources that may speak of the same vulnerability:
// lower is more authoritative; unlisted sources rank last.
var sourceRank = map[string]int{
	"debian-tracker": 0,
	"debian-oval":    1,
}

func rank(source string) int {
	if r, ok := sourceRank[source]; ok {
		return r
	}
	return len(sourceRank)
}

// authoritative keeps, for each vulnerability id, only the statements of
// the most authoritative source that makes any.
func authoritative(advs []model.Advisory) []model.Advisory {
	best := map[string]int{}
	for _, a := range advs {
		if r, ok := best[a.ID]; !ok || rank(a.Source) < r {
			best[a.ID] = rank(a.Source)
		}
	}
	out := advs[:0:0]
	for _, a := range advs {
		if rank(a.Source) == best[a.ID] {
			out = append(out, a)
		}
	}
	return out
}

// affects decides whether advisory a applies to package p.
func affects(a model.Advisory, p model.Package, apkFormat string) (bool, error) {
	if a.VersionFormat != p.Kind {
		return false, nil // another ecosystem's advisory under the same name
	}
	if len(a.Arch) > 0 && !archMatches(a.Arch, p.Arch) {
		return false, nil
	}
	if a.Module != moduleStream(p.Module) {
		return false, nil
	}
	switch a.State {
	case model.StateNotAffected:
		return false, nil
	case model.StateFixed:
		format := a.VersionFormat
		if format == version.FormatAPK {
			format = apkFormat
		}
		cmp, ok := version.Lookup(format)
		if !ok {
			return false, fmt.Errorf("unknown version format %q", a.VersionFormat)
		}
		installed := p.Version
		if a.SourcePackage && p.SourceVersion != "" {
			installed = p.SourceVersion
		}
		c, err := cmp.Compare(installed, a.FixedVersion)
		if err != nil {
			return false, err
		}
		return c < 0, nil
	default:
		return true, nil
	}
}

func archMatches(archs []string, arch string) bool {
	switch arch {
	case "noarch", "all", "":
		return true
	}
	return slices.Contains(archs, arch)
}

// moduleStream returns "name:stream" of an rpm modularity label
// "name:stream:version:context", or "".
func moduleStream(label string) string {
	parts := strings.SplitN(label, ":", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + ":" + parts[1]
}

func recordKey(p model.Package) string {
	return strings.Join([]string{p.Kind, p.Name, p.Version, p.Arch}, "\x00")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
