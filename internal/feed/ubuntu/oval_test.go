package ubuntu

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// readFixture returns a shared OVAL file, decompressed.
func readFixture(t testing.TB, elem ...string) (string, []byte) {
	t.Helper()
	p := testdata.Path(t, append([]string{"vulndata", "ubuntu-oval"}, elem...)...)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	switch filepath.Ext(p) {
	case ".bz2":
		r = bzip2.NewReader(f)
	case ".gz":
		if r, err = gzip.NewReader(f); err != nil {
			t.Fatal(err)
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return p, data
}

func parse(t testing.TB, name string, data []byte) (string, []model.Advisory) {
	t.Helper()
	var got []model.Advisory
	scope, err := Feed{}.Parse(context.Background(), name, bytes.NewReader(data), func(a model.Advisory) error {
		got = append(got, a)
		return nil
	})
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return scope, got
}

// parseFixture parses a shared OVAL file and checks its scope.
func parseFixture(t *testing.T, scope string, elem ...string) []model.Advisory {
	t.Helper()
	name, data := readFixture(t, elem...)
	got, advs := parse(t, name, data)
	if got != scope {
		t.Errorf("scope %q, want %q", got, scope)
	}
	return advs
}

func pick(advs []model.Advisory, id, pkg string) []model.Advisory {
	var out []model.Advisory
	for _, a := range advs {
		if a.ID == id && a.Package == pkg {
			out = append(out, a)
		}
	}
	return out
}

// want checks that exactly one advisory id/pkg exists, with these fields.
func want(t *testing.T, advs []model.Advisory, id, pkg, ns, state, fixed, sev string) {
	t.Helper()
	got := pick(advs, id, pkg)
	if len(got) != 1 {
		t.Errorf("%s %s: %d advisories, want 1", id, pkg, len(got))
		return
	}
	a := got[0]
	if a.Namespace != ns || a.State != state || a.FixedVersion != fixed || a.Severity != sev ||
		a.SourcePackage || a.VersionFormat != model.KindDpkg || a.Source != Name {
		t.Errorf("%s %s = %+v\nwant ns %s state %s fixed %q severity %s", id, pkg, a, ns, state, fixed, sev)
	}
}

// TestFixtures checks records of each fixture, read by eye from the XML.
func TestFixtures(t *testing.T) {
	t.Run("classic xenial CVE", func(t *testing.T) {
		advs := parseFixture(t, "ubuntu-oval/xenial/cve", "fixtures", "clair-v2-xenial-cve-oval-subset.xml")
		// cabextract: "is affected and needs fixing", a test without state.
		want(t, advs, "CVE-2015-4471", "cabextract", "ubuntu:16.04", model.StateUnfixed, "", model.SeverityMedium)
		// libmspack: dpkginfo object names binary libmspack0, evr less than 0.4-3.
		want(t, advs, "CVE-2015-4471", "libmspack0", "ubuntu:16.04", model.StateFixed, "0.4-3", model.SeverityMedium)
		if len(advs) != 2 || advs[0].Link != "https://ubuntu.com/security/CVE-2015-4471" ||
			!strings.HasPrefix(advs[0].Description, "Off-by-one error in the lzxd_decompress") {
			t.Errorf("advisories %+v", advs)
		}
	})
	t.Run("oci jammy CVE", func(t *testing.T) {
		advs := parseFixture(t, "ubuntu-oval/jammy/cve", "fixtures", "oci.com.ubuntu.jammy.cve.oval.xml.bz2")
		for _, b := range []string{"openssh-client", "openssh-server", "openssh-sftp-server", "openssh-tests", "ssh", "ssh-askpass-gnome"} {
			want(t, advs, "CVE-2023-48795", b, "ubuntu:22.04", model.StateFixed, "1:8.9p1-3ubuntu0.5", model.SeverityMedium)
		}
		// The state says 0:0.9.6-2ubuntu0.22.04.2; the zero epoch is dropped.
		want(t, advs, "CVE-2023-48795", "libssh-4", "ubuntu:22.04", model.StateFixed, "0.9.6-2ubuntu0.22.04.2", model.SeverityMedium)
		want(t, advs, "CVE-2023-48795", "libssh-gcrypt-4", "ubuntu:22.04", model.StateFixed, "0.9.6-2ubuntu0.22.04.2", model.SeverityMedium)
		if len(advs) != 8 {
			t.Errorf("%d advisories, want 8", len(advs))
		}
	})
	t.Run("oci fips-updates jammy CVE", func(t *testing.T) {
		advs := parseFixture(t, "ubuntu-oval/fips-updates_jammy/cve", "fixtures", "oci.com.ubuntu.fips-updates_jammy.cve.oval.xml.bz2")
		// The state text has a line break before the version.
		want(t, advs, "CVE-2023-48795", "libssh-4", "ubuntu:22.04/fips-updates", model.StateFixed, "0.9.6-2ubuntu0.22.04.2", model.SeverityMedium)
	})
	t.Run("oci jammy USN", func(t *testing.T) {
		advs := parseFixture(t, "ubuntu-oval/jammy/usn", "fixtures", "oci.com.ubuntu.jammy.usn.oval.xml.bz2")
		for _, b := range []string{"libssh-gcrypt-dev", "libssh-doc", "libssh-4", "libssh-dev", "libssh-gcrypt-4"} {
			want(t, advs, "USN-6561-1", b, "ubuntu:22.04", model.StateFixed, "0.9.6-2ubuntu0.22.04.2", model.SeverityMedium)
		}
		if len(advs) != 5 || !slices.Equal(advs[0].Aliases, []string{"CVE-2023-48795"}) ||
			advs[0].Link != "https://ubuntu.com/security/notices/USN-6561-1" || advs[0].Title != "USN-6561-1 -- libssh vulnerability" {
			t.Errorf("advisories %+v", advs)
		}
	})
	t.Run("oci jammy pkg", func(t *testing.T) {
		advs := parseFixture(t, "ubuntu-oval/jammy/pkg", "fixtures", "oci.com.ubuntu.jammy.pkg.oval.xml.bz2")
		want(t, advs, "CVE-2023-48795", "libssh-gcrypt-4", "ubuntu:22.04", model.StateFixed, "0.9.6-2ubuntu0.22.04.2", model.SeverityMedium)
		want(t, advs, "CVE-2023-48795", "ssh", "ubuntu:22.04", model.StateFixed, "1:8.9p1-3ubuntu0.5", model.SeverityMedium)
		if len(advs) != 8 {
			t.Errorf("%d advisories, want 8", len(advs))
		}
	})
	t.Run("whole jammy USN", func(t *testing.T) {
		name, data := readFixture(t, "whole-normalized", "com.ubuntu.jammy.usn.oval.xml.gz")
		_, advs := parse(t, name, data)
		// USN-6110-1, Pro only: constant_variable lists jhead, evr less than …+esm1.
		want(t, advs, "USN-6110-1", "jhead", "ubuntu:22.04", model.StateFixed, "1:3.06.0.1-2ubuntu0.22.04.1+esm1", model.SeverityMedium)
	})
	t.Run("whole noble USN", func(t *testing.T) {
		name, data := readFixture(t, "whole-normalized", "com.ubuntu.noble.usn.oval.xml.gz")
		_, advs := parse(t, name, data)
		// Severity "None": a non-security update.
		want(t, advs, "USN-6663-3", "libssl3t64", "ubuntu:24.04", model.StateFixed, "3.0.13-0ubuntu3.1", model.SeverityUnknown)
		// A livepatch notice checks the running kernel only: nothing for images.
		for _, a := range advs {
			if strings.HasPrefix(a.ID, "LSN-") {
				t.Errorf("running-system advisory %+v", a)
				break
			}
		}
	})
}

// indep is an independent reading of an OVAL document: the definitions and
// the kinds of their criteria's tests.
type indep struct {
	Defs []struct {
		ID    string `xml:"id,attr"`
		Class string `xml:"class,attr"`
		Refs  []struct {
			Source string `xml:"source,attr"`
			ID     string `xml:"ref_id,attr"`
		} `xml:"metadata>reference"`
		Description string `xml:"metadata>description"`
		Body        []byte `xml:",innerxml"`
	} `xml:"definitions>definition"`
	Tests struct {
		Any []struct {
			XMLName xml.Name
			ID      string `xml:"id,attr"`
		} `xml:",any"`
	} `xml:"tests"`
}

var testRefRE = regexp.MustCompile(`test_ref="([^"]+)"`)

// Update instructions in USN descriptions: "binary - version" pairs.
var pairRE = regexp.MustCompile(`([a-z0-9][a-z0-9+.-]+) - ([0-9][^ ]*)`)

// TestWholeUSN parses the whole USN files, checks the definition count
// against an independent decode, and checks each advisory's binary and
// version against the notice's own update instructions.
func TestWholeUSN(t *testing.T) {
	for _, c := range []struct {
		file   string
		defs   int
		series string
	}{
		{"com.ubuntu.jammy.usn.oval.xml.gz", 625, "jammy"},
		{"com.ubuntu.noble.usn.oval.xml.gz", 261, "noble"},
	} {
		t.Run(c.series, func(t *testing.T) {
			name, data := readFixture(t, "whole-normalized", c.file)
			scope, advs := parse(t, name, data)
			if scope != "ubuntu-oval/"+c.series+"/usn" {
				t.Errorf("scope %q", scope)
			}
			var doc indep
			if err := xml.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Defs) != c.defs {
				t.Fatalf("independent decode found %d definitions, want %d", len(doc.Defs), c.defs)
			}
			kind := map[string]string{}
			for _, x := range doc.Tests.Any {
				kind[x.ID] = x.XMLName.Local
			}
			// Notices with a dpkginfo test must all be there, and no other.
			wantIDs := map[string]bool{}
			pairs := map[string]map[string]bool{}
			for _, d := range doc.Defs {
				if d.Class != "patch" {
					continue
				}
				var usn string
				for _, r := range d.Refs {
					if r.Source == "USN" {
						usn = r.ID
					}
				}
				for _, m := range testRefRE.FindAllSubmatch(d.Body, -1) {
					if kind[string(m[1])] == "dpkginfo_test" {
						wantIDs[usn] = true
					}
				}
				pairs[usn] = map[string]bool{}
				for _, m := range pairRE.FindAllStringSubmatch(d.Description, -1) {
					pairs[usn][m[1]+" "+strings.TrimPrefix(m[2], "0:")] = true
				}
			}
			gotIDs := map[string]bool{}
			unlisted := 0
			for _, a := range advs {
				gotIDs[a.ID] = true
				if !pairs[a.ID][a.Package+" "+a.FixedVersion] {
					unlisted++
					t.Logf("%s: %s %s not in the notice's update instructions", a.ID, a.Package, a.FixedVersion)
				}
			}
			if len(gotIDs) != len(wantIDs) {
				t.Errorf("%d notices with advisories, independent count %d", len(gotIDs), len(wantIDs))
			}
			for id := range wantIDs {
				if !gotIDs[id] {
					t.Errorf("notice %s has no advisory", id)
				}
			}
			if unlisted > 0 {
				t.Errorf("%d of %d advisories not in their notice's update instructions", unlisted, len(advs))
			}
			t.Logf("%d definitions, %d notices with package tests, %d advisories", len(doc.Defs), len(gotIDs), len(advs))
		})
	}
}

// TestGroundtruth checks the expected matches of the shared Ubuntu
// groundtruth, when present, against the parsed USN OVAL.
func TestGroundtruth(t *testing.T) {
	gt := testdata.Path(t, "groundtruth", "ubuntu", "ubuntu-24.04-noble-debootstrap__usn-oval-2024-12-24.tsv")
	name, data := readFixture(t, "whole-normalized", "com.ubuntu.noble.usn.oval.xml.gz")
	_, advs := parse(t, name, data)
	f, err := os.Open(gt)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	col := map[string]int{}
	rows := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if h := strings.Split(strings.TrimPrefix(line, "#"), "\t"); len(h) > 2 {
				for i, c := range h {
					col[strings.TrimSpace(c)] = i
				}
			}
			continue
		}
		if line == "" {
			continue
		}
		c := strings.Split(line, "\t")
		get := func(names ...string) string {
			for _, n := range names {
				if i, ok := col[n]; ok && i < len(c) {
					return c[i]
				}
			}
			t.Fatalf("%s: no column %v in header %v", gt, names, col)
			return ""
		}
		pkg, id, fixed := get("package"), get("vuln_id", "usn", "id"), get("fixed_in", "fixed_version")
		rows++
		if !slices.ContainsFunc(advs, func(a model.Advisory) bool {
			return a.Package == pkg && a.ID == id && a.FixedVersion == strings.TrimPrefix(fixed, "0:")
		}) {
			t.Errorf("no advisory %s %s fixed in %s", id, pkg, fixed)
		}
	}
	t.Logf("%d groundtruth rows found", rows)
}

func TestNamespace(t *testing.T) {
	for code, want := range map[string]string{"warty": "ubuntu:4.10", "dapper": "ubuntu:6.06", "xenial": "ubuntu:16.04",
		"jammy": "ubuntu:22.04", "noble": "ubuntu:24.04", "questing": "ubuntu:25.10"} {
		if got, ok := Namespace(code); !ok || got != want {
			t.Errorf("Namespace(%q) = %q, %v; want %q", code, got, ok, want)
		}
	}
	if _, ok := Namespace("sid"); ok {
		t.Errorf("Namespace(sid) known")
	}
	// The table agrees with distro-info-data.
	csv, err := os.ReadFile(testdata.Path(t, "osrelease", "distro-info-data", "ubuntu.csv"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(csv), "\n")[1:] {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		ver := strings.TrimSuffix(f[0], " LTS")
		if got, ok := Namespace(f[2]); ok {
			n++
			if got != "ubuntu:"+ver {
				t.Errorf("Namespace(%s) = %s, distro-info says %s", f[2], got, ver)
			}
		} else if ver <= "25.10" && len(ver) == len("25.10") {
			t.Errorf("series %s (%s) missing", f[2], ver)
		}
	}
	if n < 42 {
		t.Errorf("only %d series checked", n)
	}
	for _, s := range Supported {
		if _, ok := Namespace(s); !ok {
			t.Errorf("supported series %s has no namespace", s)
		}
	}
}

const miniHead = `<?xml version="1.0"?>
<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:linux="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux">
<generator><product_name>Canonical CVE OVAL Generator</product_name></generator>
<definitions><definition class="vulnerability" id="oval:com.ubuntu.jammy:def:1">
<metadata><title>t</title><reference source="CVE" ref_id="CVE-2024-0001"/><advisory><severity>Critical</severity></advisory></metadata>
<criteria operator="OR">
<criterion test_ref="oval:com.ubuntu.jammy:tst:1" comment="a package in jammy is affected, but a decision has been made to defer addressing it (note: '2024-01-01')."/>
<criterion test_ref="oval:com.ubuntu.jammy:tst:2" comment="b package in jammy: while related to the CVE in some way, a decision has been made to ignore this issue."/>
</criteria></definition></definitions>
<tests>
<linux:dpkginfo_test id="oval:com.ubuntu.jammy:tst:1"><linux:object object_ref="oval:com.ubuntu.jammy:obj:1"/></linux:dpkginfo_test>
<linux:dpkginfo_test id="oval:com.ubuntu.jammy:tst:2"><linux:object object_ref="oval:com.ubuntu.jammy:obj:2"/>STATE2</linux:dpkginfo_test>
</tests>
<objects>
<linux:dpkginfo_object id="oval:com.ubuntu.jammy:obj:1"><linux:name>a-bin</linux:name></linux:dpkginfo_object>
<linux:dpkginfo_object id="oval:com.ubuntu.jammy:obj:2"><linux:name>OBJ2</linux:name></linux:dpkginfo_object>
</objects>
<states>STATES</states>
</oval_definitions>
`

// mini returns miniHead with its placeholders replaced by the pairs in r,
// or by their defaults.
func mini(r ...string) string {
	repl := map[string]string{"STATE2": "", "OBJ2": "b-bin", "STATES": ""}
	for i := 0; i+1 < len(r); i += 2 {
		repl[r[i]] = r[i+1]
	}
	s := miniHead
	for k, v := range repl {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

func TestCommentStates(t *testing.T) {
	_, advs := parse(t, "x.xml", []byte(mini()))
	want(t, advs, "CVE-2024-0001", "a-bin", "ubuntu:22.04", model.StateDeferred, "", model.SeverityCritical)
	want(t, advs, "CVE-2024-0001", "b-bin", "ubuntu:22.04", model.StateWontFix, "", model.SeverityCritical)
}

func parseErr(name, doc string) error {
	_, err := Feed{}.Parse(context.Background(), name, strings.NewReader(doc), func(model.Advisory) error { return nil })
	return err
}

func TestMalformed(t *testing.T) {
	state := `<linux:state state_ref="oval:com.ubuntu.jammy:ste:1"/>`
	for _, c := range []struct{ name, file, doc, want string }{
		{"empty", "x", "", "no OVAL document"},
		{"not oval", "x", "<html></html>", "not OVAL definitions"},
		{"no generator", "x", strings.Replace(mini(), "Canonical CVE OVAL Generator", "Other", 1), "not a Canonical OVAL generator"},
		{"kind vs name", "com.ubuntu.jammy.usn.oval.xml", mini(), "file name says usn"},
		{"series vs name", "com.ubuntu.noble.cve.oval.xml", mini(), "file name says noble"},
		{"unknown series", "x", strings.ReplaceAll(mini(), "com.ubuntu.jammy:def", "com.ubuntu.zzz:def"), "unknown Ubuntu series"},
		{"unknown test", "x", strings.Replace(mini(), `id="oval:com.ubuntu.jammy:tst:1"`, `id="oval:com.ubuntu.jammy:tst:9"`, 1), "unknown test"},
		{"unknown object", "x", strings.Replace(mini(), `id="oval:com.ubuntu.jammy:obj:1"`, `id="oval:com.ubuntu.jammy:obj:9"`, 1), "unknown object"},
		{"unknown state", "x", mini("STATE2", state), "unknown state"},
		{"bad operation", "x", mini("STATE2", state, "STATES", `<linux:dpkginfo_state id="oval:com.ubuntu.jammy:ste:1"><linux:evr operation="equals">1.0</linux:evr></linux:dpkginfo_state>`), `operation "equals"`},
		{"empty version", "x", mini("STATE2", state, "STATES", `<linux:dpkginfo_state id="oval:com.ubuntu.jammy:ste:1"><linux:evr operation="less than"> </linux:evr></linux:dpkginfo_state>`), "not a version"},
		{"bad package", "x", mini("OBJ2", "B Bin"), "not a package name"},
		{"negate", "x", strings.Replace(mini(), `<criterion test_ref`, `<criterion negate="true" test_ref`, 1), "negated"},
		{"no CVE ref", "x", strings.Replace(mini(), `source="CVE"`, `source="X"`, 1), "want one CVE reference"},
		{"duplicate id", "x", strings.Replace(mini(), `tst:2"><`, `tst:1"><`, 1), "given twice"},
		{"trailing", "x", mini() + "<x/>", "after the document"},
		{"truncated", "x", mini()[:len(mini())-30], "unexpected EOF"},
	} {
		err := parseErr(c.file, c.doc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// TestTruncated cuts a whole file at many points: every cut must fail.
func TestTruncated(t *testing.T) {
	name, data := readFixture(t, "whole-normalized", "com.ubuntu.noble.usn.oval.xml.gz")
	data = bytes.TrimRight(data, " \t\r\n")
	cuts := []int{len(data) - 1, len(data) - 5, len(data) - 20}
	for i := 1; i < 20; i++ {
		cuts = append(cuts, len(data)*i/20)
	}
	for _, cut := range cuts {
		if err := parseErr(name, string(data[:cut])); err == nil {
			t.Errorf("cut at %d/%d parsed without error", cut, len(data))
		}
	}
}

func TestEmitError(t *testing.T) {
	stop := errors.New("stop")
	_, err := Feed{}.Parse(context.Background(), "x", strings.NewReader(mini()), func(model.Advisory) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("emit error lost: %v", err)
	}
}

func TestSniffAndURLs(t *testing.T) {
	for _, f := range [][]string{
		{"fixtures", "clair-v2-xenial-cve-oval-subset.xml"},
		{"fixtures", "oci.com.ubuntu.jammy.usn.oval.xml.bz2"},
		{"fixtures", "oci.com.ubuntu.jammy.pkg.oval.xml.bz2"},
		{"whole-normalized", "com.ubuntu.noble.usn.oval.xml.gz"},
	} {
		p, data := readFixture(t, f...)
		if !(Feed{}).Sniff("upload", data[:2048]) {
			t.Errorf("Sniff rejects the first 2 KiB of %s", f[1])
		}
		if strings.HasPrefix(f[1], "clair") {
			continue
		}
		if !(Feed{}).Sniff(p, data[:256]) {
			t.Errorf("Sniff rejects %s by name", f[1])
		}
	}
	for _, head := range []string{
		`<?xml version="1.0"?><oval_definitions><generator><oval:product_name>Debian</oval:product_name>`,
		`{"distroversion":"v3.11"}`,
		"",
	} {
		if (Feed{}).Sniff("x.xml", []byte(head)) {
			t.Errorf("Sniff accepts %q", head)
		}
	}
	urls := Feed{}.URLs()
	if !slices.Contains(urls, BaseURL+"com.ubuntu.noble.cve.oval.xml.bz2") {
		t.Errorf("URLs %v lack noble", urls)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"clair-v2-xenial-cve-oval-subset.xml", "oci.com.ubuntu.jammy.usn.oval.xml.bz2", "oci.com.ubuntu.jammy.pkg.oval.xml.bz2", "oci.com.ubuntu.jammy.cve.oval.xml.bz2"} {
		_, data := readFixture(f, "fixtures", p)
		f.Add(data)
	}
	f.Add([]byte(mini()))
	f.Fuzz(func(t *testing.T, data []byte) {
		var advs []model.Advisory
		scope, err := Feed{}.Parse(context.Background(), "fuzz", bytes.NewReader(data), func(a model.Advisory) error {
			advs = append(advs, a)
			return nil
		})
		if err != nil {
			return
		}
		if !strings.HasPrefix(scope, Name+"/") {
			t.Fatalf("scope %q", scope)
		}
		for _, a := range advs {
			if a.ID == "" || !pkgNameRE.MatchString(a.Package) || !strings.HasPrefix(a.Namespace, "ubuntu:") ||
				(a.State == model.StateFixed) == (a.FixedVersion == "") {
				t.Fatalf("bad advisory %+v", a)
			}
		}
	})
}

func BenchmarkParseUSN(b *testing.B) {
	name, data := readFixture(b, "whole-normalized", "com.ubuntu.jammy.usn.oval.xml.gz")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, err := Feed{}.Parse(context.Background(), name, bytes.NewReader(data), func(model.Advisory) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}
