package redhat

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-scanner/vigil/internal/model"
)

// Bounds on untrusted OVAL input.
const (
	maxCriteriaDepth = 32      // nesting of <criteria> in one definition
	maxConjunctions  = 100_000 // disjunctive-normal-form terms of one definition
	maxTextBytes     = 1 << 20 // one title, description or comment
)

// Test is one OVAL test a criterion refers to, resolved with its object and
// state. Type is the element's local name (rpminfo_test, rpmverifyfile_test,
// textfilecontent54_test, uname_test, ...).
type Test struct {
	ID             string
	Type           string
	Comment        string
	Check          string // "at least one", "all", "none satisfy", ...
	CheckExistence string // "none_exist" for "X is not installed"
	ObjectName     string // rpminfo/rpmverifyfile object <name>
	ObjectFilepath string // rpmverifyfile/textfilecontent54 object <filepath>
	State          *State // nil when the test has no state
}

// State is the subset of an rpminfo/rpmverifyfile state vigil reads: each
// field keeps its value and its operation.
type State struct {
	EVR, EVROp                  string
	Arch, ArchOp                string
	Version, VersionOp          string
	Name, NameOp                string
	SignatureKeyID, SignatureOp string
	Unknown                     []string // other state fields present, by local name
}

// CondKind classifies what a criterion means for a container's packages.
type CondKind int

// Condition kinds.
const (
	// CondIgnore is a test assumed true: signature keys, the running
	// kernel, boot entries; things a package list cannot decide.
	CondIgnore CondKind = iota
	// CondFalse is a test never true in a scanned image (Red Hat's
	// "Red Hat Enterprise Linux must be installed", which is satisfied
	// only when RHEL is absent); its conjunction is dropped.
	CondFalse
	// CondPlatform is a release guard: Namespace is set.
	CondPlatform
	// CondArch restricts the machine architecture (Oracle's "Oracle Linux
	// arch is x86_64"): Arch lists the package architectures it admits.
	CondArch
	// CondModule requires the module stream Module ("name:stream").
	CondModule
	// CondFixed is "Package is earlier than EVR", optionally for Arch.
	CondFixed
	// CondInstalled is "Package is installed" (unpatched definitions).
	CondInstalled
	// CondAbsent is "Package is not installed".
	CondAbsent
)

// Condition is the meaning of one criterion.
type Condition struct {
	Kind      CondKind
	Namespace string
	Arch      []string
	Module    string
	Package   string
	EVR       string
}

// OVALOptions adapts ParseOVAL to one vendor's OVAL.
type OVALOptions struct {
	Source string // model.Advisory.Source
	// IDSource is the reference source naming the advisory id (Red Hat
	// "RHSA", Oracle "elsa"; compared without case). Definitions without
	// one are keyed by their first CVE reference.
	IDSource string
	// Platform classifies the vendor's own tests (release and arch guards).
	// It returns ok=false to leave a test to the shared rules.
	Platform func(t Test) (c Condition, ok bool, err error)
	// Namespace is used for conjunctions that carry no release guard; empty
	// makes such a conjunction an error.
	Namespace string
}

// OVALSummary reports what ParseOVAL read.
type OVALSummary struct {
	Definitions int
	Advisories  int
	Namespaces  []string // sorted, distinct
}

// ParseOVAL reads one OVAL definitions document and emits, for every
// definition, one advisory per (namespace, package, state, fixed version,
// arch, module) its criteria admit. The criteria tree is expanded to
// disjunctive normal form; in each conjunction the release guard gives the
// namespace, a "Module N:S is enabled" test the module, and each rpminfo test
// one advisory:
//
//   - "P is earlier than EVR" (evr "less than"): model.StateFixed in EVR, for
//     the arches of the state's arch pattern;
//   - "P is installed" (no state): affected, in the state the definition's
//     <resolution> gives P ("Affected", "Will not fix", "Fix deferred",
//     "Out of support scope", "Under investigation"), unfixed by default;
//   - "P is installed" together with "P is not installed" (Red Hat's
//     "Unaffected components" definitions): model.StateNotAffected.
//
// Signature-key, running-kernel, boot-entry and "kernel version equals X"
// tests (the precondition of a kpatch-patch-X fix) cannot be decided from a
// package list, or concern another package, and count as true. Definitions come before the tests they use,
// so the compact definitions are held until the document ends; the document is
// decoded as a stream, never read whole.
func ParseOVAL(ctx context.Context, r io.Reader, opts OVALOptions, emit func(model.Advisory) error) (OVALSummary, error) {
	var sum OVALSummary
	doc, err := readOVAL(ctx, r)
	if err != nil {
		return sum, err
	}
	sum.Definitions = len(doc.defs)
	namespaces := map[string]bool{}
	for i := range doc.defs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		advs, err := doc.flatten(&doc.defs[i], &opts)
		if err != nil {
			return sum, fmt.Errorf("oval: definition %s (line %d): %w", doc.defs[i].ID, doc.defs[i].line, err)
		}
		for _, a := range advs {
			namespaces[a.Namespace] = true
			if err := emit(a); err != nil {
				return sum, err
			}
			sum.Advisories++
		}
	}
	for ns := range namespaces {
		sum.Namespaces = append(sum.Namespaces, ns)
	}
	slices.Sort(sum.Namespaces)
	return sum, nil
}

// XML shapes. Element names are matched by local name: Red Hat prefixes them
// (red-def:, ind-def:), Oracle sets a default namespace on each.

type definition struct {
	ID       string       `xml:"id,attr"`
	Class    string       `xml:"class,attr"`
	Title    string       `xml:"metadata>title"`
	Refs     []reference  `xml:"metadata>reference"`
	Desc     string       `xml:"metadata>description"`
	Severity string       `xml:"metadata>advisory>severity"`
	Res      []resolution `xml:"metadata>advisory>affected>resolution"`
	Criteria *criteria    `xml:"criteria"`
	line     int
}

type reference struct {
	Source string `xml:"source,attr"`
	ID     string `xml:"ref_id,attr"`
	URL    string `xml:"ref_url,attr"`
}

type resolution struct {
	State      string   `xml:"state,attr"`
	Components []string `xml:"component"`
}

type criteria struct {
	Operator   string      `xml:"operator,attr"`
	Negate     string      `xml:"negate,attr"`
	Criteria   []criteria  `xml:"criteria"`
	Criterions []criterion `xml:"criterion"`
	Extends    []xml.Name  `xml:"extend_definition"`
}

type criterion struct {
	TestRef string `xml:"test_ref,attr"`
	Negate  string `xml:"negate,attr"`
	Comment string `xml:"comment,attr"`
}

type rawTest struct {
	XMLName        xml.Name
	ID             string `xml:"id,attr"`
	Comment        string `xml:"comment,attr"`
	Check          string `xml:"check,attr"`
	CheckExistence string `xml:"check_existence,attr"`
	Object         struct {
		Ref string `xml:"object_ref,attr"`
	} `xml:"object"`
	States []struct {
		Ref string `xml:"state_ref,attr"`
	} `xml:"state"`
}

type rawObject struct {
	ID       string `xml:"id,attr"`
	Name     string `xml:"name"`
	Filepath string `xml:"filepath"`
}

type rawState struct {
	ID     string `xml:"id,attr"`
	Fields []struct {
		XMLName xml.Name
		Op      string `xml:"operation,attr"`
		Value   string `xml:",chardata"`
	} `xml:",any"`
}

type ovalDoc struct {
	defs    []definition
	tests   map[string]rawTest
	objects map[string]rawObject
	states  map[string]*State
}

func readOVAL(ctx context.Context, r io.Reader) (*ovalDoc, error) {
	doc := &ovalDoc{tests: map[string]rawTest{}, objects: map[string]rawObject{}, states: map[string]*State{}}
	d := xml.NewDecoder(r)
	var stack []string // open element local names
	seenRoot, closedRoot := false, false
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			return nil, fmt.Errorf("oval: line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			line, _ := d.InputPos()
			if closedRoot {
				return nil, fmt.Errorf("oval: line %d: <%s> after </oval_definitions>", line, t.Name.Local)
			}
			if !seenRoot {
				if t.Name.Local != "oval_definitions" {
					return nil, fmt.Errorf("oval: line %d: root element is <%s>, want <oval_definitions>", line, t.Name.Local)
				}
				seenRoot = true
				stack = append(stack, t.Name.Local)
				continue
			}
			if len(stack) == 2 {
				if err := doc.readItem(d, stack[1], t, line); err != nil {
					return nil, err
				}
				continue
			}
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				closedRoot = true
			}
		}
	}
	if !seenRoot {
		return nil, errors.New("oval: empty document: no <oval_definitions>")
	}
	if !closedRoot {
		return nil, errors.New("oval: truncated document: <oval_definitions> not closed")
	}
	return doc, nil
}

// readItem decodes one child of <definitions>, <tests>, <objects> or <states>.
func (doc *ovalDoc) readItem(d *xml.Decoder, section string, t xml.StartElement, line int) error {
	switch section {
	case "definitions":
		if t.Name.Local != "definition" {
			return d.Skip()
		}
		var def definition
		if err := d.DecodeElement(&def, &t); err != nil {
			return fmt.Errorf("oval: definition at line %d: %w", line, err)
		}
		def.line = line
		if def.ID == "" {
			return fmt.Errorf("oval: definition at line %d has no id", line)
		}
		if def.Criteria == nil {
			return fmt.Errorf("oval: definition %s (line %d) has no criteria", def.ID, line)
		}
		for _, s := range []string{def.Title, def.Desc} {
			if len(s) > maxTextBytes {
				return fmt.Errorf("oval: definition %s (line %d): text of %d bytes exceeds %d", def.ID, line, len(s), maxTextBytes)
			}
		}
		if depth(def.Criteria) > maxCriteriaDepth {
			return fmt.Errorf("oval: definition %s (line %d): criteria nested deeper than %d", def.ID, line, maxCriteriaDepth)
		}
		doc.defs = append(doc.defs, def)
	case "tests":
		var rt rawTest
		if err := d.DecodeElement(&rt, &t); err != nil {
			return fmt.Errorf("oval: test at line %d: %w", line, err)
		}
		if rt.ID == "" || rt.Object.Ref == "" {
			return fmt.Errorf("oval: test <%s> at line %d lacks an id or object", t.Name.Local, line)
		}
		if len(rt.States) > 1 {
			return fmt.Errorf("oval: test %s (line %d) has %d states; one is supported", rt.ID, line, len(rt.States))
		}
		doc.tests[rt.ID] = rt
	case "objects":
		var ro rawObject
		if err := d.DecodeElement(&ro, &t); err != nil {
			return fmt.Errorf("oval: object at line %d: %w", line, err)
		}
		ro.Name, ro.Filepath = strings.TrimSpace(ro.Name), strings.TrimSpace(ro.Filepath)
		doc.objects[ro.ID] = ro
	case "states":
		var rs rawState
		if err := d.DecodeElement(&rs, &t); err != nil {
			return fmt.Errorf("oval: state at line %d: %w", line, err)
		}
		st := &State{}
		for _, f := range rs.Fields {
			v := strings.TrimSpace(f.Value)
			switch f.XMLName.Local {
			case "evr":
				st.EVR, st.EVROp = v, f.Op
			case "arch":
				st.Arch, st.ArchOp = v, f.Op
			case "version":
				st.Version, st.VersionOp = v, f.Op
			case "name":
				st.Name, st.NameOp = v, f.Op
			case "signature_keyid":
				st.SignatureKeyID, st.SignatureOp = v, f.Op
			default:
				st.Unknown = append(st.Unknown, f.XMLName.Local)
			}
		}
		doc.states[rs.ID] = st
	default:
		return d.Skip()
	}
	return nil
}

func depth(c *criteria) int {
	m := 0
	for i := range c.Criteria {
		m = max(m, depth(&c.Criteria[i]))
	}
	return m + 1
}

// resolve looks up a criterion's test, object and state.
func (doc *ovalDoc) resolve(ref string) (Test, error) {
	rt, ok := doc.tests[ref]
	if !ok {
		return Test{}, fmt.Errorf("criterion refers to missing test %s", ref)
	}
	obj, ok := doc.objects[rt.Object.Ref]
	if !ok {
		return Test{}, fmt.Errorf("test %s refers to missing object %s", ref, rt.Object.Ref)
	}
	t := Test{ID: rt.ID, Type: rt.XMLName.Local, Comment: rt.Comment, Check: rt.Check, CheckExistence: rt.CheckExistence,
		ObjectName: obj.Name, ObjectFilepath: obj.Filepath}
	if len(rt.States) == 1 {
		st, ok := doc.states[rt.States[0].Ref]
		if !ok {
			return Test{}, fmt.Errorf("test %s refers to missing state %s", ref, rt.States[0].Ref)
		}
		t.State = st
	}
	return t, nil
}

var (
	moduleComment = regexp.MustCompile(`^Module (\S+:\S+) is enabled$`)
	archToken     = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// ArchPattern splits an OVAL arch "pattern match" value such as
// "aarch64|ppc64le|s390x|x86_64" (optionally anchored, ^(...)$) into arches.
func ArchPattern(p string) ([]string, error) {
	s := strings.TrimSuffix(strings.TrimPrefix(p, "^"), "$")
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
		s = s[1 : len(s)-1]
	}
	var out []string
	for _, a := range strings.Split(s, "|") {
		if !archToken.MatchString(a) {
			return nil, fmt.Errorf("unsupported arch pattern %q", p)
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// classify gives a test its meaning: the vendor's rules first, then the
// shared ones.
func classify(t Test, opts *OVALOptions) (Condition, error) {
	if opts.Platform != nil {
		c, ok, err := opts.Platform(t)
		if err != nil || ok {
			return c, err
		}
	}
	switch t.Type {
	case "rpminfo_test":
		if t.ObjectName == "" {
			return Condition{}, fmt.Errorf("rpminfo test %s has no package name", t.ID)
		}
		st := t.State
		if st == nil {
			if t.CheckExistence == "none_exist" {
				return Condition{Kind: CondAbsent, Package: t.ObjectName}, nil
			}
			return Condition{Kind: CondInstalled, Package: t.ObjectName}, nil
		}
		if len(st.Unknown) > 0 || st.Version != "" || st.Name != "" {
			return Condition{}, fmt.Errorf("rpminfo test %s (%q): unsupported state fields", t.ID, t.Comment)
		}
		if st.EVR == "" {
			if st.SignatureKeyID != "" && st.Arch == "" {
				return Condition{Kind: CondIgnore}, nil // "P is signed with ... key"
			}
			return Condition{}, fmt.Errorf("rpminfo test %s (%q): state has no evr", t.ID, t.Comment)
		}
		switch st.EVROp {
		case "less than":
		case "equals":
			// "kernel version equals X", the precondition of a kpatch-patch-X
			// test: a condition on another package, whose name pins X.
			return Condition{Kind: CondIgnore}, nil
		default:
			return Condition{}, fmt.Errorf("rpminfo test %s: evr operation %q unsupported", t.ID, st.EVROp)
		}
		if err := checkEVR(st.EVR); err != nil {
			return Condition{}, fmt.Errorf("rpminfo test %s: %w", t.ID, err)
		}
		c := Condition{Kind: CondFixed, Package: t.ObjectName, EVR: st.EVR}
		if st.Arch != "" {
			if st.ArchOp != "pattern match" && st.ArchOp != "equals" {
				return Condition{}, fmt.Errorf("rpminfo test %s: arch operation %q unsupported", t.ID, st.ArchOp)
			}
			arch, err := ArchPattern(st.Arch)
			if err != nil {
				return Condition{}, fmt.Errorf("rpminfo test %s: %w", t.ID, err)
			}
			c.Arch = arch
		}
		return c, nil
	case "textfilecontent54_test":
		if m := moduleComment.FindStringSubmatch(t.Comment); m != nil {
			return Condition{Kind: CondModule, Module: m[1]}, nil
		}
	}
	// Running kernel (uname), boot entry (grub textfilecontent54) and
	// anything else a package list cannot decide.
	return Condition{Kind: CondIgnore}, nil
}

var evrSyntax = regexp.MustCompile(`^(\d+:)?[^\s:-]+-[^\s:-]+$`)

// checkEVR accepts "[epoch:]version-release".
func checkEVR(evr string) error {
	if !evrSyntax.MatchString(evr) {
		return fmt.Errorf("malformed evr %q, want [epoch:]version-release", evr)
	}
	return nil
}

// dnf expands criteria into conjunctions of meaningful conditions: ignored
// tests are dropped and conjunctions holding a false test vanish.
func (doc *ovalDoc) dnf(c *criteria, opts *OVALOptions) ([][]Condition, error) {
	if c.Negate == "true" {
		return nil, errors.New("negated criteria are not supported")
	}
	if len(c.Extends) > 0 {
		return nil, errors.New("extend_definition is not supported")
	}
	var parts [][][]Condition
	for _, cr := range c.Criterions {
		t, err := doc.resolve(cr.TestRef)
		if err != nil {
			return nil, err
		}
		cond, err := classify(t, opts)
		if err != nil {
			return nil, err
		}
		if cr.Negate == "true" {
			switch cond.Kind {
			case CondIgnore:
			case CondFalse:
				cond = Condition{Kind: CondIgnore}
			default:
				return nil, fmt.Errorf("negated test %s (%q) is not supported", t.ID, t.Comment)
			}
		}
		switch cond.Kind {
		case CondIgnore:
			parts = append(parts, [][]Condition{{}})
		case CondFalse:
			parts = append(parts, nil)
		default:
			parts = append(parts, [][]Condition{{cond}})
		}
	}
	for i := range c.Criteria {
		sub, err := doc.dnf(&c.Criteria[i], opts)
		if err != nil {
			return nil, err
		}
		parts = append(parts, sub)
	}
	switch c.Operator {
	case "", "AND":
		out := [][]Condition{{}}
		for _, p := range parts {
			if len(out)*len(p) > maxConjunctions {
				return nil, fmt.Errorf("criteria expand to more than %d conjunctions", maxConjunctions)
			}
			next := make([][]Condition, 0, len(out)*len(p))
			for _, a := range out {
				for _, b := range p {
					next = append(next, append(slices.Clip(a), b...))
				}
			}
			out = next
		}
		return out, nil
	case "OR":
		var out [][]Condition
		for _, p := range parts {
			out = append(out, p...)
			if len(out) > maxConjunctions {
				return nil, fmt.Errorf("criteria expand to more than %d conjunctions", maxConjunctions)
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("criteria operator %q is not supported", c.Operator)
	}
}

// resolutionStates maps Red Hat's <resolution state> words.
var resolutionStates = map[string]string{
	"affected":             model.StateUnfixed,
	"under investigation":  model.StateUnfixed,
	"will not fix":         model.StateWontFix,
	"fix deferred":         model.StateDeferred,
	"out of support scope": model.StateEndOfLife,
}

// flatten turns one definition into advisories.
func (doc *ovalDoc) flatten(def *definition, opts *OVALOptions) ([]model.Advisory, error) {
	base, err := baseAdvisory(def, opts)
	if err != nil {
		return nil, err
	}
	resolved := map[string]string{}
	for _, r := range def.Res {
		st, ok := resolutionStates[strings.ToLower(strings.TrimSpace(r.State))]
		if !ok {
			return nil, fmt.Errorf("unknown resolution state %q", r.State)
		}
		for _, c := range r.Components {
			resolved[strings.TrimSpace(c)] = st
		}
	}
	conjs, err := doc.dnf(def.Criteria, opts)
	if err != nil {
		return nil, err
	}
	var out []model.Advisory
	seen := map[string]bool{}
	add := func(a model.Advisory) {
		k := strings.Join([]string{a.Namespace, a.Package, a.State, a.FixedVersion, strings.Join(a.Arch, ","), a.Module}, "\x00")
		if !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
conj:
	for _, conj := range conjs {
		ns, module := "", ""
		var sysArch []string
		absent := map[string]bool{}
		for _, c := range conj {
			switch c.Kind {
			case CondPlatform:
				if ns != "" && ns != c.Namespace {
					continue conj // two releases at once: never true
				}
				ns = c.Namespace
			case CondArch:
				if sysArch != nil {
					if sysArch = intersect(sysArch, c.Arch); len(sysArch) == 0 {
						continue conj
					}
				} else {
					sysArch = c.Arch
				}
			case CondModule:
				if module != "" && module != c.Module {
					return nil, fmt.Errorf("conjunction requires two modules, %s and %s", module, c.Module)
				}
				module = c.Module
			case CondAbsent:
				absent[c.Package] = true
			}
		}
		if ns == "" {
			if opts.Namespace == "" {
				return nil, errors.New("no release guard and no namespace from the file name")
			}
			ns = opts.Namespace
		}
		for _, c := range conj {
			a := base
			a.Namespace, a.Module, a.Package = ns, module, c.Package
			switch c.Kind {
			case CondFixed:
				a.State, a.FixedVersion = model.StateFixed, c.EVR
				a.Arch = c.Arch
				if sysArch != nil {
					if a.Arch == nil {
						a.Arch = sysArch
					} else if a.Arch = intersect(a.Arch, sysArch); len(a.Arch) == 0 {
						continue
					}
				}
			case CondInstalled:
				a.Arch = sysArch
				switch {
				case absent[c.Package]:
					a.State = model.StateNotAffected
				case resolved[c.Package] != "":
					a.State = resolved[c.Package]
				default:
					a.State = model.StateUnfixed
				}
			default:
				continue
			}
			add(a)
		}
	}
	return out, nil
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// baseAdvisory fills the per-definition fields.
func baseAdvisory(def *definition, opts *OVALOptions) (model.Advisory, error) {
	a := model.Advisory{
		Source:           opts.Source,
		SourcePackage:    false,
		VersionFormat:    model.KindRPM,
		Title:            strings.Join(strings.Fields(def.Title), " "),
		Description:      strings.TrimSpace(def.Desc),
		UpstreamSeverity: strings.TrimSpace(def.Severity),
	}
	a.Severity = Severity(a.UpstreamSeverity)
	var cves []reference
	for _, r := range def.Refs {
		switch {
		case a.ID == "" && strings.EqualFold(r.Source, opts.IDSource) && r.ID != "":
			a.ID, a.Link = r.ID, r.URL
		case strings.EqualFold(r.Source, "CVE") && r.ID != "":
			cves = append(cves, r)
		}
	}
	if a.ID == "" {
		if len(cves) == 0 {
			return a, errors.New("no advisory or CVE reference")
		}
		a.ID, a.Link = cves[0].ID, cves[0].URL
		cves = cves[1:]
	}
	for _, c := range cves {
		if c.ID != a.ID && !slices.Contains(a.Aliases, c.ID) {
			a.Aliases = append(a.Aliases, c.ID)
		}
	}
	return a, nil
}

// Severity maps Red Hat's (and Oracle's) impact words, in any case, onto
// vigil's scale: Low, Moderate, Important, Critical → Low, Medium, High,
// Critical; anything else ("None", "N/A", "") is Unknown.
func Severity(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return model.SeverityLow
	case "moderate":
		return model.SeverityMedium
	case "important":
		return model.SeverityHigh
	case "critical":
		return model.SeverityCritical
	}
	return model.SeverityUnknown
}
