package alpine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

func parseFile(t testing.TB, path string) (string, []model.Advisory) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseBytes(t, path, data)
}

func parseBytes(t testing.TB, name string, data []byte) (string, []model.Advisory) {
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

func secdbFiles(t *testing.T) []string {
	root := testdata.Path(t, "vulndata", "alpine-secdb")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".json" || ext == ".yaml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 60 {
		t.Fatalf("found only %d secdb files under %s", len(files), root)
	}
	return files
}

// Independent reading of an entry for the cross-check: the CVE ids a loose
// regexp finds; failing those, every field with a digit that is no
// placeholder.
var (
	testCVE   = regexp.MustCompile(`CVE[-_ ]([0-9]{4}-[0-9]{4,})`)
	testNotAf = regexp.MustCompile(`(?i)not (actually )?(affected|applicable)`)
)

type triple struct{ pkg, ver, id, state string }

func expectedTriples(t *testing.T, path string) map[triple]bool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if strings.HasSuffix(path, ".json") {
		err = json.Unmarshal(data, &doc)
	} else {
		err = yaml.Unmarshal(data, &doc)
	}
	if err != nil {
		t.Fatalf("%s: generic decode: %v", path, err)
	}
	want := map[triple]bool{}
	pkgs, _ := doc["packages"].([]any)
	for _, p := range pkgs {
		pk := p.(map[string]any)["pkg"].(map[string]any)
		name := pk["name"].(string)
		sf, _ := pk["secfixes"].(map[string]any)
		for ver, ids := range sf {
			list, _ := ids.([]any)
			for _, raw := range list {
				s := raw.(string)
				state := model.StateFixed
				if ver == "0" || testNotAf.MatchString(s) {
					state = model.StateNotAffected
				}
				var found []string
				for _, m := range testCVE.FindAllStringSubmatch(s, -1) {
					found = append(found, "CVE-"+m[1])
				}
				if len(found) == 0 {
					for _, f := range strings.Fields(s) {
						if strings.ContainsAny(f, "0123456789") && !strings.Contains(f, "?") {
							found = append(found, f)
						}
					}
				}
				for _, id := range found {
					want[triple{name, ver, id, state}] = true
				}
			}
		}
	}
	return want
}

// TestWholeFiles parses every secdb file in the shared data and compares the
// advisories with an independent generic decode of the same file.
func TestWholeFiles(t *testing.T) {
	total := 0
	for _, path := range secdbFiles(t) {
		t.Run(strings.TrimPrefix(path, filepath.Dir(filepath.Dir(filepath.Dir(path)))), func(t *testing.T) {
			scope, got := parseFile(t, path)
			branch := filepath.Base(filepath.Dir(path))
			repo := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".json"), ".yaml")
			if strings.HasPrefix(repo, "v3_15_main") {
				branch, repo = "v3.15", "main"
			}
			if want := "alpine-secdb/" + branch + "/" + repo; scope != want {
				t.Errorf("scope %q, want %q", scope, want)
			}
			want := expectedTriples(t, path)
			have := map[triple]bool{}
			for _, a := range got {
				k := triple{a.Package, a.FixedVersion, a.ID, a.State}
				if a.State == model.StateNotAffected {
					k.ver = "0"
				}
				if have[k] {
					t.Errorf("advisory emitted twice: %+v", k)
				}
				have[k] = true
				if a.Namespace != "alpine:"+branch || !a.SourcePackage || a.VersionFormat != model.KindAPK ||
					a.Severity != model.SeverityUnknown || a.Source != Name {
					t.Errorf("bad advisory fields: %+v", a)
				}
			}
			// Not-affected entries under a real version keep that version in
			// the independent count; fold them the same way.
			for k := range want {
				if k.state == model.StateNotAffected && k.ver != "0" {
					delete(want, k)
					k.ver = "0"
					want[k] = true
				}
			}
			for k := range want {
				if !have[k] {
					t.Errorf("missing %+v", k)
				}
			}
			for k := range have {
				if !want[k] {
					t.Errorf("unexpected %+v", k)
				}
			}
			if len(got) == 0 && len(want) > 0 {
				t.Errorf("no advisories")
			}
			total += len(got)
		})
	}
	t.Logf("%d advisories in all files", total)
}

// TestGroundtruth checks that every expected match of the shared groundtruth
// is backed by a parsed advisory of the named branch and repository.
func TestGroundtruth(t *testing.T) {
	dir := testdata.Path(t, "groundtruth", "alpine")
	files, _ := filepath.Glob(filepath.Join(dir, "*.tsv"))
	if len(files) == 0 {
		t.Fatalf("no groundtruth in %s", dir)
	}
	root := testdata.Dir(t)
	rows := 0
	for _, gt := range files {
		f, err := os.Open(gt)
		if err != nil {
			t.Fatal(err)
		}
		byRepo := map[string][]model.Advisory{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "# secdb: "); ok {
				for _, p := range strings.Fields(rest) {
					scope, advs := parseFile(t, filepath.Join(root, p))
					byRepo[scope[strings.LastIndexByte(scope, '/')+1:]] = advs
				}
				continue
			}
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			c := strings.Split(line, "\t")
			if len(c) != 6 {
				t.Fatalf("%s: bad row %q", gt, line)
			}
			rows++
			origin, id, fixed, repo := c[2], c[3], c[4], c[5]
			if !slices.ContainsFunc(byRepo[repo], func(a model.Advisory) bool {
				return a.Package == origin && a.ID == id && a.FixedVersion == fixed && a.State == model.StateFixed
			}) {
				t.Errorf("%s: no advisory %s %s fixed in %s in %s", filepath.Base(gt), origin, id, fixed, repo)
			}
		}
		f.Close()
		if len(byRepo) == 0 {
			t.Errorf("%s: names no secdb file", gt)
		}
	}
	if rows < 45 {
		t.Errorf("only %d groundtruth rows checked", rows)
	}
	t.Logf("%d groundtruth rows found among advisories", rows)
}

func find(advs []model.Advisory, pkg, id string) []model.Advisory {
	var out []model.Advisory
	for _, a := range advs {
		if a.Package == pkg && a.ID == id {
			out = append(out, a)
		}
	}
	return out
}

// TestRecords checks single records read by eye from the files.
func TestRecords(t *testing.T) {
	vd := func(p ...string) string {
		return testdata.Path(t, append([]string{"vulndata", "alpine-secdb"}, p...)...)
	}

	scope, advs := parseFile(t, vd("fixtures", "claircore", "v3_15_main_truncated.json"))
	if scope != "alpine-secdb/v3.15/main" {
		t.Errorf("scope %q", scope)
	}
	if got := find(advs, "busybox", "CVE-2021-42373"); len(got) != 1 || got[0].State != model.StateNotAffected || got[0].FixedVersion != "" {
		t.Errorf("busybox CVE-2021-42373 = %+v, want one not-affected", got)
	}
	if got := find(advs, "bash", "CVE-2016-0634"); len(got) != 1 || got[0].State != model.StateFixed ||
		got[0].FixedVersion != "4.4.12-r1" || got[0].Namespace != "alpine:v3.15" ||
		got[0].Link != "https://security.alpinelinux.org/vuln/CVE-2016-0634" {
		t.Errorf("bash CVE-2016-0634 = %+v", got)
	}
	if len(advs) != 7 {
		t.Errorf("%d advisories, want 7", len(advs))
	}

	// "4.9.1-r3": ["CVE-2017-5753 CVE-2017-5715 CVE-2017-5754 XSA-254 XPTI"]
	_, advs = parseFile(t, vd("whole-2024-12-31", "v3.7", "main.json"))
	for _, id := range []string{"CVE-2017-5753", "CVE-2017-5715", "CVE-2017-5754"} {
		got := find(advs, "xen", id)
		if !slices.ContainsFunc(got, func(a model.Advisory) bool {
			return a.FixedVersion == "4.9.1-r3" && slices.Equal(a.Aliases, []string{"XSA-254"}) && a.Description == "XPTI"
		}) {
			t.Errorf("xen %s = %+v", id, got)
		}
	}
	// "4.9.1-r2": ["XSA-248","XSA-249","XSA-250","XSA-251"]
	if got := find(advs, "xen", "XSA-248"); len(got) != 1 || got[0].FixedVersion != "4.9.1-r2" || got[0].Aliases != nil {
		t.Errorf("xen XSA-248 = %+v", got)
	}

	// "6.11-r0": ["CVE-2020-14342 (Not affected, requires --with-systemd)"]
	_, advs = parseFile(t, vd("whole-2024-12-31", "v3.13", "main.json"))
	if got := find(advs, "cifs-utils", "CVE-2020-14342"); len(got) != 1 || got[0].State != model.StateNotAffected ||
		got[0].Description != "Not affected, requires --with-systemd" {
		t.Errorf("cifs-utils CVE-2020-14342 = %+v", got)
	}

	// "3.0.4-r0": ["CVE N/A ZBX-11023"]
	_, advs = parseFile(t, vd("whole-2024-12-31", "v3.9", "community.json"))
	if got := find(advs, "zabbix", "ZBX-11023"); len(got) != 1 || got[0].FixedVersion != "3.0.4-r0" || got[0].Link != "" {
		t.Errorf("zabbix ZBX-11023 = %+v", got)
	}

	// YAML: v3.6 heimdal has a null list under 7.4.0-r0.
	scope, advs = parseFile(t, vd("whole-2020-02", "v3.6", "main.yaml"))
	if scope != "alpine-secdb/v3.6/main" {
		t.Errorf("scope %q", scope)
	}
	for _, a := range advs {
		if a.Package == "heimdal" && a.FixedVersion == "7.4.0-r0" {
			t.Errorf("advisory from a null list: %+v", a)
		}
	}
	if got := find(advs, "openssl", "CVE-2017-3735"); len(got) != 1 || got[0].FixedVersion != "1.0.2m-r0" {
		t.Errorf("openssl CVE-2017-3735 = %+v", got)
	}
}

func TestParseEntry(t *testing.T) {
	for _, c := range []struct {
		in           string
		ids, aliases []string
		comment      string
		notAffected  bool
	}{
		{in: "CVE-2020-1967", ids: []string{"CVE-2020-1967"}},
		{in: "CVE-2016-10013 XSA-204", ids: []string{"CVE-2016-10013"}, aliases: []string{"XSA-204"}},
		{in: "CVE-2018-3620   XSA-273", ids: []string{"CVE-2018-3620"}, aliases: []string{"XSA-273"}},
		{in: "CVE-2019-17349 CVE-2019-17350 XSA-295", ids: []string{"CVE-2019-17349", "CVE-2019-17350"}, aliases: []string{"XSA-295"}},
		{in: "GNUTLS-SA-2020-03-31 CVE-2020-11501", ids: []string{"CVE-2020-11501"}, aliases: []string{"GNUTLS-SA-2020-03-31"}},
		{in: "CVE-2020-11501 GNUTLS-SA-2020-03-31 CVE-2020-11501", ids: []string{"CVE-2020-11501"}, aliases: []string{"GNUTLS-SA-2020-03-31"}},
		{in: "CVE 2018-16859", ids: []string{"CVE-2018-16859"}},
		{in: "CVE_2019-2426", ids: []string{"CVE-2019-2426"}},
		{in: "CVE-2017-17434-1", ids: []string{"CVE-2017-17434"}},
		{in: "CVE-2017-8073.patch", ids: []string{"CVE-2017-8073"}},
		{in: "CVE-????-?????  XSA-284", ids: []string{"XSA-284"}},
		{in: "CVE N/A ZBX-11023", ids: []string{"ZBX-11023"}},
		{in: "XSA-207", ids: []string{"XSA-207"}},
		{in: "GHSA-fhpf-pp6p-55qc", ids: []string{"GHSA-fhpf-pp6p-55qc"}},
		{in: "wnpa-sec-2017-18", ids: []string{"wnpa-sec-2017-18"}},
		{in: "VSV00010", ids: []string{"VSV00010"}},
		{in: "CVE-46838", ids: []string{"CVE-46838"}},
		{in: "CVE-2018-14462 (ICMP)", ids: []string{"CVE-2018-14462"}, comment: "ICMP"},
		{in: "CVE-2017-2616 (+ regression fix)", ids: []string{"CVE-2017-2616"}, comment: "+ regression fix"},
		{in: "CVE-2020-14342 (not actually applicable)", ids: []string{"CVE-2020-14342"}, comment: "not actually applicable", notAffected: true},
		{in: "CVE-2018-16301 (was fixed in libpcap)", ids: []string{"CVE-2018-16301"}, comment: "was fixed in libpcap"},
		{in: "CVE-2017-5754 XSA-254 XPTI", ids: []string{"CVE-2017-5754"}, aliases: []string{"XSA-254"}, comment: "XPTI"},
		{in: "CVE-2020-1 (unclosed", ids: []string{"CVE-2020-1"}, comment: "unclosed"},
	} {
		e, err := parseEntry(c.in)
		if err != nil {
			t.Errorf("parseEntry(%q): %v", c.in, err)
			continue
		}
		if !slices.Equal(e.ids, c.ids) || !slices.Equal(e.aliases, c.aliases) || e.comment != c.comment || e.notAffected != c.notAffected {
			t.Errorf("parseEntry(%q) = %+v, want ids %v aliases %v comment %q notAffected %v", c.in, e, c.ids, c.aliases, c.comment, c.notAffected)
		}
	}
	for _, bad := range []string{"", "   ", "N/A", "CVE-????-?????", "(just a note)", "XPTI", strings.Repeat("CVE-2020-1234 ", 400)} {
		if e, err := parseEntry(bad); err == nil {
			t.Errorf("parseEntry(%q) = %+v, want error", bad, e)
		}
	}
}

func parseErr(data string) error {
	_, err := Feed{}.Parse(context.Background(), "x", strings.NewReader(data), func(model.Advisory) error { return nil })
	return err
}

func TestMalformed(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"empty", "", "empty document"},
		{"no header", `{"packages":[]}`, "no distroversion"},
		{"bad branch", `{"distroversion":"3.11","reponame":"main","packages":[]}`, "distroversion"},
		{"no name", `{"distroversion":"v3.11","reponame":"main","packages":[{"pkg":{"secfixes":{}}}]}`, "package 1: no pkg.name"},
		{"non-string id", `{"distroversion":"v3.11","reponame":"main","packages":[{"pkg":{"name":"a","secfixes":{"1-r0":[1]}}}]}`, "want a list of strings"},
		{"empty id", `{"distroversion":"v3.11","reponame":"main","packages":[{"pkg":{"name":"a","secfixes":{"1-r0":[""]}}}]}`, "names no vulnerability id"},
		{"bad version", `{"distroversion":"v3.11","reponame":"main","packages":[{"pkg":{"name":"a","secfixes":{"1 r0":["CVE-2020-0001"]}}}]}`, "not a version"},
		{"trailing", `{"distroversion":"v3.11","reponame":"main","packages":[]} {}`, "data after"},
		{"packages not array", `{"distroversion":"v3.11","reponame":"main","packages":{}}`, "want an array"},
		{"yaml no header", "packages:\n- pkg:\n    name: a\n", "no distroversion"},
		{"yaml bad secfixes", "distroversion: v3.3\nreponame: main\npackages:\n- pkg:\n    name: a\n    secfixes: [1]\n", "not a mapping"},
		{"yaml bad list", "distroversion: v3.3\nreponame: main\npackages:\n- pkg:\n    name: a\n    secfixes:\n      1-r0: CVE-2020-0001\n", "want a list"},
		{"yaml two docs", "distroversion: v3.3\nreponame: main\n---\nx: 1\n", "more than one document"},
		{"yaml syntax", "distroversion: v3.3\nreponame: [main\n", "YAML"},
	} {
		err := parseErr(c.doc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// TestTruncated cuts a whole JSON file at many points: every cut must fail.
func TestTruncated(t *testing.T) {
	for _, p := range []string{
		testdata.Path(t, "vulndata", "alpine-secdb", "raw-compact-2023-03", "v3.17", "main.json"),
		testdata.Path(t, "vulndata", "alpine-secdb", "whole-2024-12-31", "v3.11", "main.json"),
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.TrimRight(data, " \t\r\n")
		for i := 1; i < 200; i++ {
			cut := len(data) * i / 200
			if err := parseErr(string(data[:cut])); err == nil {
				t.Errorf("%s cut at %d/%d parsed without error", p, cut, len(data))
			}
		}
	}
}

func TestHeaderAfterPackages(t *testing.T) {
	doc := `{"packages":[{"pkg":{"name":"a","secfixes":{"1.0-r1":["CVE-2020-0001"]}}}],"reponame":"community","distroversion":"edge"}`
	scope, advs := parseBytes(t, "x.json", []byte(doc))
	if scope != "alpine-secdb/edge/community" || len(advs) != 1 || advs[0].Namespace != "alpine:edge" {
		t.Errorf("scope %q advisories %+v", scope, advs)
	}
}

func TestEmitError(t *testing.T) {
	doc := `{"distroversion":"v3.11","reponame":"main","packages":[{"pkg":{"name":"a","secfixes":{"1.0-r1":["CVE-2020-0001"]}}}]}`
	stop := fmt.Errorf("stop")
	_, err := Feed{}.Parse(context.Background(), "x", strings.NewReader(doc), func(model.Advisory) error { return stop })
	if err == nil || !strings.Contains(err.Error(), "stop") {
		t.Errorf("emit error lost: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Feed{}).Parse(ctx, "x", strings.NewReader(doc), func(model.Advisory) error { return nil }); err == nil {
		t.Errorf("cancelled context ignored")
	}
}

func TestSniff(t *testing.T) {
	for _, p := range secdbFiles(t) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !(Feed{}).Sniff(p, data[:min(len(data), 512)]) {
			t.Errorf("Sniff rejects %s", p)
		}
	}
	for _, head := range []string{
		`<?xml version="1.0"?><oval_definitions>`,
		`{"id":"ALPINE-CVE-2020-1","affected":[]}`,
		`{"schema_version":"1.4.0"}`,
		"Package: bash\nVersion: 1\n",
		"",
	} {
		if (Feed{}).Sniff("x", []byte(head)) {
			t.Errorf("Sniff accepts %q", head)
		}
	}
}

func TestURLs(t *testing.T) {
	urls := Feed{}.URLs()
	for _, want := range []string{BaseURL + "v3.2/main.json", BaseURL + "v3.21/community.json", BaseURL + "edge/main.json", BaseURL + "edge/community.json"} {
		if !slices.Contains(urls, want) {
			t.Errorf("URLs lacks %s", want)
		}
	}
	if slices.Contains(urls, BaseURL+"v3.2/community.json") {
		t.Errorf("URLs lists v3.2 community, which secdb never had")
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{
		"fixtures/claircore/v3_15_main_truncated.json",
		"fixtures/claircore/v3.10/community.json",
		"fixtures/vunnel/v3.15/main.yaml",
		"fixtures/vuls-data-update/edge/main.json",
		"whole-2020-02/v3.3/community.yaml",
	} {
		data, err := os.ReadFile(testdata.Path(f, append([]string{"vulndata", "alpine-secdb"}, strings.Split(p, "/")...)...))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
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
			if a.ID == "" || a.Package == "" || !strings.HasPrefix(a.Namespace, "alpine:") ||
				(a.State == model.StateFixed) == (a.FixedVersion == "") {
				t.Fatalf("bad advisory %+v", a)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(testdata.Path(b, "vulndata", "alpine-secdb", "whole-2024-12-31", "v3.21", "community.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, err := Feed{}.Parse(context.Background(), "x", bytes.NewReader(data), func(model.Advisory) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}
