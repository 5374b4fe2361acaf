package index_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/report"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/store"
)

// Full scans of hostile images, built in code as docker-save tarballs with
// go-containerregistry and scanned through scan.Scanner against a real
// SQLite store.

// member is one tar entry of a synthetic layer; size, when set, is a run of
// zero bytes streamed instead of body.
type member struct {
	name, body, link string
	typ              byte
	size             int64
}

// layerTar writes the layer tar of ms to w.
func layerTar(w io.Writer, ms []member) error {
	tw := tar.NewWriter(w)
	for _, m := range ms {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: m.name, Typeflag: typ, Linkname: m.link, Mode: 0o644, Format: tar.FormatPAX}
		var body io.Reader = strings.NewReader(m.body)
		if typ == tar.TypeReg {
			hdr.Size = int64(len(m.body))
			if m.size > 0 {
				hdr.Size, body = m.size, io.LimitReader(zeroes{}, m.size)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, body); err != nil {
			return err
		}
	}
	return tw.Close()
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// dockerSave writes a docker-save tarball of the given layers, each
// streamed from its members whenever go-containerregistry reads it.
func dockerSave(t *testing.T, layers ...[]member) string {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ms := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(layerTar(pw, ms)) }()
			return pr, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(p, name.MustParseReference("vigil.test/hostile:1"), img); err != nil {
		t.Fatal(err)
	}
	return p
}

func newScanner(t *testing.T) *scan.Scanner {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return scan.New(st, nil)
}

func doScan(t *testing.T, s *scan.Scanner, p string) (*report.Scan, index.Stats, error) {
	t.Helper()
	return s.Scan(context.Background(), p, image.Options{TempDir: t.TempDir()})
}

func pkgNames(r *report.Scan) []string {
	var out []string
	for _, p := range r.Packages {
		out = append(out, p.Name+"="+p.Version)
	}
	return out
}

const debianOS = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n"

func status(pkgs ...string) string {
	var b strings.Builder
	for _, p := range pkgs {
		n, v, _ := strings.Cut(p, "=")
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n", n, v)
	}
	return b.String()
}

var base = []member{
	{name: "etc/os-release", body: debianOS},
	{name: "var/lib/dpkg/status", body: status("libc6=2.36-9", "bash=5.2.15-2+b2", "zlib1g=1:1.2.13.dfsg-1")},
}

// TestHostileWhiteoutPackageDB: a layer deleting the package database, or
// making its directory opaque, leaves the image without its packages.
func TestHostileWhiteoutPackageDB(t *testing.T) {
	s := newScanner(t)
	r, _, err := doScan(t, s, dockerSave(t, base))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Packages) != 3 || r.Distribution == nil || r.Distribution.VersionID != "12" {
		t.Fatalf("base image: packages %q, distribution %+v", pkgNames(r), r.Distribution)
	}
	for what, top := range map[string][]member{
		"whiteout":        {{name: "var/lib/dpkg/.wh.status"}},
		"opaque":          {{name: "var/lib/dpkg/.wh..wh..opq"}},
		"dir whiteout":    {{name: "var/lib/.wh.dpkg"}},
		"link over dir":   {{name: "var/lib/dpkg", typ: tar.TypeSymlink, link: "/"}},
		"file over dir":   {{name: "var/lib/dpkg", body: "not a directory"}},
		"root opaque":     {{name: ".wh..wh..opq"}},
		"device over db":  {{name: "var/lib/dpkg/.wh.status"}, {name: "var/lib/dpkg/status", typ: tar.TypeChar}},
		"link out of img": {{name: "var/lib/dpkg/status", typ: tar.TypeSymlink, link: "../../../../../../var/lib/dpkg/status"}},
	} {
		r, _, err := doScan(t, s, dockerSave(t, base, top))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if len(r.Packages) != 0 {
			t.Errorf("%s: packages %q survived", what, pkgNames(r))
		}
	}
	// A later layer re-adding the database brings back what it lists, as
	// introduced by that layer.
	top := []member{{name: "var/lib/dpkg/.wh.status"}, {name: "var/lib/dpkg/status", body: status("bash=5.2.15-2+b2")}}
	r, _, err = doScan(t, s, dockerSave(t, base, top))
	if err != nil {
		t.Fatal(err)
	}
	if got := pkgNames(r); !slices.Equal(got, []string{"bash=5.2.15-2+b2"}) || r.Packages[0].Layer != r.Image.Layers[0].DiffID {
		// bash is in both layers' databases: it was introduced by the first.
		t.Errorf("re-added database: %q (layer %s)", got, r.Packages[0].Layer)
	}
}

// TestHostileBrokenDatabases: a broken package database warns, naming the
// layer and the path, while the rest of the image is still scanned.
func TestHostileBrokenDatabases(t *testing.T) {
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	longLine := "Package: x\nDescription: " + strings.Repeat("y", 2<<20) + "\nVersion: 1\n"
	cases := map[string]string{
		"binary junk":     string(junk),
		"missing version": "Package: a\nStatus: install ok installed\n\nPackage: b\nVersion: 1\n",
		"missing package": "Version: 1\nStatus: install ok installed\n",
		"bad status":      "Package: a\nVersion: 1\nStatus: what ever\n",
		"2 MiB line":      longLine,
		"vcpkg":           "Package: zlib\nVersion: 1.2\nArchitecture: x64-linux\nAbi: 1234\nStatus: install ok installed\n",
	}
	s := newScanner(t)
	for what, bad := range cases {
		layers := [][]member{
			{{name: "etc/os-release", body: debianOS}},
			{
				{name: "var/lib/dpkg/status.d/good", body: status("libc6=2.36-9")},
				{name: "var/lib/dpkg/status.d/broken", body: bad},
				{name: "lib/apk/db/installed", body: bad},
			},
		}
		r, _, err := doScan(t, s, dockerSave(t, layers...))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if got := pkgNames(r); !slices.Contains(got, "libc6=2.36-9") {
			t.Errorf("%s: good database lost: %q", what, got)
		}
		if slices.ContainsFunc(r.Packages, func(p model.Package) bool { return p.DBPath == "var/lib/dpkg/status.d/broken" }) && what != "missing version" {
			t.Errorf("%s: packages from the broken database: %q", what, pkgNames(r))
		}
		warn := strings.Join(r.Warnings, "\n")
		layer2 := fmt.Sprintf("layer 2 (%s): var/lib/dpkg/status.d/broken", r.Image.Layers[1].DiffID)
		if !strings.Contains(warn, layer2) {
			t.Errorf("%s: warnings do not name %q: %q", what, layer2, r.Warnings)
		}
		if r.Distribution == nil || r.Distribution.ID != "debian" {
			t.Errorf("%s: distribution %+v", what, r.Distribution)
		}
	}
}

// TestHostileHugeDatabase: a package database above the file size bound is
// skipped with a warning, read as a stream in flat memory.
func TestHostileHugeDatabase(t *testing.T) {
	s := newScanner(t)
	s.Indexer.Limits.MaxFileSize = 8 << 20
	huge := strings.Repeat(status("a=1"), (16<<20)/len(status("a=1")))
	p := dockerSave(t, base, []member{
		{name: "var/lib/dpkg/status", body: huge},
		{name: "usr/share/big", size: 256 << 20},
	})
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	r, _, err := doScan(t, s, p)
	runtime.ReadMemStats(&m1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scan of a 16 MiB database and a 256 MiB file: %d KiB allocated", (m1.TotalAlloc-m0.TotalAlloc)>>10)
	if len(r.Packages) != 0 {
		// The skipped file still replaces the lower layer's database.
		t.Errorf("packages %q: the oversize database should hide the lower one", pkgNames(r))
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "skipped var/lib/dpkg/status: size") {
		t.Errorf("warnings %q", r.Warnings)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 96<<20 {
		t.Errorf("scan allocated %d bytes", alloc)
	}
}

// TestHostileEscapes: members and links aiming outside the image never
// write anywhere: the canary paths they name stay absent, the temporary
// directory is empty after the scan, and release files resolve inside the
// image.
func TestHostileEscapes(t *testing.T) {
	canary := "vigil-canary-" + hex.EncodeToString([]byte(t.Name()))[:16]
	tmp := t.TempDir()
	layers := [][]member{
		{
			{name: "usr/lib/os-release", body: debianOS},
			{name: "var/lib/dpkg/status", body: status("libc6=2.36-9")},
		},
		{
			{name: "../../../../../../../../tmp/" + canary, body: "escaped"},
			{name: "/tmp/" + canary + "-abs", body: "escaped"},
			{name: "../" + canary, body: "escaped"},
			{name: "etc/os-release", typ: tar.TypeSymlink, link: "/../../../../usr/lib/os-release"},
			{name: "etc/lsb-release", typ: tar.TypeSymlink, link: "/etc/passwd"},
			{name: "escape", typ: tar.TypeSymlink, link: "/tmp"},
			{name: "escape/" + canary + "-via-link", body: "escaped"},
			{name: "hard", typ: tar.TypeLink, link: "../../../../etc/passwd"},
			{name: "dev/sda", typ: tar.TypeBlock},
			{name: "run/fifo", typ: tar.TypeFifo},
		},
	}
	p := dockerSave(t, layers...)
	// The same image gzipped makes the scanner spill it to a temporary file.
	gz := p + ".gz"
	gzipFile(t, p, gz)
	for _, in := range []string{p, gz} {
		r, _, err := newScanner(t).Scan(context.Background(), in, image.Options{TempDir: tmp})
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if r.Distribution == nil || r.Distribution.VersionID != "12" {
			t.Errorf("%s: distribution %+v, want the image's own usr/lib/os-release", in, r.Distribution)
		}
		if got := pkgNames(r); !slices.Equal(got, []string{"libc6=2.36-9"}) {
			t.Errorf("%s: packages %q", in, got)
		}
		if !strings.Contains(strings.Join(r.Warnings, "\n"), "name escapes the root") {
			// Escaping names are unwanted paths here, skipped silently or
			// with a warning; neither may write.
			t.Logf("%s: warnings %q", in, r.Warnings)
		}
	}
	for _, dir := range []string{os.TempDir(), "/tmp", filepath.Dir(p), filepath.Dir(filepath.Dir(p)), tmp, filepath.Dir(tmp)} {
		for _, suffix := range []string{"", "-abs", "-via-link"} {
			if _, err := os.Lstat(filepath.Join(dir, canary+suffix)); err == nil {
				t.Errorf("%s appeared in %s", canary+suffix, dir)
			}
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func gzipFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	if err := os.WriteFile(to, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileLayerErrors: a layer that cannot be read fails the scan with
// an error naming it, and is not cached as empty: the next scan fails too.
func TestHostileLayerErrors(t *testing.T) {
	s := newScanner(t)
	s.Indexer.Limits.MaxEntries = 100
	var many []member
	for i := range 101 {
		many = append(many, member{name: fmt.Sprintf("f%d", i)})
	}
	p := dockerSave(t, base, many)
	for range 2 {
		_, _, err := doScan(t, s, p)
		if err == nil || !strings.Contains(err.Error(), "layer 2 (sha256:") || !strings.Contains(err.Error(), "more than 100 tar entries") {
			t.Errorf("err = %v", err)
		}
	}
	// The good layer below was cached; the bad one was not.
	s.Indexer.Limits.MaxEntries = 1000
	r, st, err := doScan(t, s, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.LayersCached != 1 || st.LayersRead != 1 || len(r.Packages) != 3 {
		t.Errorf("stats %+v, packages %q", st, pkgNames(r))
	}
}
