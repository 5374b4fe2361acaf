package apk

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/catalog/internal/cattest"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

func parseString(s string) ([]model.Package, error) {
	return Cataloger{}.Parse("lib/apk/db/installed", strings.NewReader(s))
}

// keyed derives name=version origin rows straight from the P:, V: and o:
// lines of a database in which every record has all three, as every
// minirootfs database does: a cross-check of Parse by plain line counting.
func keyed(t *testing.T, data string) []string {
	t.Helper()
	var names, versions, origins []string
	for _, l := range strings.Split(data, "\n") {
		switch {
		case strings.HasPrefix(l, "P:"):
			names = append(names, l[2:])
		case strings.HasPrefix(l, "V:"):
			versions = append(versions, l[2:])
		case strings.HasPrefix(l, "o:"):
			origins = append(origins, l[2:])
		}
	}
	if len(names) != len(versions) || len(names) != len(origins) {
		t.Fatalf("P/V/o line counts differ: %d %d %d", len(names), len(versions), len(origins))
	}
	var rows []string
	for i := range names {
		rows = append(rows, names[i]+"="+versions[i]+" "+origins[i])
	}
	return rows
}

func TestMinirootfs(t *testing.T) {
	dir := testdata.Path(t, "pkgdb", "apk")
	dbs, err := filepath.Glob(filepath.Join(dir, "*", "lib", "apk", "db", "installed"))
	if err != nil || len(dbs) < 18 {
		t.Fatalf("want the 18 shared apk databases under %s, got %d (%v)", dir, len(dbs), err)
	}
	for _, db := range dbs {
		name := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(db)))))
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(db)
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := parseString(string(data))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range pkgs {
				if p.Kind != model.KindAPK || p.Arch != "x86_64" || p.SourceVersion != p.Version || p.DBPath != "lib/apk/db/installed" {
					t.Errorf("bad package %+v", p)
				}
				got = append(got, p.Name+"="+p.Version+" "+p.SourceName)
			}
			if want := keyed(t, string(data)); !slices.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
			if n := APKToolsMajor(pkgs); n != 2 {
				t.Errorf("APKToolsMajor = %d, want 2", n)
			}
		})
	}
}

// TestSpots checks packages read by eye from the databases.
func TestSpots(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		count int
		spots []model.Package
	}{
		{"alpine-3.20.3-x86_64", 14, []model.Package{
			{Name: "apk-tools", Version: "2.14.4-r0", SourceName: "apk-tools"},
			{Name: "alpine-baselayout", Version: "3.6.5-r0", SourceName: "alpine-baselayout"},
			{Name: "libcrypto3", Version: "3.3.2-r0", SourceName: "openssl"},
		}},
		{"alpine-3.6.5-x86_64", 13, []model.Package{
			{Name: "apk-tools", Version: "2.7.6-r0", SourceName: "apk-tools"},
		}},
		{"alpine-3.11.5-docker-save-2020-03", 14, []model.Package{
			{Name: "apk-tools", Version: "2.10.4-r3", SourceName: "apk-tools"},
			{Name: "libtls-standalone", Version: "2.9.1-r0", SourceName: "libtls-standalone"},
		}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			data, err := os.ReadFile(testdata.Path(t, "pkgdb", "apk", tc.dir, "lib", "apk", "db", "installed"))
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := parseString(string(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(pkgs) != tc.count {
				t.Errorf("got %d packages, want %d", len(pkgs), tc.count)
			}
			for _, want := range tc.spots {
				i := slices.IndexFunc(pkgs, func(p model.Package) bool { return p.Name == want.Name })
				if i < 0 {
					t.Errorf("%s not listed", want.Name)
					continue
				}
				if p := pkgs[i]; p.Version != want.Version || p.SourceName != want.SourceName {
					t.Errorf("got %s %s (origin %s), want %s (origin %s)", p.Name, p.Version, p.SourceName, want.Version, want.SourceName)
				}
			}
		})
	}
}

func TestSyntax(t *testing.T) {
	const a = "C:Q1abc=\nP:a\nV:1.0-r0\nA:x86_64\nF:usr\nR:file\n"
	for _, tc := range []struct {
		name, in string
		want     []string // name=version arch origin
		err      string
	}{
		{"no origin", a, []string{"a=1.0-r0 x86_64 a"}, ""},
		{"no final newline", strings.TrimSuffix(a, "\n"), []string{"a=1.0-r0 x86_64 a"}, ""},
		{"crlf, blank runs", strings.ReplaceAll("\n\n"+a+"o:src\n\n\n"+strings.ReplaceAll(a, "P:a", "P:b")+"\n", "\n", "\r\n"),
			[]string{"a=1.0-r0 x86_64 src", "b=1.0-r0 x86_64 b"}, ""},
		{"empty", "", nil, ""},
		{"missing separator", a + a, nil, "line 8: repeated P: in the record of line 1"},
		{"no name", "V:1\nA:x\n", nil, "line 1: record without a package name"},
		{"empty name", "P:\nV:1\n", nil, "line 1: record without a package name"},
		{"no version", "P:x\nV:1\n\nP:y\nA:x\n", nil, "line 4: package y without a version"},
		{"bad line", a + "garbage\n", nil, "line 7: malformed line \"garbage\""},
		{"long line", a + "T:" + strings.Repeat("x", 1<<20) + "\n", nil, "line 7: line longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := parseString(tc.in)
			cattest.Expect(t, pkgs, err, "lib/apk/db/installed", func(p model.Package) string {
				return p.Name + "=" + p.Version + " " + p.Arch + " " + p.SourceName
			}, tc.want, tc.err)
		})
	}
}

func TestAPKToolsMajor(t *testing.T) {
	pkg := func(name, version string) model.Package {
		return model.Package{Kind: model.KindAPK, Name: name, Version: version}
	}
	for _, tc := range []struct {
		pkgs []model.Package
		want int
	}{
		{[]model.Package{pkg("musl", "1.2.5-r0"), pkg("apk-tools", "2.14.4-r0")}, 2},
		{[]model.Package{pkg("apk-tools", "3.0.0_rc4-r0")}, 3},
		{[]model.Package{pkg("apk-tools-static", "3.0.1-r0")}, 0},
		{[]model.Package{pkg("apk-tools", "x")}, 0},
		{nil, 0},
	} {
		if got := APKToolsMajor(tc.pkgs); got != tc.want {
			t.Errorf("APKToolsMajor(%v) = %d, want %d", tc.pkgs, got, tc.want)
		}
	}
}

func TestPatterns(t *testing.T) {
	c := Cataloger{}
	if c.Kind() != model.KindAPK || !slices.Equal(c.Patterns(), []string{"lib/apk/db/installed", "usr/lib/apk/db/installed"}) {
		t.Errorf("Kind %q Patterns %q", c.Kind(), c.Patterns())
	}
}

func FuzzParse(f *testing.F) {
	for _, d := range []string{"alpine-3.20.3-x86_64", "alpine-3.6.5-x86_64"} {
		if b, err := os.ReadFile(testdata.Path(f, "pkgdb", "apk", d, "lib", "apk", "db", "installed")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("P:a\nV:1\n\nP:b\nV:2\no:c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := parseString(string(b))
		if err != nil {
			if pkgs != nil {
				t.Fatal("packages with an error")
			}
			if !strings.HasPrefix(err.Error(), "lib/apk/db/installed: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.SourceName == "" || p.Kind != model.KindAPK {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(testdata.Path(b, "pkgdb", "apk", "alpine-3.20.3-x86_64", "lib", "apk", "db", "installed"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := parseString(string(data)); err != nil {
			b.Fatal(err)
		}
	}
}
