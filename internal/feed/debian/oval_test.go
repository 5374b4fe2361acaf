package debian

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

var wholeReleases = []string{"wheezy", "jessie", "stretch", "buster", "bullseye", "bookworm"}

func wholeName(codename string) string { return "oval-definitions-" + codename + ".xml.bz2" }

func wholeOVAL(t testing.TB, codename string) []byte {
	return readShared(t, "vulndata", "debian-oval", "whole-2023-07-14", wholeName(codename))
}

func ovalFixture(t testing.TB) string {
	return string(readShared(t, "vulndata", "debian-oval", "fixtures", "oval-definitions-bullseye.xml.bz2"))
}

type ovalResult struct {
	advs  []model.Advisory
	scope string
	stats ovalStats
	err   error
	doc   []byte
}

// Whole files are read and parsed once per test binary run.
var (
	wholeMu     sync.Mutex
	wholeParsed = map[string]*ovalResult{}
)

func parseWhole(t *testing.T, codename string) (*ovalResult, []byte) {
	t.Helper()
	if testing.Short() {
		t.Skip("whole OVAL files are slow to decompress and parse; skipped in -short mode")
	}
	wholeMu.Lock()
	defer wholeMu.Unlock()
	if r, ok := wholeParsed[codename]; ok {
		return r, r.doc
	}
	r := &ovalResult{doc: wholeOVAL(t, codename)}
	r.scope, r.stats, r.err = parseOVAL(context.Background(), wholeName(codename), bytes.NewReader(r.doc), func(a model.Advisory) error {
		r.advs = append(r.advs, a)
		return nil
	})
	wholeParsed[codename] = r
	return r, r.doc
}

func TestOVALFixture(t *testing.T) {
	advs, scope, err := parseAll(NewOVAL(), "oval-definitions-bullseye.xml.bz2", ovalFixture(t))
	if err != nil || scope != "debian-oval/bullseye" {
		t.Fatalf("Parse = %q, %v", scope, err)
	}
	desc5405 := "389 Directory Server in Red Hat Enterprise Linux Desktop 6 through 7, Red Hat Enterprise Linux HPC Node 6 through 7, Red Hat Enterprise Linux Server 6 through 7, and Red Hat Enterprise Linux Workstation 6 through 7 allows remote attackers to obtain user passwords."
	base := model.Advisory{Source: "debian-oval", Namespace: "debian:11", SourcePackage: true, VersionFormat: "dpkg", Severity: "Unknown"}
	with := func(f func(*model.Advisory)) model.Advisory { a := base; f(&a); return a }
	want := []model.Advisory{
		with(func(a *model.Advisory) {
			a.ID, a.Package, a.State, a.FixedVersion = "CVE-2016-5405", "389-ds-base", "fixed", "1.3.5.15-1"
			a.Title, a.Description, a.Link = "CVE-2016-5405 389-ds-base", desc5405, trackerLink+a.ID
		}),
		with(func(a *model.Advisory) {
			a.ID, a.Package, a.State = "CVE-2016-5416", "389-ds-base", "unfixed"
			a.Title, a.Link = "CVE-2016-5416 389-ds-base", trackerLink+a.ID
		}),
		with(func(a *model.Advisory) {
			a.ID, a.Package, a.State, a.FixedVersion = "CVE-2022-31625", "php7.4", "fixed", "7.4.30-1+deb11u1"
			a.Title, a.Description, a.Link = "CVE-2022-31625 php7.4", "security update", trackerLink+a.ID
		}),
		with(func(a *model.Advisory) {
			a.ID, a.Package, a.State, a.FixedVersion = "DSA-5179-1", "php7.4", "fixed", "7.4.30-1+deb11u1"
			a.Aliases = []string{"CVE-2022-31625", "CVE-2022-31626"}
			a.Title, a.Description, a.Link = "DSA-5179-1 php7.4", "security update", trackerLink+a.ID
		}),
	}
	if len(advs) != len(want) {
		t.Fatalf("%d advisories, want %d: %+v", len(advs), len(want), advs)
	}
	for i := range want {
		// The fixture's second description is the tracker's; compare the rest.
		if i == 1 {
			want[i].Description = advs[i].Description
		}
		if fmt.Sprintf("%+v", advs[i]) != fmt.Sprintf("%+v", want[i]) {
			t.Errorf("advisory %d:\n got %+v\nwant %+v", i, advs[i], want[i])
		}
	}
}

func TestOVALTruncated(t *testing.T) {
	truncations(t, NewOVAL(), "oval-definitions-bullseye.xml", ovalFixture(t))
}

// expectedOVAL computes, with regular expressions over the raw document and
// independently of the parser, the definitions count, the dpkginfo criteria
// count, how many of those name no package (neither the object nor a single
// product) and the set of distinct id|package|fixed-or-unfixed triples.
func expectedOVAL(t *testing.T, doc []byte) (defs, criteria, unnamed int, triples map[string]bool) {
	nameRe := regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	attrRe := func(name string) *regexp.Regexp { return regexp.MustCompile(`\b` + name + `="([^"]*)"`) }
	idRe, objRe, steRe, refRe := attrRe("id"), attrRe("object_ref"), attrRe("state_ref"), attrRe("test_ref")
	tests := map[string][2]string{}
	for _, m := range regexp.MustCompile(`(?s)<dpkginfo_test ([^>]*)>(.*?)</dpkginfo_test>`).FindAllSubmatch(doc, -1) {
		tests[string(idRe.FindSubmatch(m[1])[1])] = [2]string{string(objRe.FindSubmatch(m[2])[1]), string(steRe.FindSubmatch(m[2])[1])}
	}
	names := map[string]string{}
	for _, m := range regexp.MustCompile(`<dpkginfo_object ([^>]*)>\s*<name(?:/>|>([^<]*)</name>)`).FindAllSubmatch(doc, -1) {
		names[string(idRe.FindSubmatch(m[1])[1])] = string(m[2])
	}
	evrs := map[string]string{}
	for _, m := range regexp.MustCompile(`<dpkginfo_state ([^>]*)>\s*<evr [^>]*>([^<]*)</evr>`).FindAllSubmatch(doc, -1) {
		evrs[string(idRe.FindSubmatch(m[1])[1])] = string(m[2])
	}
	titleRe, productRe := regexp.MustCompile(`<title>(\S+)`), regexp.MustCompile(`<product>([^<]*)`)
	var unnamedDefs []string
	triples = map[string]bool{}
	for _, d := range regexp.MustCompile(`(?s)<definition .*?</definition>`).FindAll(doc, -1) {
		defs++
		id := string(titleRe.FindSubmatch(d)[1])
		for _, ref := range refRe.FindAllSubmatch(d, -1) {
			test, ok := tests[string(ref[1])]
			if !ok {
				continue
			}
			criteria++
			name := names[test[0]]
			if products := productRe.FindAllSubmatch(d, -1); !nameRe.MatchString(name) {
				if len(products) != 1 || !nameRe.Match(products[0][1]) {
					unnamed++
					unnamedDefs = append(unnamedDefs, id+" "+name)
					continue
				}
				name = string(products[0][1])
			}
			fixed := strings.TrimPrefix(evrs[test[1]], "0:")
			if fixed == "0" {
				fixed = "unfixed"
			}
			triples[id+"|"+name+"|"+fixed] = true
		}
	}
	if n := bytes.Count(doc, []byte("<definition ")); n != defs {
		t.Fatalf("regexp found %d definitions, byte count %d", defs, n)
	}
	if len(unnamedDefs) > 0 {
		t.Logf("criteria naming no package: %q", unnamedDefs)
	}
	return defs, criteria, unnamed, triples
}

func TestOVALWhole(t *testing.T) {
	for _, codename := range wholeReleases {
		t.Run(codename, func(t *testing.T) {
			r, doc := parseWhole(t, codename)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.scope != "debian-oval/"+codename {
				t.Errorf("scope %q", r.scope)
			}
			ns, _ := Namespace(codename)
			defs, criteria, unnamed, triples := expectedOVAL(t, doc)
			if r.stats.Definitions != defs || r.stats.Criteria != criteria || r.stats.Unnamed != unnamed {
				t.Errorf("parsed %d definitions, %d dpkginfo criteria, %d unnamed; the document has %d, %d, %d",
					r.stats.Definitions, r.stats.Criteria, r.stats.Unnamed, defs, criteria, unnamed)
			}
			got := map[string]bool{}
			for _, a := range r.advs {
				if why := wellFormed(a, "debian-oval"); why != "" || a.Namespace != ns {
					t.Fatalf("%+v: %s", a, why)
				}
				fixed := a.FixedVersion
				if a.State == model.StateUnfixed {
					fixed = "unfixed"
				}
				got[a.ID+"|"+a.Package+"|"+fixed] = true
			}
			if len(r.advs) != len(got) || len(r.advs)+r.stats.Duplicates+unnamed != criteria {
				t.Errorf("%d advisories (%d distinct) + %d duplicates + %d unnamed, %d criteria", len(r.advs), len(got), r.stats.Duplicates, unnamed, criteria)
			}
			for k := range triples {
				if !got[k] {
					t.Errorf("missing %s", k)
				}
			}
			for k := range got {
				if !triples[k] {
					t.Errorf("unexpected %s", k)
				}
			}
			t.Logf("%d definitions, %d advisories, %d duplicates", defs, len(r.advs), r.stats.Duplicates)
		})
	}
}

// TestOVALGroundtruth checks that every row of the shared expected-match
// files is among the advisories of the OVAL document it was computed from.
func TestOVALGroundtruth(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testdata.Dir(t), "groundtruth", "debian", "*.tsv"))
	if len(files) == 0 {
		t.Skip("no groundtruth/debian/*.tsv in the shared test data")
	}
	codenameRe := regexp.MustCompile(`^# oval: .*/oval-definitions-([a-z]+)\.xml\.bz2$`)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var codename string
			var rows [][]string
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := sc.Text()
				if m := codenameRe.FindStringSubmatch(line); m != nil {
					codename = m[1]
				}
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				if cols := strings.Split(line, "\t"); len(cols) == 5 {
					rows = append(rows, cols)
				} else {
					t.Fatalf("row %q: %d columns", line, len(cols))
				}
			}
			if codename == "" || sc.Err() != nil {
				t.Fatalf("no oval header (%v)", sc.Err())
			}
			r, _ := parseWhole(t, codename)
			if r.err != nil {
				t.Fatal(r.err)
			}
			have := map[[3]string]bool{}
			for _, a := range r.advs {
				have[[3]string{a.Package, a.Title, a.FixedVersion}] = a.State == model.StateFixed
			}
			for _, row := range rows { // installed binary, version, oval package, title, fixed evr
				k := [3]string{row[2], row[3], strings.TrimPrefix(row[4], "0:")}
				if !have[k] {
					t.Errorf("no fixed advisory %q", k)
				}
			}
			t.Logf("%s: %d groundtruth rows found", codename, len(rows))
		})
	}
}

const ovalHead = `<?xml version='1.0' encoding='UTF-8'?>
<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:oval="http://oval.mitre.org/XMLSchema/oval-common-5">
  <generator><oval:product_name>Debian</oval:product_name></generator>
`

// ovalDoc builds a small document: one definition (title, extra metadata,
// criteria) and the given tests, objects and states.
func ovalDoc(title, metadata, criteria, tests, objects, states string) string {
	return ovalHead + `<definitions><definition class="patch" id="oval:d:1" version="1"><metadata><title>` + title + `</title>
<affected family="unix"><platform>Debian GNU/Linux 12</platform>` + metadata + `</affected>
<reference source="CVE" ref_id="CVE-1"/><reference source="CVE" ref_id="CVE-1"/><reference source="CVE" ref_id="CVE-2"/></metadata>
<criteria operator="AND"><criterion test_ref="t:rel"/>` + criteria + `</criteria></definition></definitions>
<tests><textfilecontent54_test id="t:rel"/>` + tests + `</tests><objects>` + objects + `</objects><states>` + states + `</states></oval_definitions>
`
}

const (
	goodTest   = `<dpkginfo_test check="all" check_existence="at_least_one_exists" id="t:1"><object object_ref="o:1"/><state state_ref="s:1"/></dpkginfo_test>`
	goodObject = `<dpkginfo_object id="o:1"><name>openssl</name></dpkginfo_object>`
	goodState  = `<dpkginfo_state id="s:1"><evr datatype="debian_evr_string" operation="less than">1:3.0.9-1</evr></dpkginfo_state>`
	goodCrit   = `<criterion test_ref="t:1"/>`
)

func TestOVALSynthetic(t *testing.T) {
	doc := ovalDoc("DSA-1-1 openssl", "<product>openssl</product>", goodCrit+goodCrit, goodTest, goodObject, goodState)
	advs, scope, err := parseAll(NewOVAL(), "local.xml", doc)
	if err != nil || scope != "debian-oval/bookworm" || len(advs) != 1 {
		t.Fatalf("Parse = %d advisories, %q, %v", len(advs), scope, err)
	}
	if a := advs[0]; a.FixedVersion != "1:3.0.9-1" || !slices.Equal(a.Aliases, []string{"CVE-1", "CVE-2"}) || a.Namespace != "debian:12" {
		t.Errorf("advisory %+v", a)
	}
	// The generator's "None" package: the single product names it.
	noName := strings.Replace(goodObject, "<name>openssl</name>", "<name/>", 1)
	advs, _, err = parseAll(NewOVAL(), "x", ovalDoc("CVE-1 x", "<product>openssl</product>", goodCrit, goodTest, noName, goodState))
	if err != nil || len(advs) != 1 || advs[0].Package != "openssl" || advs[0].ID != "CVE-1" || !slices.Equal(advs[0].Aliases, []string{"CVE-2"}) {
		t.Errorf("empty name: %+v, %v", advs, err)
	}
	// Names that are no package name, without a single product to stand
	// in: the criterion is left out.
	for _, products := range []string{"<product>a, b</product>", "", "<product>a</product><product>b</product>"} {
		for _, name := range []string{"<name/>", "<name>Request Tracker</name>", "<name>None</name>"} {
			obj := strings.Replace(goodObject, "<name>openssl</name>", name, 1)
			var n int
			_, st, err := parseOVAL(context.Background(), "x", strings.NewReader(ovalDoc("CVE-1 x", products, goodCrit, goodTest, obj, goodState)),
				func(model.Advisory) error { n++; return nil })
			if err != nil || n != 0 || st.Unnamed != 1 {
				t.Errorf("%s %s: %d advisories, %+v, %v", products, name, n, st, err)
			}
		}
	}
	// A test without a state: any installed version.
	noState := strings.Replace(goodTest, `<state state_ref="s:1"/>`, "", 1)
	advs, _, err = parseAll(NewOVAL(), "x", ovalDoc("CVE-1 x", "", goodCrit, noState, goodObject, ""))
	if err != nil || len(advs) != 1 || advs[0].State != model.StateUnfixed {
		t.Errorf("no state: %+v, %v", advs, err)
	}
	// Inventory definitions state no vulnerability.
	inv := strings.Replace(doc, `class="patch"`, `class="inventory"`, 1)
	if advs, _, err = parseAll(NewOVAL(), "x", inv); err != nil || len(advs) != 0 {
		t.Errorf("inventory: %+v, %v", advs, err)
	}
}

func TestOVALErrors(t *testing.T) {
	doc := func(r ...string) string {
		d := ovalDoc("DSA-1-1 openssl", "<product>openssl</product>", goodCrit, goodTest, goodObject, goodState)
		return strings.NewReplacer(r...).Replace(d)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"x", doc(`t:1"/></criteria>`, `t:2"/></criteria>`), "criterion references unknown test t:2"},
		{"x", doc(`object_ref="o:1"`, `object_ref="o:2"`), `unknown dpkginfo_object "o:2"`},
		{"x", doc(`state_ref="s:1"`, `state_ref="s:2"`), `unknown dpkginfo_state "s:2"`},
		{"x", doc(`operation="less than"`, `operation="equals"`), `evr operation "equals" datatype "debian_evr_string" is not supported`},
		{"x", doc(`debian_evr_string`, `string`), `datatype "string" is not supported`},
		{"x", doc(`<name>openssl</name>`, `<name operation="pattern match">ssl</name>`), `name operation "pattern match" is not supported`},
		{"x", doc(`<name>openssl</name>`, `<name>openssl</name><arch>x</arch>`), `<arch> is not supported`},
		{"x", doc(`at_least_one_exists`, `none_exist`), `check_existence "none_exist" is not supported`},
		{"x", doc(`<criterion test_ref="t:1"/>`, `<criterion negate="true" test_ref="t:1"/>`), "negated criterion"},
		{"x", doc(`<criteria operator="AND">`, `<criteria negate="1" operator="AND">`), "negated criteria"},
		{"x", doc(`>1:3.0.9-1<`, `>0:<`), "evr: empty"},
		{"x", doc(`>1:3.0.9-1<`, `><`), "evr: empty"},
		{"x", doc(`DSA-1-1 openssl`, `openssl update`), `title "openssl update" does not start with an advisory id`},
		{"x", doc(`id="o:1"><name>openssl</name></dpkginfo_object>`, `id="o:1"><name>openssl</name></dpkginfo_object><dpkginfo_object id="o:1"/>`), "dpkginfo_object o:1: id defined twice"},
		{"x", doc(`Debian<`, `Red Hat<`), `generator product "Red Hat", want "Debian"`},
		{"x", doc(`GNU/Linux 12`, `GNU/Linux 99`), `platform "Debian GNU/Linux 99": not a known Debian release`},
		{"oval-definitions-bullseye.xml", doc(), "says bullseye but the definitions' platform says bookworm"},
		{"oval-definitions-jammy.xml", doc(), `unknown release "jammy"`},
		{"x", doc(`<platform>Debian GNU/Linux 12</platform>`, ``), "name no release"},
		{"x", doc(`<oval_definitions`, `<definitions`, `</oval_definitions>`, `</definitions>`), "root element <definitions>"},
		{"x", doc() + "<x/>", "second root element <x>"},
		{"x", doc() + "text", "text outside the root element"},
		{"x", doc(`<title>`, `<title><b/>`), "title: unexpected element <b>"},
		{"x", doc(`<definitions>`, `<definitions>`+strings.Repeat("<a>", maxDepth)+strings.Repeat("</a>", maxDepth)), "nested deeper than 64"},
		{"x", doc(`<title>`, `<title>`+strings.Repeat("x", maxValueBytes)), "value larger than"},
		{"x", doc(`</states>`, `</stats>`), "line 8: unexpected end tag </stats>"},
	} {
		_, _, err := parseAll(NewOVAL(), tc.name, tc.doc)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want it to contain %q", err, tc.want)
		}
	}
}

func TestOVALSniff(t *testing.T) {
	o := NewOVAL()
	fixture := []byte(ovalFixture(t))
	if !o.Sniff("x", fixture[:2048]) {
		t.Error("fixture not sniffed by content")
	}
	if !o.Sniff("https://www.debian.org/security/oval/oval-definitions-trixie.xml.bz2", fixture[:600]) || o.Sniff("x.xml", fixture[:600]) {
		t.Error("short head: name fallback wrong")
	}
	for _, neg := range [][]string{
		{"vulndata", "ubuntu-oval", "fixtures", "clair-v2-xenial-cve-oval-subset.xml"},
		{"vulndata", "ubuntu-oval", "fixtures", "oci.com.ubuntu.jammy.cve.oval.xml.bz2"},
		{"vulndata", "redhat-oval", "v1", "com.redhat.rhsa-RHEL8.xml.gz"},
		{"vulndata", "debian-tracker", "fixtures", "vunnel-debian.json"},
	} {
		if o.Sniff(neg[len(neg)-1], readSharedHead(t, neg...)) {
			t.Errorf("%v sniffed as Debian OVAL", neg)
		}
	}
	want := "[https://www.debian.org/security/oval/oval-definitions-buster.xml.bz2 https://www.debian.org/security/oval/oval-definitions-bullseye.xml.bz2 https://www.debian.org/security/oval/oval-definitions-bookworm.xml.bz2 https://www.debian.org/security/oval/oval-definitions-trixie.xml.bz2]"
	if o.Name() != "debian-oval" || fmt.Sprint(o.URLs()) != want {
		t.Errorf("Name, URLs = %s, %v", o.Name(), o.URLs())
	}
}

func TestOVALEmitErrorAndCancel(t *testing.T) {
	doc := ovalFixture(t)
	stop := errors.New("stop")
	n := 0
	_, err := NewOVAL().Parse(context.Background(), "x.xml", strings.NewReader(doc), func(model.Advisory) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("emit error: err = %v after %d", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := strings.Replace(doc, "<definitions>", "<definitions>"+strings.Repeat("<x/>", 5000), 1)
	for _, d := range []string{doc, big} {
		if _, err := NewOVAL().Parse(ctx, "x.xml", strings.NewReader(d), discard); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled: err = %v", err)
		}
	}
}
