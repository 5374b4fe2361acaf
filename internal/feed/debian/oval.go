package debian

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/model"
)

const (
	ovalName     = "debian-oval"
	ovalURL      = "https://www.debian.org/security/oval/oval-definitions-%s.xml.bz2"
	ovalPlatform = "Debian GNU/Linux "
	ovalUnfixed  = "0" // the generator's bound ("0:0") for releases with no fix
)

// ovalReleases are the releases whose OVAL URLs offers by default.
var ovalReleases = []string{"buster", "bullseye", "bookworm", "trixie"}

var (
	ovalFileRe = regexp.MustCompile(`^oval-definitions-([a-z]+)\.xml`)
	advisoryRe = regexp.MustCompile(`^[A-Z]+-[0-9A-Za-z][0-9A-Za-z.-]*$`)
	// debianNameRe is Debian policy's package name syntax (§5.6.1).
	debianNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
)

// errUnnamed marks a dpkginfo criterion that names no package.
var errUnnamed = errors.New("no package name")

type ovalFeed struct{}

// NewOVAL returns the Debian OVAL feed, one document per release.
func NewOVAL() feed.Feed { return ovalFeed{} }

func (ovalFeed) Name() string { return ovalName }

func (ovalFeed) URLs() []string {
	urls := make([]string, len(ovalReleases))
	for i, c := range ovalReleases {
		urls[i] = fmt.Sprintf(ovalURL, c)
	}
	return urls
}

// Sniff accepts an oval_definitions document whose generator product is
// Debian. When head ends before the product name, it falls back to the
// name: oval-definitions-<codename>.xml (the URL's form).
func (ovalFeed) Sniff(name string, head []byte) bool {
	if !bytes.Contains(head, []byte("<oval_definitions")) {
		return false
	}
	const tag = "product_name>"
	if i := bytes.Index(head, []byte(tag)); i >= 0 {
		if rest := head[i+len(tag):]; bytes.IndexByte(rest, '<') >= 0 {
			return bytes.HasPrefix(bytes.TrimSpace(rest), []byte("Debian<"))
		}
	}
	return ovalFileRe.MatchString(path.Base(name))
}

// Parse reads one release's OVAL document.
func (ovalFeed) Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, error) {
	scope, _, err := parseOVAL(ctx, name, r, emit)
	return scope, err
}

// ovalStats counts what a parse saw, for tests.
type ovalStats struct {
	Definitions int // <definition> elements
	Criteria    int // criteria on dpkginfo tests
	Duplicates  int // advisories left out as repeats
	Unnamed     int // criteria left out as naming no package
}

type ovalDef struct {
	id, class, title, description string
	refs, products, testRefs      []string
}

type ovalTest struct {
	dpkg                  bool
	object, state, reason string // reason: why it cannot be used
}

type ovalValue struct{ value, reason string } // object name or state evr

type ovalParser struct {
	ctx       context.Context
	dec       *xml.Decoder
	br        *budgetReader
	open      []xml.Name // elements open, innermost last
	tokens    int
	intern    map[string]string
	platforms map[string]bool
	product   string
	defs      []ovalDef
	tests     map[string]ovalTest
	objects   map[string]ovalValue
	states    map[string]ovalValue
	stats     ovalStats
}

func parseOVAL(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, ovalStats, error) {
	br := &budgetReader{r: r}
	p := &ovalParser{
		ctx: ctx, dec: xml.NewDecoder(br), br: br,
		intern: map[string]string{}, platforms: map[string]bool{},
		tests: map[string]ovalTest{}, objects: map[string]ovalValue{}, states: map[string]ovalValue{},
	}
	scope, err := p.parse(name, emit)
	if err != nil {
		return "", p.stats, fmt.Errorf("debian oval: %w", err)
	}
	return scope, p.stats, nil
}

func (p *ovalParser) parse(name string, emit func(model.Advisory) error) (string, error) {
	if err := p.document(); err != nil {
		return "", fmt.Errorf("line %d: %w", p.line(), err)
	}
	codename, err := p.release(name)
	if err != nil {
		return "", err
	}
	ns, _ := Namespace(codename)
	if err := p.emit(ns, emit); err != nil {
		return "", err
	}
	return ovalName + "/" + codename, nil
}

func (p *ovalParser) line() int {
	l, _ := p.dec.InputPos()
	return l
}

// document reads the root element and checks nothing but whitespace,
// comments and processing instructions surround it.
func (p *ovalParser) document() error {
	root := false
	for {
		tok, err := p.next()
		if errors.Is(err, io.EOF) && root {
			return nil
		}
		if err != nil {
			return unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root {
				return fmt.Errorf("second root element <%s>", t.Name.Local)
			}
			if t.Name.Local != "oval_definitions" {
				return fmt.Errorf("root element <%s>, want <oval_definitions>", t.Name.Local)
			}
			root = true
			if err := p.children(p.section); err != nil {
				return err
			}
			if p.product != "Debian" {
				return fmt.Errorf("generator product %q, want \"Debian\"", p.product)
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
}

// next reads one token within the size, depth and cancellation bounds.
// It uses RawToken, which skips name space translation (only local names
// matter here), and checks that end tags match itself.
func (p *ovalParser) next() (xml.Token, error) {
	if p.tokens++; p.tokens%4096 == 0 {
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
	}
	p.br.mark(p.dec.InputOffset())
	tok, err := p.dec.RawToken()
	if err != nil {
		if errors.Is(err, io.EOF) && len(p.open) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case xml.StartElement:
		if len(p.open) >= maxDepth {
			return nil, fmt.Errorf("elements nested deeper than %d", maxDepth)
		}
		p.open = append(p.open, t.Name)
	case xml.EndElement:
		if n := len(p.open); n == 0 || p.open[n-1] != t.Name {
			return nil, fmt.Errorf("unexpected end tag </%s>", t.Name.Local)
		}
		p.open = p.open[:len(p.open)-1]
	}
	return tok, nil
}

// children calls fn on each child element of the element just started, up
// to its end; fn consumes the child whole.
func (p *ovalParser) children(fn func(xml.StartElement) error) error {
	for {
		tok, err := p.next()
		if err != nil {
			return unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := fn(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

func (p *ovalParser) skip() error {
	return p.children(func(xml.StartElement) error { return p.skip() })
}

// text returns the trimmed character data of the element just started.
func (p *ovalParser) text(what string) (string, error) {
	var b []byte
	for {
		tok, err := p.next()
		if err != nil {
			return "", unexpectedEOF(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(b)+len(t) > maxValueBytes {
				return "", fmt.Errorf("%s: %w", what, errTooLarge)
			}
			b = append(b, t...)
		case xml.StartElement:
			return "", fmt.Errorf("%s: unexpected element <%s>", what, t.Name.Local)
		case xml.EndElement:
			return string(bytes.TrimSpace(b)), nil
		}
	}
}

func attr(s xml.StartElement, name string) string {
	for _, a := range s.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (p *ovalParser) internStr(s string) string {
	if v, ok := p.intern[s]; ok {
		return v
	}
	p.intern[s] = s
	return s
}

func (p *ovalParser) section(s xml.StartElement) error {
	switch s.Name.Local {
	case "generator":
		return p.children(func(c xml.StartElement) error {
			if c.Name.Local != "product_name" {
				return p.skip()
			}
			var err error
			p.product, err = p.text("generator product_name")
			return err
		})
	case "definitions":
		return p.children(p.definition)
	case "tests":
		return p.children(p.test)
	case "objects":
		return p.children(p.object)
	case "states":
		return p.children(p.state)
	}
	return p.skip()
}

func (p *ovalParser) definition(s xml.StartElement) error {
	if s.Name.Local != "definition" {
		return p.skip()
	}
	p.stats.Definitions++
	d := ovalDef{id: attr(s, "id"), class: attr(s, "class")}
	if err := checkName("definition id", d.id); err != nil {
		return err
	}
	err := p.children(func(c xml.StartElement) error {
		switch c.Name.Local {
		case "metadata":
			return p.metadata(&d)
		case "criteria":
			return p.criteria(&d, c)
		}
		return p.skip()
	})
	if err != nil {
		return fmt.Errorf("definition %s: %w", d.id, err)
	}
	// Only these two classes state vulnerabilities; inventory and
	// compliance definitions do not.
	if d.class != "vulnerability" && d.class != "patch" {
		return nil
	}
	if len(p.defs) >= maxItems {
		return fmt.Errorf("more than %d definitions", maxItems)
	}
	p.defs = append(p.defs, d)
	return nil
}

func (p *ovalParser) metadata(d *ovalDef) error {
	return p.children(func(c xml.StartElement) error {
		var err error
		switch c.Name.Local {
		case "title":
			d.title, err = p.text("title")
		case "description":
			d.description, err = p.text("description")
		case "reference":
			if id := attr(c, "ref_id"); id != "" {
				d.refs = append(d.refs, id)
			}
			err = p.skip()
		case "affected":
			err = p.children(func(a xml.StartElement) error {
				switch a.Name.Local {
				case "platform":
					pl, err := p.text("platform")
					p.platforms[pl] = true
					return err
				case "product":
					pr, err := p.text("product")
					d.products = append(d.products, pr)
					return err
				}
				return p.skip()
			})
		default:
			err = p.skip()
		}
		return err
	})
}

func negated(s xml.StartElement) bool {
	v := attr(s, "negate")
	return v == "true" || v == "1"
}

func (p *ovalParser) criteria(d *ovalDef, s xml.StartElement) error {
	if negated(s) {
		return errors.New("negated criteria are not supported")
	}
	return p.children(func(c xml.StartElement) error {
		switch c.Name.Local {
		case "criteria":
			return p.criteria(d, c)
		case "criterion":
			if negated(c) {
				return errors.New("negated criterion is not supported")
			}
			ref := attr(c, "test_ref")
			if err := checkName("criterion test_ref", ref); err != nil {
				return err
			}
			d.testRefs = append(d.testRefs, p.internStr(ref))
		}
		return p.skip()
	})
}

func (p *ovalParser) test(s xml.StartElement) error {
	if !strings.HasSuffix(s.Name.Local, "_test") {
		return p.skip()
	}
	id := attr(s, "id")
	where := fmt.Sprintf("%s %s", s.Name.Local, id)
	_, dup := p.tests[id]
	if err := p.checkNew(where, id, len(p.tests), dup); err != nil {
		return err
	}
	t := ovalTest{dpkg: s.Name.Local == "dpkginfo_test"}
	if !t.dpkg {
		p.tests[id] = t
		return p.skip()
	}
	if ce := attr(s, "check_existence"); ce != "" && ce != "at_least_one_exists" {
		t.reason = fmt.Sprintf("check_existence %q is not supported", ce)
	}
	err := p.children(func(c xml.StartElement) error {
		switch c.Name.Local {
		case "object":
			t.object = attr(c, "object_ref")
		case "state":
			if t.state != "" {
				t.reason = "more than one state is not supported"
			}
			t.state = attr(c, "state_ref")
		}
		return p.skip()
	})
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	p.tests[id] = t
	return nil
}

// checkNew validates the id of a new test, object or state.
func (p *ovalParser) checkNew(where, id string, n int, dup bool) error {
	if err := checkName(where+": id", id); err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%s: id defined twice", where)
	}
	if n >= maxItems {
		return fmt.Errorf("%s: more than %d of its kind", where, maxItems)
	}
	return nil
}

func (p *ovalParser) object(s xml.StartElement) error {
	if s.Name.Local != "dpkginfo_object" {
		return p.skip()
	}
	return p.value(s, p.objects, "name", "operation", "equals")
}

func (p *ovalParser) state(s xml.StartElement) error {
	if s.Name.Local != "dpkginfo_state" {
		return p.skip()
	}
	return p.value(s, p.states, "evr", "", "")
}

// value reads a dpkginfo object or state: its one child element field,
// whose attribute key (when given) must be absent or equal want. Anything
// else it holds makes it unusable, with the reason kept.
func (p *ovalParser) value(s xml.StartElement, into map[string]ovalValue, field, key, want string) error {
	id := attr(s, "id")
	where := fmt.Sprintf("%s %s", s.Name.Local, id)
	_, dup := into[id]
	if err := p.checkNew(where, id, len(into), dup); err != nil {
		return err
	}
	var v ovalValue
	seen := false
	err := p.children(func(c xml.StartElement) error {
		if c.Name.Local != field || seen {
			v.reason = fmt.Sprintf("<%s> is not supported", c.Name.Local)
			return p.skip()
		}
		seen = true
		if field == "evr" {
			op, dt := attr(c, "operation"), attr(c, "datatype")
			if op != "less than" || dt != "debian_evr_string" {
				v.reason = fmt.Sprintf("evr operation %q datatype %q is not supported", op, dt)
			}
		} else if got := attr(c, key); got != "" && got != want {
			v.reason = fmt.Sprintf("%s %s %q is not supported", field, key, got)
		}
		if attr(c, "var_ref") != "" {
			v.reason = field + " var_ref is not supported"
		}
		var err error
		v.value, err = p.text(field)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if !seen {
		v.reason = "no <" + field + ">"
	}
	into[id] = v
	return nil
}

// release tells the document's codename from its name and its platforms.
func (p *ovalParser) release(name string) (string, error) {
	var fromName, fromPlatform string
	if m := ovalFileRe.FindStringSubmatch(path.Base(name)); m != nil {
		fromName = m[1]
		if _, ok := Namespace(fromName); !ok {
			return "", fmt.Errorf("name %q: unknown release %q", name, fromName)
		}
	}
	if len(p.platforms) > 1 {
		return "", fmt.Errorf("definitions name %d platforms, want one", len(p.platforms))
	}
	for pl := range p.platforms {
		v, ok := strings.CutPrefix(pl, ovalPlatform)
		c, known := codenameOf(v)
		if !ok || !known {
			return "", fmt.Errorf("platform %q: not a known Debian release", pl)
		}
		fromPlatform = c
	}
	switch {
	case fromName != "" && fromPlatform != "" && fromName != fromPlatform:
		return "", fmt.Errorf("name %q says %s but the definitions' platform says %s", name, fromName, fromPlatform)
	case fromName != "":
		return fromName, nil
	case fromPlatform != "":
		return fromPlatform, nil
	}
	return "", fmt.Errorf("name %q and definitions name no release", name)
}

// emit resolves each definition's dpkginfo criteria into advisories.
func (p *ovalParser) emit(ns string, emit func(model.Advisory) error) error {
	type key struct{ id, pkg, state, fixed string }
	seen := map[key]bool{}
	for i := range p.defs {
		d := &p.defs[i]
		for _, ref := range d.testRefs {
			if err := p.ctx.Err(); err != nil {
				return err
			}
			t, ok := p.tests[ref]
			if !ok {
				return fmt.Errorf("definition %s: criterion references unknown test %s", d.id, ref)
			}
			if !t.dpkg {
				continue
			}
			p.stats.Criteria++
			a, err := p.advisory(d, ref, t, ns)
			if errors.Is(err, errUnnamed) {
				p.stats.Unnamed++
				continue
			}
			if err != nil {
				return fmt.Errorf("definition %s: test %s: %w", d.id, ref, err)
			}
			k := key{a.ID, a.Package, a.State, a.FixedVersion}
			if seen[k] {
				p.stats.Duplicates++
				continue
			}
			seen[k] = true
			if err := emit(a); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *ovalParser) advisory(d *ovalDef, ref string, t ovalTest, ns string) (model.Advisory, error) {
	var a model.Advisory
	if t.reason != "" {
		return a, errors.New(t.reason)
	}
	obj, ok := p.objects[t.object]
	if !ok {
		return a, fmt.Errorf("unknown dpkginfo_object %q", t.object)
	}
	if obj.reason != "" {
		return a, fmt.Errorf("dpkginfo_object %s: %s", t.object, obj.reason)
	}
	pkg := obj.value
	if !debianNameRe.MatchString(pkg) {
		// The generator's "None" or prose names ("perl and
		// libapache2-mod-perl2"): a single product names the package.
		if len(d.products) != 1 || !debianNameRe.MatchString(d.products[0]) {
			return a, errUnnamed
		}
		pkg = d.products[0]
	}
	id, _, _ := strings.Cut(d.title, " ")
	if !advisoryRe.MatchString(id) || len(id) > maxNameLen {
		return a, fmt.Errorf("title %q does not start with an advisory id", d.title)
	}
	a = model.Advisory{
		Source: ovalName, ID: id, Namespace: ns, Package: pkg,
		SourcePackage: true, VersionFormat: model.KindDpkg,
		State: model.StateUnfixed, Severity: model.SeverityUnknown,
		Title: d.title, Description: d.description, Link: trackerLink + id,
	}
	for _, r := range d.refs {
		if r != id && !slices.Contains(a.Aliases, r) {
			a.Aliases = append(a.Aliases, r)
		}
	}
	if t.state == "" {
		return a, nil // any installed version: affected, no fix
	}
	st, ok := p.states[t.state]
	if !ok {
		return a, fmt.Errorf("unknown dpkginfo_state %q", t.state)
	}
	if st.reason != "" {
		return a, fmt.Errorf("dpkginfo_state %s: %s", t.state, st.reason)
	}
	if err := checkName("evr", st.value); err != nil {
		return a, fmt.Errorf("dpkginfo_state %s: %w", t.state, err)
	}
	// dpkg compares "0:V" and "V" as equal; "0" is the generator's "no fix".
	if fixed := strings.TrimPrefix(st.value, "0:"); fixed != ovalUnfixed {
		if err := checkName("evr", fixed); err != nil {
			return a, fmt.Errorf("dpkginfo_state %s: %w", t.state, err)
		}
		a.State, a.FixedVersion = model.StateFixed, fixed
	}
	return a, nil
}
