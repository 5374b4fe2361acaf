package redhat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/version/rpm"
)

// maxCSAFBytes bounds one CSAF document (the largest VEX files, kernel's,
// are tens of MiB).
const maxCSAFBytes = 256 << 20

// CSAF is the Red Hat CSAF 2.0 feed: per-CVE VEX documents
// (csaf/v2/vex/YYYY/cve-….json) and per-RHSA advisories
// (csaf/v2/advisories/YYYY/rhsa-….json).
type CSAF struct{}

// Name implements feed.Feed.
func (CSAF) Name() string { return "redhat-csaf" }

// URLs implements feed.Feed: the VEX document set (see Set).
func (CSAF) URLs() []string {
	return []string{"https://security.access.redhat.com/data/csaf/v2/vex/"}
}

// Set implements feed.DocumentSet: a URL ending in "/" is the base of a
// set of CSAF documents (csaf/v2/vex/ or csaf/v2/advisories/), laid out as
// feed.Set says. Its progress is kept in the scope redhat-vex/changes.csv
// (redhat-csaf/changes.csv for advisories). Change-log entries are read
// again from an hour before the newest one applied.
func (CSAF) Set(url string) (feed.Set, bool) {
	if !strings.HasSuffix(url, "/") {
		return feed.Set{}, false
	}
	marker := "redhat-csaf/changes.csv"
	if strings.HasSuffix(url, "/vex/") {
		marker = "redhat-vex/changes.csv"
	}
	return feed.Set{
		Base: url, Latest: "archive_latest.txt", Changes: "changes.csv", Deletions: "deletions.csv",
		Marker: marker, Lag: time.Hour, Scope: csafScope,
	}, true
}

// csafScope is the scope Parse gives the document at path:
// "2023/cve-2023-6212.json" → redhat-vex/CVE-2023-6212,
// "2024/rhsa-2024_6163.json" → redhat-csaf/RHSA-2024:6163.
func csafScope(path string) string {
	base, ok := strings.CutSuffix(path[strings.LastIndexByte(path, '/')+1:], ".json")
	if !ok || !csafName.MatchString(base) {
		return ""
	}
	id := strings.ToUpper(base)
	if strings.HasPrefix(id, "CVE-") {
		return "redhat-vex/" + id
	}
	return "redhat-csaf/" + strings.Replace(id, "_", ":", 1)
}

// Sniff implements feed.Feed.
func (CSAF) Sniff(name string, head []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(head), []byte("{")) &&
		(bytes.Contains(head, []byte(`"csaf_version"`)) || bytes.Contains(head, []byte(`"csaf_`)) ||
			csafName.MatchString(strings.ToLower(StripExt(name))))
}

type csafDoc struct {
	Document struct {
		Category  string `json:"category"`
		Title     string `json:"title"`
		Aggregate struct {
			Text string `json:"text"`
		} `json:"aggregate_severity"`
		Tracking struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"tracking"`
	} `json:"document"`
	ProductTree struct {
		Branches      []csafBranch `json:"branches"`
		Relationships []struct {
			Full struct {
				ProductID string `json:"product_id"`
			} `json:"full_product_name"`
			Component string `json:"product_reference"`
			Platform  string `json:"relates_to_product_reference"`
		} `json:"relationships"`
	} `json:"product_tree"`
	Vulnerabilities []struct {
		CVE           string              `json:"cve"`
		Title         string              `json:"title"`
		ProductStatus map[string][]string `json:"product_status"`
		Remediations  []struct {
			Category   string   `json:"category"`
			Details    string   `json:"details"`
			URL        string   `json:"url"`
			ProductIDs []string `json:"product_ids"`
		} `json:"remediations"`
		Threats []struct {
			Category   string   `json:"category"`
			Details    string   `json:"details"`
			ProductIDs []string `json:"product_ids"`
		} `json:"threats"`
	} `json:"vulnerabilities"`
}

type csafBranch struct {
	Category string       `json:"category"`
	Branches []csafBranch `json:"branches"`
	Product  *struct {
		ID     string `json:"product_id"`
		Helper struct {
			CPE  string `json:"cpe"`
			PURL string `json:"purl"`
		} `json:"product_identification_helper"`
	} `json:"product"`
}

// component is one rpm a product id names.
type component struct {
	name, evr, arch, module string
	source                  bool // an unversioned source rpm (purl arch=src)
}

var (
	csafName    = regexp.MustCompile(`^(cve|rhsa|rhba|rhea)-\d{4}[-_]\d+$`)
	rhelCPE     = regexp.MustCompile(`^cpe:/[ao]:redhat:enterprise_linux:(\d+)(?:::|$)`)
	rhsaURL     = regexp.MustCompile(`/errata/((?:RHSA|RHBA|RHEA)-\d{4}:\d+)$`)
	moduleName  = regexp.MustCompile(`^([^:/\s]+:[^:/\s]+)/([^:/\s]+)$`) // "go-toolset:rhel8/go-toolset"
	plainRPMRef = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
)

// Parse implements feed.Feed. See the package comment for the mapping.
func (CSAF) Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, error) {
	lr := &io.LimitedReader{R: r, N: maxCSAFBytes + 1}
	var doc csafDoc
	dec := json.NewDecoder(lr)
	if err := dec.Decode(&doc); err != nil {
		if lr.N <= 0 {
			return "", fmt.Errorf("%s: csaf document exceeds %d bytes", name, maxCSAFBytes)
		}
		return "", fmt.Errorf("%s: csaf: %w", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", fmt.Errorf("%s: csaf: trailing data after the document", name)
	}
	id := strings.TrimSpace(doc.Document.Tracking.ID)
	if id == "" {
		return "", fmt.Errorf("%s: csaf: document.tracking.id missing", name)
	}
	vex := strings.HasPrefix(id, "CVE-")
	scope := "redhat-csaf/" + id
	if vex {
		scope = "redhat-vex/" + id
	}
	if doc.Document.Tracking.Status == "deleted" {
		return scope, nil // nothing: see the package comment
	}
	if len(doc.Vulnerabilities) == 0 {
		return "", fmt.Errorf("%s: csaf: no vulnerabilities", name)
	}
	products, err := doc.products()
	if err != nil {
		return "", fmt.Errorf("%s: csaf: %w", name, err)
	}
	g := newGrouper()
	for _, v := range doc.Vulnerabilities {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if !strings.HasPrefix(v.CVE, "CVE-") {
			return "", fmt.Errorf("%s: csaf: vulnerability without a CVE id", name)
		}
		impact := map[string]string{}
		for _, t := range v.Threats {
			if t.Category == "impact" {
				for _, p := range t.ProductIDs {
					impact[p] = t.Details
				}
			}
		}
		remedy := map[string]int{}
		for i, rm := range v.Remediations {
			for _, p := range rm.ProductIDs {
				if rm.Category != "workaround" {
					remedy[p] = i
				}
			}
		}
		for status, ids := range v.ProductStatus {
			for _, pid := range ids {
				pr, ok := products[pid]
				if !ok {
					continue // not a RHEL rpm (other products, containers, EUS streams)
				}
				a := model.Advisory{
					ID: v.CVE, Namespace: pr.ns, Package: pr.name, Module: pr.module, SourcePackage: pr.source,
					Title: v.Title, UpstreamSeverity: impact[pid],
				}
				if a.UpstreamSeverity == "" {
					a.UpstreamSeverity = doc.Document.Aggregate.Text
				}
				if !vex {
					a.ID, a.Aliases, a.Title = id, []string{v.CVE}, doc.Document.Title
				}
				i, hasRemedy := remedy[pid]
				switch status {
				case "fixed":
					if pr.evr == "" {
						return "", fmt.Errorf("%s: csaf: fixed product %s has no version", name, pid)
					}
					a.State, a.FixedVersion = model.StateFixed, pr.evr
					if hasRemedy {
						if m := rhsaURL.FindStringSubmatch(v.Remediations[i].URL); m != nil {
							a.Link = v.Remediations[i].URL
							if vex {
								a.Aliases = []string{m[1]}
							}
						}
					}
				case "known_affected":
					a.State = model.StateUnfixed
					if hasRemedy {
						rm := v.Remediations[i]
						switch d := strings.ToLower(strings.TrimSpace(rm.Details)); {
						case rm.Category == "no_fix_planned" && d == "out of support scope":
							a.State = model.StateEndOfLife
						case rm.Category == "no_fix_planned":
							a.State = model.StateWontFix
						case rm.Category == "none_available" && d == "fix deferred":
							a.State = model.StateDeferred
						}
					}
				case "known_not_affected":
					a.State = model.StateNotAffected
				case "under_investigation":
					a.State = model.StateUnfixed
				default:
					continue // first_fixed, recommended, …: not a package state
				}
				if !vex && a.State != model.StateFixed {
					continue // an advisory's other statuses are the VEX documents' to state
				}
				g.add(a, pr.arch)
			}
		}
	}
	for _, a := range g.result() {
		a.Source, a.VersionFormat = "redhat-csaf", model.KindRPM
		a.Severity = Severity(a.UpstreamSeverity)
		if err := emit(a); err != nil {
			return "", err
		}
	}
	return scope, nil
}

// products maps each RHEL product id (platform:component) to its rpm.
func (doc *csafDoc) products() (map[string]component2, error) {
	cpes, purls := map[string]string{}, map[string]string{}
	var walk func([]csafBranch, int) error
	walk = func(bs []csafBranch, depth int) error {
		if depth > 16 {
			return errors.New("product_tree nested deeper than 16")
		}
		for _, b := range bs {
			if b.Product != nil {
				if b.Product.Helper.CPE != "" {
					cpes[b.Product.ID] = b.Product.Helper.CPE
				}
				if b.Product.Helper.PURL != "" {
					purls[b.Product.ID] = b.Product.Helper.PURL
				}
			}
			if err := walk(b.Branches, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(doc.ProductTree.Branches, 0); err != nil {
		return nil, err
	}
	out := map[string]component2{}
	for _, rel := range doc.ProductTree.Relationships {
		m := rhelCPE.FindStringSubmatch(cpes[rel.Platform])
		if m == nil {
			continue
		}
		c, ok, err := parseComponent(rel.Component, purls[rel.Component])
		if err != nil {
			return nil, fmt.Errorf("product %s: %w", rel.Full.ProductID, err)
		}
		if !ok {
			continue
		}
		out[rel.Full.ProductID] = component2{component: c, ns: "rhel:" + m[1]}
	}
	return out, nil
}

type component2 struct {
	component
	ns string
}

// parseComponent reads an rpm from its purl (pkg:rpm/redhat/NAME@V-R?arch=A
// &epoch=E&rpmmod=N:S:V:C), or from a bare name or "module:stream/name"
// for unversioned (affected, not affected) components. Source rpms and
// non-rpm components (container images) give ok=false.
func parseComponent(ref, purl string) (component, bool, error) {
	if purl != "" {
		if !strings.HasPrefix(purl, "pkg:rpm/") {
			return component{}, false, nil
		}
		u, err := url.Parse(purl)
		if err != nil {
			return component{}, false, fmt.Errorf("purl %q: %w", purl, err)
		}
		p := strings.TrimPrefix(u.Opaque, "rpm/")
		_, p, _ = strings.Cut(p, "/") // namespace "redhat"
		nm, ver, _ := strings.Cut(p, "@")
		nm, err1 := url.PathUnescape(nm)
		ver, err2 := url.PathUnescape(ver)
		if err := errors.Join(err1, err2); err != nil || nm == "" {
			return component{}, false, fmt.Errorf("purl %q: bad name or version", purl)
		}
		q := u.Query()
		c := component{name: nm, arch: q.Get("arch")}
		if c.arch == "src" {
			if ver != "" {
				return component{}, false, nil // the binaries beside it carry the fix
			}
			c.arch, c.source = "", true
		}
		if mod := q.Get("rpmmod"); mod != "" {
			parts := strings.Split(mod, ":")
			if len(parts) < 2 {
				return component{}, false, fmt.Errorf("purl %q: bad rpmmod", purl)
			}
			c.module = parts[0] + ":" + parts[1]
		}
		if ver != "" {
			epoch := q.Get("epoch")
			if epoch == "" {
				epoch = "0"
			}
			c.evr = epoch + ":" + ver
			if err := checkEVR(c.evr); err != nil {
				return component{}, false, fmt.Errorf("purl %q: %w", purl, err)
			}
		}
		return c, true, nil
	}
	if strings.HasSuffix(ref, ".src") {
		return component{}, false, nil
	}
	if m := moduleName.FindStringSubmatch(ref); m != nil {
		return component{name: m[2], module: m[1]}, true, nil
	}
	if plainRPMRef.MatchString(ref) {
		return component{name: ref}, true, nil
	}
	return component{}, false, nil // container images and other non-rpm references
}

// grouper merges per-arch statements into one advisory per
// (namespace, package, module, state, fixed version), and keeps, where a
// package is fixed in several versions in one namespace (9.2.0.Z and 9.3.0.Z
// streams), the newest.
type grouper struct {
	order []string
	by    map[string]*model.Advisory
	arch  map[string]map[string]bool
}

func newGrouper() *grouper {
	return &grouper{by: map[string]*model.Advisory{}, arch: map[string]map[string]bool{}}
}

func (g *grouper) add(a model.Advisory, arch string) {
	k := strings.Join([]string{a.Namespace, a.Package, a.Module, a.State, fmt.Sprint(a.SourcePackage)}, "\x00")
	if a.State != model.StateFixed {
		k += "\x00" + a.ID
	}
	cur, ok := g.by[k]
	if ok && a.State == model.StateFixed && cur.FixedVersion != a.FixedVersion {
		c, err := rpm.Compare(a.FixedVersion, cur.FixedVersion)
		if err == nil && c < 0 {
			return
		}
		if err == nil && c > 0 {
			ok = false
			g.arch[k] = nil
		}
	}
	if !ok {
		if _, seen := g.by[k]; !seen {
			g.order = append(g.order, k)
		}
		g.by[k] = &a
	} else {
		for _, al := range a.Aliases {
			if !slices.Contains(cur.Aliases, al) {
				cur.Aliases = append(cur.Aliases, al)
			}
		}
		if SeverityRank(a.UpstreamSeverity) > SeverityRank(cur.UpstreamSeverity) {
			cur.UpstreamSeverity = a.UpstreamSeverity
		}
	}
	if g.arch[k] == nil {
		g.arch[k] = map[string]bool{}
	}
	if arch != "" {
		g.arch[k][arch] = true
	} else {
		g.arch[k][""] = true // unrestricted
	}
}

func (g *grouper) result() []model.Advisory {
	out := make([]model.Advisory, 0, len(g.order))
	for _, k := range g.order {
		a := *g.by[k]
		if !g.arch[k][""] {
			for arch := range g.arch[k] {
				a.Arch = append(a.Arch, arch)
			}
			slices.Sort(a.Arch)
		}
		slices.Sort(a.Aliases)
		out = append(out, a)
	}
	return out
}

// SeverityRank orders Red Hat's impact words (Low < Moderate < Important <
// Critical); unknown words rank lowest.
func SeverityRank(s string) int {
	return model.SeverityRank(Severity(s))
}
