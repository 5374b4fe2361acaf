package dpkg

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/catalog/internal/cattest"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

func parseFile(t testing.TB, dbPath, file string) ([]model.Package, error) {
	t.Helper()
	return cattest.ParseFile(t, Cataloger{}, dbPath, file)
}

func mustParse(t testing.TB, dbPath, file string) []model.Package {
	t.Helper()
	pkgs, err := parseFile(t, dbPath, file)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return pkgs
}

// row is one line of dpkg-query -W output: package, version, arch, source
// name and source version.
func row(p model.Package) string {
	return strings.Join([]string{p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion}, "\t")
}

// TestDpkgQuery reproduces dpkg-query's listing of each debootstrap status.
func TestDpkgQuery(t *testing.T) {
	dir := testdata.Path(t, "pkgdb", "dpkg")
	tsvs, err := filepath.Glob(filepath.Join(dir, "*", "expected-dpkg-query.tsv"))
	if err != nil || len(tsvs) == 0 {
		t.Fatalf("no expected-dpkg-query.tsv under %s (%v)", dir, err)
	}
	for _, tsv := range tsvs {
		root := filepath.Dir(tsv)
		t.Run(filepath.Base(root), func(t *testing.T) {
			var want []string
			f, err := os.Open(tsv)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				cols := strings.Split(sc.Text(), "\t")
				if len(cols) != 6 {
					t.Fatalf("%s: bad row %q", tsv, sc.Text())
				}
				if strings.TrimSpace(cols[5]) != "ii" {
					continue // dpkg-query lists non-installed packages too
				}
				want = append(want, strings.Join(cols[:5], "\t"))
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			const db = "var/lib/dpkg/status"
			pkgs := mustParse(t, db, filepath.Join(root, db))
			var got []string
			for _, p := range pkgs {
				if p.Kind != model.KindDpkg || p.DBPath != db {
					t.Errorf("%s: kind %q db %q", p.Name, p.Kind, p.DBPath)
				}
				got = append(got, row(p))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("got %d packages, want %d", len(got), len(want))
				for _, w := range want {
					if !slices.Contains(got, w) {
						t.Errorf("missing %q", w)
					}
				}
				for _, g := range got {
					if !slices.Contains(want, g) {
						t.Errorf("unexpected %q", g)
					}
				}
			}
		})
	}
}

// find returns the package named name, failing t when it is absent.
func find(t *testing.T, pkgs []model.Package, name string) model.Package {
	t.Helper()
	for _, p := range pkgs {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("package %s not listed", name)
	return model.Package{}
}

func TestStatusFiles(t *testing.T) {
	for _, tc := range []struct {
		file  []string
		count int
		spot  []string // rows, as row formats them
	}{
		{[]string{"ubuntu-18.04-base", "status"}, 89, []string{
			"bsdutils\t1:2.31.1-0.4ubuntu3.1\tamd64\tutil-linux\t2.31.1-0.4ubuntu3.1",
		}},
		{[]string{"ubuntu-18.04-texlive", "status"}, 357, []string{
			"libgcc1\t1:8.4.0-1ubuntu1~18.04\tamd64\tgcc-8\t8.4.0-1ubuntu1~18.04",
		}},
		{[]string{"debian-10-partial", "status"}, 1, []string{
			"debian-archive-keyring\t2019.1\tall\tdebian-archive-keyring\t2019.1",
		}},
		{[]string{"debian-10-postgresql-partial", "status"}, 3, []string{
			"postgresql-client\t11+200+deb10u5\tall\tpostgresql-common\t200+deb10u5",
			"postgresql-client-11\t11.22-0+deb10u2\tamd64\tpostgresql-11\t11.22-0+deb10u2",
			"postgresql-client-common\t200+deb10u5\tall\tpostgresql-common\t200+deb10u5",
		}},
	} {
		t.Run(tc.file[0], func(t *testing.T) {
			pkgs := mustParse(t, "var/lib/dpkg/status", testdata.Path(t, append([]string{"pkgdb", "dpkg"}, tc.file...)...))
			if len(pkgs) != tc.count {
				t.Errorf("got %d packages, want %d", len(pkgs), tc.count)
			}
			for _, s := range tc.spot {
				name, _, _ := strings.Cut(s, "\t")
				if got := row(find(t, pkgs, name)); got != s {
					t.Errorf("got %q, want %q", got, s)
				}
			}
		})
	}
}

// txtarFile returns the body of the member named name of a txtar archive.
func txtarFile(t *testing.T, archive, name string) string {
	t.Helper()
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n-- "+name+" --\n")
	if !ok {
		t.Fatalf("%s: no member %s", archive, name)
	}
	body, _, _ := strings.Cut(rest, "\n-- ")
	return body + "\n"
}

func TestTrivyValid(t *testing.T) {
	body := txtarFile(t, testdata.Path(t, "pkgdb", "dpkg", "trivy-valid.txtar"), "var/lib/dpkg/status")
	pkgs, err := Cataloger{}.Parse("var/lib/dpkg/status", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// 91 paragraphs, one of them (git) "deinstall ok config-files".
	if len(pkgs) != 90 {
		t.Errorf("got %d packages, want 90", len(pkgs))
	}
	for _, p := range pkgs {
		if p.Name == "git" {
			t.Errorf("config-files package git listed")
		}
	}
	if got, want := row(find(t, pkgs, "fdisk")), "fdisk\t2.31.1-0.4ubuntu3.1\tamd64\tutil-linux\t2.31.1-0.4ubuntu3.1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDistroless(t *testing.T) {
	dir := testdata.Path(t, "pkgdb", "dpkg", "distroless-status.d", "var", "lib", "dpkg", "status.d")
	const db = "var/lib/dpkg/status.d/libsqlite3-0"
	pkgs := mustParse(t, db, filepath.Join(dir, "libsqlite3-0"))
	if len(pkgs) != 1 {
		t.Fatalf("got %d packages, want 1", len(pkgs))
	}
	if got, want := row(pkgs[0]), "libsqlite3-0\t3.34.1-3\tarm64\tsqlite3\t3.34.1-3"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if pkgs[0].DBPath != db {
		t.Errorf("DBPath %q", pkgs[0].DBPath)
	}
	// The md5sums file is not read at all.
	pkgs, err := Cataloger{}.Parse(db+".md5sums", errReader{})
	if err != nil || pkgs != nil {
		t.Errorf("md5sums: %v, %v", pkgs, err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read") }

func TestSyftCases(t *testing.T) {
	dir := testdata.Path(t, "pkgdb", "dpkg", "syft-status.d-cases")
	for _, tc := range []struct {
		file string
		want []string
		err  string
	}{
		{"single", []string{"apt\t1.8.2\tamd64\tapt-dev\t1.8.2"}, ""},
		{"deinstall", []string{"linux-image-6.14.0-1012-aws\t6.14.0-1012.12~24.04.1\tamd64\tlinux-signed-aws-6.14\t6.14.0-1012.12~24.04.1"}, ""},
		{"coreutils-relationships", []string{
			"coreutils\t9.1-1\tarm64\tcoreutils\t9.1-1",
			"libacl1\t2.3.1-3\tarm64\tacl\t2.3.1-3",
			"libc6\t2.36-9+deb12u1\tarm64\tglibc\t2.36-9+deb12u1",
			"libgcc-s1\t12.2.0-14\tarm64\tgcc-12\t12.2.0-14",
			"gcc-12-base\t12.2.0-14\tarm64\tgcc-12\t12.2.0-14",
			"libattr1\t1:2.5.1-4\tarm64\tattr\t1:2.5.1-4",
			"libgmp10\t2:6.2.1+dfsg1-1.1\tarm64\tgmp\t2:6.2.1+dfsg1-1.1",
			"libselinux1\t3.4-1+b6\tarm64\tlibselinux\t3.4-1",
			"libpcre2-8-0\t10.42-1\tarm64\tpcre2\t10.42-1",
		}, ""},
		// An empty "Package:" paragraph: dpkg refuses such a database.
		{"multiple", nil, "line 1: paragraph without a Package value"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			db := "var/lib/dpkg/status.d/" + tc.file
			pkgs, err := parseFile(t, db, filepath.Join(dir, tc.file))
			cattest.Expect(t, pkgs, err, db, row, tc.want, tc.err)
		})
	}
}

func TestVcpkg(t *testing.T) {
	pkgs, err := parseFile(t, "var/lib/dpkg/status", testdata.Path(t, "pkgdb", "dpkg", "negative-vcpkg", "status"))
	if !errors.Is(err, ErrNotDpkg) || pkgs != nil {
		t.Fatalf("got %d packages, err %v; want ErrNotDpkg", len(pkgs), err)
	}
	if !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "vcpkg") {
		t.Errorf("error does not say where and why: %v", err)
	}
}

func TestSyntax(t *testing.T) {
	mk := func(name string) string {
		return "Package: " + name + "\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n"
	}
	pkgA := mk("a")
	for _, tc := range []struct {
		name, in string
		want     []string
		err      string
	}{
		{"no final newline", strings.TrimSuffix(pkgA, "\n"), []string{"a\t1.0\tamd64\ta\t1.0"}, ""},
		{"crlf", strings.ReplaceAll(pkgA+"Description: x\n y\n\n"+mk("b"), "\n", "\r\n"),
			[]string{"a\t1.0\tamd64\ta\t1.0", "b\t1.0\tamd64\tb\t1.0"}, ""},
		{"blank lines and whitespace separators", "\n\n" + pkgA + " \t\n\n" + mk("c") + "\n\n",
			[]string{"a\t1.0\tamd64\ta\t1.0", "c\t1.0\tamd64\tc\t1.0"}, ""},
		{"continuations", pkgA + "Conffiles:\n /etc/x 0123\n\t/etc/y 4567\nDescription: d\n .\n more\n", []string{"a\t1.0\tamd64\ta\t1.0"}, ""},
		{"same duplicate", pkgA + "Version: 1.0\n", []string{"a\t1.0\tamd64\ta\t1.0"}, ""},
		{"hold", strings.Replace(pkgA, "install ok", "hold ok", 1), []string{"a\t1.0\tamd64\ta\t1.0"}, ""},
		{"triggers-pending", strings.Replace(pkgA, "ok installed", "ok triggers-pending", 1), []string{"a\t1.0\tamd64\ta\t1.0"}, ""},
		{"not-installed", strings.Replace(pkgA, "install ok installed", "purge ok not-installed", 1), nil, ""},
		{"config-files without version", "Package: a\nStatus: deinstall ok config-files\n", nil, ""},
		{"source without version", pkgA + "Source: src\n", []string{"a\t1.0\tamd64\tsrc\t1.0"}, ""},
		{"source with version", pkgA + "Source: src (0.9)\n", []string{"a\t1.0\tamd64\tsrc\t0.9"}, ""},
		{"differing duplicate", pkgA + "Version: 2.0\n", nil, "line 5: duplicate field Version"},
		{"continued version", pkgA + " 2.0\n", nil, "line 5: continuation line in single-line field Architecture"},
		{"leading continuation", " x\n" + pkgA, nil, "line 1: continuation line outside a field"},
		{"no colon", pkgA + "garbage\n", nil, "line 5: malformed field line"},
		{"bad status", strings.Replace(pkgA, "install ok installed", "install ok", 1), nil, "line 2: package a: malformed Status"},
		{"unknown state", strings.Replace(pkgA, "ok installed", "ok gone", 1), nil, "malformed Status"},
		{"bad source", pkgA + "Source: src (0.9\n", nil, "line 5: package a: malformed Source"},
		{"no version", "Package: a\nStatus: install ok installed\n", nil, "line 1: installed package a without a Version value"},
		{"no package", "Version: 1\n", nil, "line 1: paragraph without a Package value"},
		{"long line", pkgA + "Description: " + strings.Repeat("x", 1<<20) + "\n", nil, "line 5: line longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := Cataloger{}.Parse("var/lib/dpkg/status", strings.NewReader(tc.in))
			cattest.Expect(t, pkgs, err, "var/lib/dpkg/status", row, tc.want, tc.err)
		})
	}
}

func TestPatterns(t *testing.T) {
	c := Cataloger{}
	if c.Kind() != model.KindDpkg {
		t.Errorf("Kind %q", c.Kind())
	}
	for _, p := range []string{"var/lib/dpkg/status", "var/lib/dpkg/status.d/libc6"} {
		if !matchAny(c.Patterns(), p) {
			t.Errorf("%s not matched", p)
		}
	}
	for _, p := range []string{"var/lib/dpkg/status-old", "installed/vcpkg/status", "var/lib/dpkg/available"} {
		if matchAny(c.Patterns(), p) {
			t.Errorf("%s matched", p)
		}
	}
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

func FuzzParse(f *testing.F) {
	for _, p := range [][]string{
		{"debian-12-bookworm-minbase-debootstrap", "var", "lib", "dpkg", "status"},
		{"debian-10-postgresql-partial", "status"},
		{"syft-status.d-cases", "multiple"},
		{"syft-status.d-cases", "deinstall"},
		{"negative-vcpkg", "status"},
	} {
		if b, err := os.ReadFile(testdata.Path(f, append([]string{"pkgdb", "dpkg"}, p...)...)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Package: a\nVersion: 1\nSource: b (2)\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := Cataloger{}.Parse("status", strings.NewReader(string(b)))
		if err != nil {
			if pkgs != nil {
				t.Fatalf("packages with an error")
			}
			if !strings.HasPrefix(err.Error(), "status: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion == "" || p.Kind != model.KindDpkg {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	file := testdata.Path(b, "pkgdb", "dpkg", "ubuntu-18.04-texlive", "status")
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := (Cataloger{}).Parse("status", strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}

func TestControlCharactersRejected(t *testing.T) {
	for _, doc := range []string{
		"Package: a\x00b\nStatus: install ok installed\nVersion: 1\n",
		"Package: a\nStatus: install ok installed\nVersion: 1\x1b[31m\n",
	} {
		if _, err := (Cataloger{}).Parse("var/lib/dpkg/status", strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), "control character") {
			t.Errorf("%q: err = %v, want a control character error", doc, err)
		}
	}
}
