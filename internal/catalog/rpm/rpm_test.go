package rpm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-scanner/vigil/internal/catalog/internal/cattest"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// expected reads an `rpm -qa --queryformat` csv (fields separated by ¶:
// epoch, name, version, release, arch, sourcerpm, ...) into rows as row
// formats them, gpg-pubkey entries left out.
func expected(t *testing.T, csv string) []string {
	t.Helper()
	f, err := os.Open(csv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "¶")
		if len(c) != 11 {
			t.Fatalf("%s: %d fields in %q", csv, len(c), sc.Text())
		}
		if c[1] == "gpg-pubkey" {
			continue
		}
		v := c[2] + "-" + c[3]
		if c[0] != "" {
			v = c[0] + ":" + v
		}
		rows = append(rows, strings.Join([]string{c[1], v, c[4], c[5]}, " "))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// row formats a package like expected, rebuilding the source rpm file name
// from SourceName and SourceVersion.
func row(p model.Package) string {
	src := "(none)"
	if p.SourceName != "" {
		src = p.SourceName + "-" + p.SourceVersion + ".src.rpm"
	}
	return strings.Join([]string{p.Name, p.Version, p.Arch, src}, " ")
}

func parseFile(t testing.TB, dbPath, file string) ([]model.Package, error) {
	t.Helper()
	return cattest.ParseFile(t, Cataloger{}, dbPath, file)
}

func TestDatabases(t *testing.T) {
	for _, tc := range []struct {
		dir, db, csv, dbPath string
		count                int
	}{
		{"sqlite/amazonlinux2023-plain", "rpmdb.sqlite", "packages.csv", "var/lib/rpm/rpmdb.sqlite", 102},
		{"sqlite/cbl-mariner-2.0", "rpmdb.sqlite", "packages.rpm-4.18-generated.csv", "var/lib/rpm/rpmdb.sqlite", 129},
		{"ndb/sle15-bci", "Packages.db", "packages.csv", "usr/lib/sysimage/rpm/Packages.db", 36},
		{"bdb/rhel8-libuuid", "Packages", "packages.rpm-4.18-generated.csv", "var/lib/rpm/Packages", 1},
		{"bdb/centos8-dive", "Packages", "packages.rpm-4.18-generated.csv", "var/lib/rpm/Packages", 1},
		{"bdb/scalibr-epoch", "Packages", "packages.rpm-4.18-generated.csv", "var/lib/rpm/Packages", 1},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := testdata.Path(t, append([]string{"pkgdb", "rpm"}, strings.Split(tc.dir, "/")...)...)
			want := expected(t, filepath.Join(dir, tc.csv))
			if len(want) != tc.count {
				t.Fatalf("%s: %d rows, want %d", tc.csv, len(want), tc.count)
			}
			pkgs, err := parseFile(t, tc.dbPath, filepath.Join(dir, tc.db))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pkgs {
				if p.Kind != model.KindRPM || p.DBPath != tc.dbPath || p.Module != "" {
					t.Errorf("bad package %+v", p)
				}
			}
			slices.Sort(want)
			cattest.Expect(t, sorted(pkgs), nil, tc.dbPath, row, want, "")
		})
	}
}

// sorted orders pkgs by row.
func sorted(pkgs []model.Package) []model.Package {
	slices.SortFunc(pkgs, func(a, b model.Package) int { return strings.Compare(row(a), row(b)) })
	return pkgs
}

func TestParseErrors(t *testing.T) {
	// An empty file holds no packages.
	pkgs, err := Cataloger{}.Parse("var/lib/rpm/Packages", strings.NewReader(""))
	if err != nil || pkgs != nil {
		t.Errorf("empty: %v, %v", pkgs, err)
	}
	for _, tc := range []struct{ name, in, err string }{
		{"garbage", strings.Repeat("not an rpm database ", 100), "opening rpm database"},
		{"truncated sqlite", "SQLite format 3\x00" + strings.Repeat("\x00", 200), "reading rpm database"},
	} {
		pkgs, err := Cataloger{}.Parse("var/lib/rpm/x", strings.NewReader(tc.in))
		cattest.Expect(t, pkgs, err, "var/lib/rpm/x", row, nil, tc.err)
	}
}

func TestSplitSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // name|epoch|version|release, or "" when malformed
	}{
		{"util-linux-2.32.1-42.el8_8.src", "util-linux||2.32.1|42.el8_8"},
		{"python-dateutil-1:2.6.1-6.el8.src", "python-dateutil|1|2.6.1|6.el8"},
		{"kernel-5.14.0-1.nosrc", "kernel||5.14.0|1"},
		{"a-1-2.noarch", ""},
		{"a-1.src", ""},
		{"-1-2.src", ""},
		{"a--2.src", ""},
		{"a-x:1-2.src", ""},
		{"a-:1-2.src", ""},
		{"a-1:2:3-4.src", ""},
		{"", ""},
	} {
		name, epoch, version, release, ok := splitSource(tc.in)
		got := ""
		if ok {
			got = strings.Join([]string{name, epoch, version, release}, "|")
		}
		if got != tc.want {
			t.Errorf("splitSource(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPatterns(t *testing.T) {
	c := Cataloger{}
	if c.Kind() != model.KindRPM {
		t.Errorf("Kind %q", c.Kind())
	}
	for _, p := range []string{"var/lib/rpm/Packages", "var/lib/rpm/Packages.db", "var/lib/rpm/rpmdb.sqlite",
		"usr/lib/sysimage/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db", "usr/lib/sysimage/rpm/rpmdb.sqlite"} {
		if !slices.Contains(c.Patterns(), p) {
			t.Errorf("%s not matched", p)
		}
	}
}

// manifests returns the rpm-manifest members of a txtar archive.
func manifests(t testing.TB, archive string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	parts := bytes.Split(b, []byte("\n-- "))
	for _, p := range parts[1:] {
		header, body, _ := bytes.Cut(p, []byte("\n"))
		if bytes.HasSuffix(header, []byte("/rpm-manifest --")) {
			out = append(out, body)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rpm-manifest members", archive)
	}
	return out
}

func TestManifests(t *testing.T) {
	for _, name := range []string{"claircore-ubi8_ubi.txtar", "claircore-ubi9_ubi.txtar"} {
		t.Run(name, func(t *testing.T) {
			for i, body := range manifests(t, testdata.Path(t, "pkgdb", "rpm", "manifests", name)) {
				pkgs, err := ParseManifest(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("manifest %d: %v", i, err)
				}
				// Cross-check against a whole-document decode: every entry
				// but gpg-pubkey, with nvra = name-version-release.arch.
				var doc struct {
					RPMs []struct{ Name, NVRA string }
				}
				if err := json.Unmarshal(body, &doc); err != nil {
					t.Fatal(err)
				}
				var want, got []string
				for _, r := range doc.RPMs {
					if r.Name != "gpg-pubkey" {
						want = append(want, r.NVRA)
					}
				}
				for _, p := range pkgs {
					v := p.Version
					if _, after, ok := strings.Cut(v, ":"); ok {
						v = after
					}
					got = append(got, p.Name+"-"+v+"."+p.Arch)
					if p.Kind != model.KindRPM || p.SourceName == "" || p.SourceVersion == "" {
						t.Errorf("bad package %+v", p)
					}
				}
				if !slices.Equal(got, want) || len(got) < 100 {
					t.Errorf("manifest %d: got %d packages, want %d", i, len(got), len(want))
				}
			}
		})
	}
	// Spot checks read from the first ubi8 amd64 manifest.
	pkgs, err := ParseManifest(bytes.NewReader(manifests(t, testdata.Path(t, "pkgdb", "rpm", "manifests", "claircore-ubi8_ubi.txtar"))[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tar 2:1.30-4.el8 x86_64 tar-1.30-4.el8.src.rpm",
		"python3-dateutil 1:2.6.1-6.el8 noarch python-dateutil-2.6.1-6.el8.src.rpm",
		"libxcrypt 4.1.1-4.el8 x86_64 libxcrypt-4.1.1-4.el8.src.rpm",
		"lua-libs 5.3.4-10.el8 x86_64 lua-5.3.4-10.el8.src.rpm",
	} {
		if !slices.ContainsFunc(pkgs, func(p model.Package) bool { return row(p) == want }) {
			t.Errorf("%q not listed", want)
		}
	}
}

func TestManifestErrors(t *testing.T) {
	const ok = `{"name":"a","version":"1","release":"2","architecture":"x86_64","srpm_name":"s","srpm_nevra":"s-0:1-2.src"}`
	for _, tc := range []struct{ name, in, want, err string }{
		{"one", `{"x":[1,{"y":2}],"rpms":[` + ok + `],"z":null}`, "a 1-2 x86_64 s-1-2.src.rpm", ""},
		{"gpg-pubkey", `{"rpms":[{"name":"gpg-pubkey","version":"fd431d51","release":"4ae0493b"}]}`, "", ""},
		{"no rpms", `{}`, "", ""},
		{"not an object", `[]`, "", "want \"{\""},
		{"truncated", `{"rpms":[` + ok, "", "unexpected EOF"},
		{"bad nevra", `{"rpms":[{"name":"a","version":"1","release":"2","srpm_nevra":"s"}]}`, "", "rpms[0]"},
		{"name mismatch", strings.Replace(`{"rpms":[`+ok+`]}`, `"srpm_name":"s"`, `"srpm_name":"t"`, 1), "", "rpms[0]"},
		{"no version", strings.Replace(`{"rpms":[`+ok+`]}`, `"version":"1"`, `"version":""`, 1), "", "rpms[0]"},
		{"rpms not array", `{"rpms":{}}`, "", "want \"[\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := ParseManifest(strings.NewReader(tc.in))
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			cattest.Expect(t, pkgs, err, "rpm-manifest", row, want, tc.err)
		})
	}
}

func FuzzSplitSource(f *testing.F) {
	for _, s := range []string{"util-linux-2.32.1-42.el8_8.src", "python-dateutil-1:2.6.1-6.el8.src", "a-1-2.nosrc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, epoch, version, release, ok := splitSource(s)
		if !ok {
			return
		}
		nevra := name + "-" + version + "-" + release
		if epoch != "" {
			nevra = name + "-" + epoch + ":" + version + "-" + release
		}
		if !strings.HasPrefix(s, nevra+".") || name == "" || version == "" || release == "" {
			t.Fatalf("splitSource(%q) = %q %q %q %q", s, name, epoch, version, release)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifests(f, testdata.Path(f, "pkgdb", "rpm", "manifests", "claircore-ubi9_ubi.txtar"))[0])
	f.Add([]byte(`{"rpms":[{"name":"a","version":"1","release":"2","srpm_nevra":"s-1:1-2.src"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := ParseManifest(bytes.NewReader(b))
		if err != nil {
			if pkgs != nil || !strings.HasPrefix(err.Error(), "rpm-manifest: ") {
				t.Fatalf("%v, %v", pkgs, err)
			}
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion == "" {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}

// FuzzParse feeds mutated Berkeley DB files, real and with hostile headers,
// to go-rpmdb through Parse: it must return packages or an error, never
// panic or hang.
func FuzzParse(f *testing.F) {
	for _, d := range []string{"centos8-dive", "scalibr-epoch"} {
		if b, err := os.ReadFile(testdata.Path(f, "pkgdb", "rpm", "bdb", d, "Packages")); err == nil {
			f.Add(b)
		}
	}
	for _, h := range hostileHeaders {
		b, _ := bdbWith(f, h.mutate)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := Cataloger{}.Parse("Packages", bytes.NewReader(b))
		if err != nil && pkgs != nil {
			t.Fatal("packages with an error")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, tc := range []struct{ name, file string }{
		{"sqlite", "sqlite/amazonlinux2023-plain/rpmdb.sqlite"},
		{"ndb", "ndb/sle15-bci/Packages.db"},
		{"bdb", "bdb/rhel8-libuuid/Packages"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data, err := os.ReadFile(testdata.Path(b, append([]string{"pkgdb", "rpm"}, strings.Split(tc.file, "/")...)...))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := (Cataloger{}).Parse("db", bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseManifest(b *testing.B) {
	body := manifests(b, testdata.Path(b, "pkgdb", "rpm", "manifests", "claircore-ubi8_ubi.txtar"))[0]
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseManifest(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCorruptSQLiteNoLeak checks that a corrupt SQLite database leaves no
// go-rpmdb reader goroutine behind.
func TestCorruptSQLiteNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 5 {
		if _, err := (Cataloger{}).Parse("x", strings.NewReader("SQLite format 3\x00"+strings.Repeat("\x00", 200))); err == nil {
			t.Fatal("no error")
		}
	}
	if !settled(before) {
		t.Errorf("goroutines %d -> %d", before, runtime.NumGoroutine())
	}
}

// TestCorruptBDB breaks a real database in the ways go-rpmdb's reader
// would loop forever on or panic over; each must be an error.
func TestCorruptBDB(t *testing.T) {
	orig, err := os.ReadFile(testdata.Path(t, "pkgdb", "rpm", "bdb", "centos8-dive", "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	const ps = 4096 // page size of this database
	overflow := -1
	for p := 1; p*ps < len(orig); p++ {
		if orig[p*ps+25] == 7 && overflow < 0 { // page type byte: overflow page
			overflow = p
		}
	}
	if overflow < 0 {
		t.Fatal("no overflow page in the fixture")
	}
	for _, tc := range []struct {
		name   string
		mutate func(b []byte)
		err    string
	}{
		{"overflow chain through a hash page", func(b []byte) { b[overflow*ps+25] = 13 }, "of type 13"},
		{"overflow chain cycle", func(b []byte) {
			binary.LittleEndian.PutUint32(b[overflow*ps+16:], uint32(overflow))
		}, "reaches page"},
		{"free area beyond the page", func(b []byte) {
			binary.LittleEndian.PutUint16(b[overflow*ps+22:], 0xfff0)
		}, "free area offset"},
		{"last page beyond the file", func(b []byte) {
			binary.LittleEndian.PutUint32(b[32:], 1000) // metadata last_pgno
		}, "beyond the file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := slices.Clone(orig)
			tc.mutate(b)
			done := make(chan struct{})
			go func() {
				defer close(done)
				pkgs, err := Cataloger{}.Parse("var/lib/rpm/Packages", bytes.NewReader(b))
				cattest.Expect(t, pkgs, err, "var/lib/rpm/Packages", row, nil, tc.err)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Parse hangs")
			}
		})
	}
}
