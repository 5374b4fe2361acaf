package ubuntu

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-scanner/vigil/internal/model"
)

var (
	defIDRE    = regexp.MustCompile(`^oval:com\.ubuntu\.([a-z]+):def:[0-9]+$`)
	cveIDRE    = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	pkgNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	manifestRE = regexp.MustCompile(`^\^(.+)\(\?::\\w\+\|\)\\s\+\(\.\*\)\$$`)
)

var severities = map[string]string{
	"negligible": model.SeverityNegligible,
	"low":        model.SeverityLow,
	"medium":     model.SeverityMedium,
	"high":       model.SeverityHigh,
	"critical":   model.SeverityCritical,
}

// statement is what one definition says about one id, before it is split
// into one advisory per binary package.
type statement struct {
	base     model.Advisory
	criteria []xCriterion // the package criteria deciding it
}

// resolve checks the series and emits the advisories of every definition.
func (p *parser) resolve() (string, error) {
	for _, def := range p.defs {
		m := defIDRE.FindStringSubmatch(def.ID)
		if m == nil {
			return "", fmt.Errorf("definition id %q is not oval:com.ubuntu.<series>:def:<n>", def.ID)
		}
		if p.series == "" {
			p.series = m[1]
		} else if m[1] != p.series {
			return "", fmt.Errorf("definition %s is for series %s, others for %s", def.ID, m[1], p.series)
		}
	}
	if p.series == "" {
		p.series = p.fileSeries
	}
	if p.fileSeries != "" && p.fileSeries != p.series {
		return "", fmt.Errorf("definitions are for series %s, but the file name says %s", p.series, p.fileSeries)
	}
	ns, ok := Namespace(p.series)
	if !ok {
		return "", fmt.Errorf("unknown Ubuntu series %q", p.series)
	}
	series := p.series
	if p.variant != "" {
		ns += "/" + p.variant
		series = p.variant + "_" + p.series
	}
	for _, def := range p.defs {
		if err := p.ctx.Err(); err != nil {
			return "", err
		}
		if def.Class == "inventory" {
			continue
		}
		if err := p.definition(def, ns); err != nil {
			return "", fmt.Errorf("definition %s: %w", def.ID, err)
		}
	}
	return Name + "/" + series + "/" + p.kind, nil
}

func (p *parser) definition(def xDefinition, ns string) error {
	var crits []xCriterion
	if def.Criteria != nil {
		if err := p.collect(*def.Criteria, &crits); err != nil {
			return err
		}
	}
	stmts, err := p.statements(def, crits)
	if err != nil {
		return err
	}
	for _, st := range stmts {
		st.base.Source, st.base.Namespace, st.base.VersionFormat = Name, ns, model.KindDpkg
		if err := p.emitStatement(st); err != nil {
			return err
		}
	}
	return nil
}

// statements splits a definition into the ids it speaks of.
func (p *parser) statements(def xDefinition, crits []xCriterion) ([]statement, error) {
	refs := func(source string) []string {
		var ids []string
		for _, r := range def.References {
			if id := strings.TrimSpace(r.RefID); r.Source == source && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	upstream := strings.ToLower(strings.TrimSpace(def.Severity))
	if upstream == "" && len(def.CVEs) > 0 {
		upstream = strings.ToLower(strings.TrimSpace(def.CVEs[0].Priority))
	}
	base := model.Advisory{
		Title:            strings.TrimSpace(def.Title),
		Description:      strings.TrimSpace(def.Description),
		UpstreamSeverity: upstream,
		Severity:         severity(upstream),
	}
	switch p.kind {
	case "cve":
		ids := refs("CVE")
		if len(ids) != 1 || !cveIDRE.MatchString(ids[0]) {
			return nil, fmt.Errorf("want one CVE reference, have %q", ids)
		}
		base.ID, base.Link = ids[0], "https://ubuntu.com/security/"+ids[0]
		return []statement{{base, crits}}, nil
	case "usn":
		ids := refs("USN")
		if len(ids) != 1 || ids[0] == "" {
			return nil, fmt.Errorf("want one USN reference, have %q", ids)
		}
		base.ID, base.Aliases, base.Link = ids[0], refs("CVE"), "https://ubuntu.com/security/notices/"+ids[0]
		return []statement{{base, crits}}, nil
	}
	// pkg: one definition per source package, each cve naming its test.
	var out []statement
	for _, c := range def.CVEs {
		id := strings.TrimSpace(c.ID)
		if !cveIDRE.MatchString(id) {
			return nil, fmt.Errorf("cve element %q is not a CVE id", c.ID)
		}
		if _, ok := p.tests[c.TestRef]; !ok {
			return nil, fmt.Errorf("%s: test_ref %q names no test", id, c.TestRef)
		}
		st := statement{base: model.Advisory{
			ID:               id,
			Link:             "https://ubuntu.com/security/" + id,
			UpstreamSeverity: strings.ToLower(c.Priority),
			Severity:         severity(strings.ToLower(c.Priority)),
		}}
		for _, cr := range crits {
			if cr.TestRef == c.TestRef {
				st.criteria = append(st.criteria, cr)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

func severity(priority string) string {
	if s, ok := severities[priority]; ok {
		return s
	}
	return model.SeverityUnknown
}

// collect gathers the package criteria of c. A group that requires (AND) a
// running-system test is dropped whole: it cannot hold on an image.
func (p *parser) collect(c xCriteria, out *[]xCriterion) error {
	if c.Negate == "true" {
		return errors.New("negated criteria are not supported")
	}
	for _, e := range c.Extend {
		if e.Negate == "true" {
			return errors.New("negated extend_definition is not supported")
		}
	}
	op := strings.ToUpper(c.Operator)
	if op != "" && op != "AND" && op != "OR" {
		return fmt.Errorf("criteria operator %q is not supported", c.Operator)
	}
	var pkgs []xCriterion
	system := false
	for _, cr := range c.Criterion {
		if cr.Negate == "true" {
			return fmt.Errorf("negated criterion %s is not supported", cr.TestRef)
		}
		t, ok := p.tests[cr.TestRef]
		if !ok {
			return fmt.Errorf("criterion names unknown test %q", cr.TestRef)
		}
		isPkg, err := p.isPackageTest(t)
		if err != nil {
			return err
		}
		if isPkg {
			pkgs = append(pkgs, cr)
		} else {
			system = true
		}
	}
	if system && op != "OR" {
		return nil
	}
	*out = append(*out, pkgs...)
	for _, sub := range c.Criteria {
		if err := p.collect(sub, out); err != nil {
			return err
		}
	}
	return nil
}

// isPackageTest tells package tests from running-system tests.
func (p *parser) isPackageTest(t *xTest) (bool, error) {
	switch t.kind {
	case "dpkginfo_test":
		return true, nil
	case "textfilecontent54_test":
		o, ok := p.objects[t.Object.Ref]
		if !ok {
			return false, fmt.Errorf("test %s names unknown object %q", t.ID, t.Object.Ref)
		}
		return path.Base(strings.TrimSpace(o.Filename+o.Filepath)) == "manifest", nil
	}
	return false, nil
}

// emitStatement emits one advisory per binary package of each criterion.
func (p *parser) emitStatement(st statement) error {
	type key struct{ pkg, state, fixed string }
	seen := map[key]bool{}
	for _, cr := range st.criteria {
		t := p.tests[cr.TestRef]
		bins, err := p.binaries(t)
		if err != nil {
			return err
		}
		fixed, err := p.fixedVersion(t)
		if err != nil {
			return err
		}
		state := model.StateFixed
		if fixed == "" {
			state = unfixedState(cr.Comment)
		}
		for _, b := range bins {
			k := key{b, state, fixed}
			if seen[k] {
				continue
			}
			seen[k] = true
			a := st.base
			a.Package, a.State, a.FixedVersion = b, state, fixed
			if err := p.emit(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// unfixedState reads the criterion comment of a test without a version.
func unfixedState(comment string) string {
	c := strings.ToLower(comment)
	switch {
	case strings.Contains(c, "decision has been made to defer"):
		return model.StateDeferred
	case strings.Contains(c, "decision has been made to ignore"):
		return model.StateWontFix
	case strings.Contains(c, "while related to the cve in some way, is not affected"):
		return model.StateNotAffected
	}
	return model.StateUnfixed
}

// binaries returns the binary package names a package test checks.
func (p *parser) binaries(t *xTest) ([]string, error) {
	o, ok := p.objects[t.Object.Ref]
	if !ok {
		return nil, fmt.Errorf("test %s names unknown object %q", t.ID, t.Object.Ref)
	}
	v := o.Name
	if t.kind == "textfilecontent54_test" {
		v = o.Pattern
	}
	values := []string{strings.TrimSpace(v.Text)}
	if v.VarRef != "" {
		vals, ok := p.variables[v.VarRef]
		if !ok {
			return nil, fmt.Errorf("object %s names unknown variable %q", o.ID, v.VarRef)
		}
		values = vals
	}
	var names []string
	for _, val := range values {
		name := strings.TrimSpace(val)
		if t.kind == "textfilecontent54_test" {
			m := manifestRE.FindStringSubmatch(name)
			if m == nil {
				return nil, fmt.Errorf("object %s: pattern %q is not ^<package>(?::\\w+|)\\s+(.*)$", o.ID, val)
			}
			name = unescape(m[1])
		}
		if !pkgNameRE.MatchString(name) {
			return nil, fmt.Errorf("object %s: %q is not a package name", o.ID, val)
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("object %s names no package", o.ID)
	}
	return names, nil
}

// unescape undoes regexp quoting of the characters package names may hold.
func unescape(s string) string {
	return strings.NewReplacer(`\.`, ".", `\+`, "+", `\-`, "-").Replace(s)
}

// fixedVersion returns the version of a test's "less than" state, or "" when
// the test has no state.
func (p *parser) fixedVersion(t *xTest) (string, error) {
	switch len(t.States) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("test %s has %d states", t.ID, len(t.States))
	}
	s, ok := p.states[t.States[0].Ref]
	if !ok {
		return "", fmt.Errorf("test %s names unknown state %q", t.ID, t.States[0].Ref)
	}
	v := s.Evr
	if t.kind == "textfilecontent54_test" {
		v = s.Subexpression
	}
	if v.Operation != "less than" {
		return "", fmt.Errorf("state %s: operation %q, want \"less than\"", s.ID, v.Operation)
	}
	ver := strings.TrimPrefix(strings.TrimSpace(v.Text), "0:")
	if ver == "" || strings.ContainsFunc(ver, func(r rune) bool { return r <= ' ' }) {
		return "", fmt.Errorf("state %s: %q is not a version", s.ID, v.Text)
	}
	return ver, nil
}
