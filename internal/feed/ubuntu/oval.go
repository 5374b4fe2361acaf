// Package ubuntu reads Ubuntu's OVAL data from
// https://security-metadata.canonical.com/oval/: the CVE OVAL
// (com.ubuntu.<series>.cve.oval.xml), the USN OVAL
// (com.ubuntu.<series>.usn.oval.xml) and the package OVAL
// (com.ubuntu.<series>.pkg.oval.xml), each in its classic form and its
// "oci." form for container images. The generator named in <generator>
// tells the three apart.
//
// An OVAL document lists definitions, then the tests, objects, states and
// variables they refer to. The definitions' criteria name tests; a package
// test is
//
//   - classic: a dpkginfo_test whose dpkginfo_object names one binary package
//     (<name>) or refers to a constant_variable listing binary packages, and
//     whose optional dpkginfo_state holds <evr operation="less than">V</evr>;
//   - oci: a textfilecontent54_test on the image "manifest" file whose
//     pattern variable lists one regexp per binary package,
//     ^NAME(?::\w+|)\s+(.*)$, and whose optional state holds
//     <subexpression operation="less than">V</subexpression>.
//
// Each package test becomes one advisory per binary package it names
// (SourcePackage false, VersionFormat dpkg): OVAL compares the installed
// binary package's version, so the binary name is what an installed dpkg
// package must match, and V is a binary version. The CVE OVAL groups the
// binaries by their source package (named in the criterion comment), but
// binaries of one source may carry different versions, so the source name
// would not be an exact key. The states:
//
//   - a test with a "less than V" state: StateFixed, FixedVersion V (a "0:"
//     epoch is dropped). This covers the tracker statuses released, pending
//     with a version, and not-affected with a version ("is related to the CVE
//     in some way and has been fixed"), all of which OVAL evaluates as
//     "vulnerable below V".
//   - a test without a state only checks that the package is installed: the
//     package is affected. The criterion comment says why: "is affected, but
//     a decision has been made to defer addressing it" → StateDeferred;
//     "a decision has been made to ignore this issue" → StateWontFix; "while
//     related to the CVE in some way, is not affected" → StateNotAffected;
//     anything else ("is affected and needs fixing", "may need fixing",
//     "pending publication" without a version, "has been fixed, but no
//     release version available") → StateUnfixed.
//
// Tests on the running system rather than on packages (uname and kernel
// variable tests, livepatch files, /proc/modules, lsb-release, os-release)
// cannot be evaluated on an image: they are skipped, together with the
// package tests AND-ed with them. Kernel USNs thus yield no advisory.
//
// Ids: a CVE OVAL definition is one CVE (its CVE reference); a USN OVAL
// definition is one notice (its USN reference, USN-… or LSN-…) with its CVE
// references as Aliases; a package OVAL definition is one source package
// whose <cve test_ref=…> elements each give a CVE and the test that decides
// it. Severity comes from <severity> (the CVE's or the notice's Ubuntu
// priority), or from the cve element's priority attribute, mapped:
// negligible → Negligible, low → Low, medium → Medium, high → High,
// critical → Critical; untriaged, none (a notice that fixes no security
// issue) or anything else → Unknown. The upstream
// word is kept in UpstreamSeverity.
//
// The series comes from the definition ids (oval:com.ubuntu.<series>:def:…)
// and, when the document's name follows the upstream file names, must agree
// with it. Namespace is "ubuntu:<version>" (see Namespace); a Pro variant
// document (com.ubuntu.fips-updates_jammy.…) gets "ubuntu:<version>/<variant>"
// so that its advisories never apply to plain images. The scope is
// "ubuntu-oval/<series>/<cve|usn|pkg>" (series with its variant prefix).
//
// The document is read as a stream with encoding/xml, keeping only the
// compact definitions until the tests, objects, states and variables that
// follow them have been read. A truncated document, a reference to a missing
// element, a negated criterion, or a state with an operation other than
// "less than" is an error.
package ubuntu

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/model"
)

// Name is the feed's source name.
const Name = "ubuntu-oval"

// BaseURL is where Canonical publishes OVAL.
const BaseURL = "https://security-metadata.canonical.com/oval/"

// Limits on untrusted input.
const (
	maxDocBytes    = 4 << 30 // one decompressed document
	maxDefinitions = 1 << 20
	maxElements    = 1 << 23 // tests, objects, states and variables together
	maxTextBytes   = 1 << 20 // one description
)

const ovalNS = "http://oval.mitre.org/XMLSchema/oval-definitions-5"

// Feed is the Ubuntu OVAL feed. Its zero value is ready to use.
type Feed struct{}

var _ feed.Feed = Feed{}

// Name implements feed.Feed.
func (Feed) Name() string { return Name }

// URLs implements feed.Feed: the CVE OVAL of each supported series. The CVE
// OVAL carries fixed and unfixed issues alike; the USN OVAL only repeats its
// fixed ones per notice, so it is not fetched by default.
func (Feed) URLs() []string {
	var urls []string
	for _, s := range Supported {
		urls = append(urls, BaseURL+"com.ubuntu."+s+".cve.oval.xml.bz2")
	}
	return urls
}

var fileRE = regexp.MustCompile(`^(?:oci\.)?com\.ubuntu\.(?:([a-z0-9-]+)_)?([a-z]+)\.(cve|usn|pkg)\.oval\.xml(?:\.(?:bz2|gz|xz|zst))?$`)

// Sniff implements feed.Feed: an OVAL document made by one of Canonical's
// generators, or one named like an upstream Ubuntu OVAL file.
func (Feed) Sniff(name string, head []byte) bool {
	h := string(head)
	if !strings.Contains(h, "<oval_definitions") && !strings.Contains(h, "<?xml") {
		return false
	}
	if strings.Contains(h, "Canonical CVE OVAL Generator") || strings.Contains(h, "Canonical USN OVAL Generator") ||
		strings.Contains(h, "Canonical Package OVAL Generator") || strings.Contains(h, "oval:com.ubuntu.") {
		return true
	}
	return fileRE.MatchString(path.Base(name))
}

// Parse implements feed.Feed.
func (Feed) Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (string, error) {
	p := &parser{ctx: ctx, emit: emit}
	if m := fileRE.FindStringSubmatch(path.Base(name)); m != nil {
		p.variant, p.fileSeries, p.fileKind = m[1], m[2], m[3]
	}
	lr := &limitedReader{r: r, n: maxDocBytes}
	if err := p.read(xml.NewDecoder(lr)); err != nil {
		if lr.n < 0 {
			err = fmt.Errorf("document larger than %d bytes", int64(maxDocBytes))
		}
		return "", fmt.Errorf("%s: %s: %w", Name, name, err)
	}
	scope, err := p.resolve()
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", Name, name, err)
	}
	return scope, nil
}

// limitedReader fails once more than n bytes are read.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(b []byte) (int, error) {
	if l.n < 0 {
		return 0, errors.New("document too large")
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errors.New("document too large")
	}
	return n, err
}

// XML shapes, matched by local name.
type (
	xDefinition struct {
		ID          string     `xml:"id,attr"`
		Class       string     `xml:"class,attr"`
		Title       string     `xml:"metadata>title"`
		Description string     `xml:"metadata>description"`
		References  []xRef     `xml:"metadata>reference"`
		Severity    string     `xml:"metadata>advisory>severity"`
		CVEs        []xCVE     `xml:"metadata>advisory>cve"`
		Criteria    *xCriteria `xml:"criteria"`
	}
	xRef struct {
		Source string `xml:"source,attr"`
		RefID  string `xml:"ref_id,attr"`
		RefURL string `xml:"ref_url,attr"`
	}
	xCVE struct {
		ID       string `xml:",chardata"`
		Priority string `xml:"priority,attr"`
		TestRef  string `xml:"test_ref,attr"`
	}
	xCriteria struct {
		Operator  string        `xml:"operator,attr"`
		Negate    string        `xml:"negate,attr"`
		Criteria  []xCriteria   `xml:"criteria"`
		Criterion []xCriterion  `xml:"criterion"`
		Extend    []xExtendDefs `xml:"extend_definition"`
	}
	xCriterion struct {
		TestRef string `xml:"test_ref,attr"`
		Comment string `xml:"comment,attr"`
		Negate  string `xml:"negate,attr"`
	}
	xExtendDefs struct {
		Negate string `xml:"negate,attr"`
	}
	xTest struct {
		kind   string
		ID     string `xml:"id,attr"`
		Object struct {
			Ref string `xml:"object_ref,attr"`
		} `xml:"object"`
		States []struct {
			Ref string `xml:"state_ref,attr"`
		} `xml:"state"`
	}
	xObject struct {
		kind     string
		ID       string `xml:"id,attr"`
		Name     xValue `xml:"name"`     // dpkginfo_object
		Filename string `xml:"filename"` // textfilecontent54_object
		Filepath string `xml:"filepath"`
		Pattern  xValue `xml:"pattern"`
	}
	xState struct {
		ID            string `xml:"id,attr"`
		Evr           xValue `xml:"evr"`
		Subexpression xValue `xml:"subexpression"`
	}
	xValue struct {
		Text      string `xml:",chardata"`
		VarRef    string `xml:"var_ref,attr"`
		Operation string `xml:"operation,attr"`
	}
	xVariable struct {
		ID     string   `xml:"id,attr"`
		Values []string `xml:"value"`
	}
)

type parser struct {
	ctx  context.Context
	emit func(model.Advisory) error

	variant, fileSeries, fileKind string // from the document's name, if upstream-like

	kind      string // cve, usn, pkg: from the generator
	series    string // from the definition ids
	defs      []xDefinition
	tests     map[string]*xTest
	objects   map[string]*xObject
	states    map[string]*xState
	variables map[string][]string
	elements  int
}

var generators = map[string]string{
	"Canonical CVE OVAL Generator":     "cve",
	"Canonical USN OVAL Generator":     "usn",
	"Canonical Package OVAL Generator": "pkg",
}

// read decodes the document into p.
func (p *parser) read(d *xml.Decoder) error {
	p.tests, p.objects, p.states, p.variables = map[string]*xTest{}, map[string]*xObject{}, map[string]*xState{}, map[string][]string{}
	var rootSeen, rootDone bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if rootDone {
				return fmt.Errorf("line %d: element <%s> after the document", line(d), t.Name.Local)
			}
			if !rootSeen {
				if t.Name.Local != "oval_definitions" || t.Name.Space != ovalNS {
					return fmt.Errorf("root element is <%s %s>, not OVAL definitions", t.Name.Local, t.Name.Space)
				}
				rootSeen = true
				continue
			}
			if err := p.section(d, t); err != nil {
				return err
			}
		case xml.EndElement:
			rootDone = true
		case xml.CharData:
			if rootDone && len(strings.TrimSpace(string(t))) > 0 {
				return fmt.Errorf("line %d: text after the document", line(d))
			}
		}
	}
	if !rootDone {
		return errors.New("no OVAL document, or it ends early")
	}
	if p.kind == "" {
		return errors.New("no <generator> naming a Canonical OVAL generator")
	}
	return nil
}

func line(d *xml.Decoder) int {
	l, _ := d.InputPos()
	return l
}

// section reads one child of the root element.
func (p *parser) section(d *xml.Decoder, start xml.StartElement) error {
	switch start.Name.Local {
	case "generator":
		var g struct {
			Product string `xml:"product_name"`
		}
		if err := d.DecodeElement(&g, &start); err != nil {
			return fmt.Errorf("generator: %w", err)
		}
		kind, ok := generators[strings.TrimSpace(g.Product)]
		if !ok {
			return fmt.Errorf("generator %q is not a Canonical OVAL generator", g.Product)
		}
		if p.fileKind != "" && p.fileKind != kind {
			return fmt.Errorf("generator %q makes %s OVAL, but the file name says %s", g.Product, kind, p.fileKind)
		}
		p.kind = kind
		return nil
	case "definitions":
		return p.children(d, "definitions", func(el xml.StartElement) error {
			if el.Name.Local != "definition" {
				return d.Skip()
			}
			if len(p.defs) >= maxDefinitions {
				return fmt.Errorf("more than %d definitions", maxDefinitions)
			}
			var def xDefinition
			if err := d.DecodeElement(&def, &el); err != nil {
				return err
			}
			if len(def.Description) > maxTextBytes {
				return fmt.Errorf("definition %s: description longer than %d bytes", def.ID, maxTextBytes)
			}
			p.defs = append(p.defs, def)
			return p.ctx.Err()
		})
	case "tests":
		return p.children(d, "tests", func(el xml.StartElement) error {
			t := &xTest{kind: el.Name.Local}
			if err := d.DecodeElement(t, &el); err != nil {
				return err
			}
			return add(p, p.tests, t.ID, t, el)
		})
	case "objects":
		return p.children(d, "objects", func(el xml.StartElement) error {
			o := &xObject{kind: el.Name.Local}
			if err := d.DecodeElement(o, &el); err != nil {
				return err
			}
			return add(p, p.objects, o.ID, o, el)
		})
	case "states":
		return p.children(d, "states", func(el xml.StartElement) error {
			s := &xState{}
			if err := d.DecodeElement(s, &el); err != nil {
				return err
			}
			return add(p, p.states, s.ID, s, el)
		})
	case "variables":
		return p.children(d, "variables", func(el xml.StartElement) error {
			v := &xVariable{}
			if err := d.DecodeElement(v, &el); err != nil {
				return err
			}
			return add(p, p.variables, v.ID, v.Values, el)
		})
	}
	return d.Skip()
}

// add stores an element by id, bounding the count and refusing duplicates.
func add[T any](p *parser, m map[string]T, id string, v T, el xml.StartElement) error {
	if id == "" {
		return fmt.Errorf("<%s> without id", el.Name.Local)
	}
	if _, dup := m[id]; dup {
		return fmt.Errorf("id %s given twice", id)
	}
	if p.elements++; p.elements > maxElements {
		return fmt.Errorf("more than %d tests, objects, states and variables", maxElements)
	}
	m[id] = v
	return nil
}

// children calls f for each child element of the section just opened, with
// the decoder on that child's start tag; f must consume the child.
func (p *parser) children(d *xml.Decoder, section string, f func(xml.StartElement) error) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("%s: %w", section, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := f(t); err != nil {
				return fmt.Errorf("%s: line %d: %w", section, line(d), err)
			}
		case xml.EndElement:
			return nil
		}
	}
}
