package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/testdata"
)

// optional lets a seed loader use testdata.Path without skipping the whole
// fuzz target when the shared data is absent: the synthetic seeds still run.
type optional struct{ testing.TB }

func (optional) Skipf(string, ...any) {}

func FuzzRead(f *testing.F) {
	f.Add(makeTar(f,
		entry{name: "./etc/os-release", body: "ID=debian"},
		entry{name: "etc/.wh.motd"},
		entry{name: "usr/.wh..wh..opq"},
		entry{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
		entry{name: "var/lib/dpkg/status", typ: tar.TypeLink, link: "etc/os-release"},
		entry{name: "../x", body: "escape"},
	))
	if b, err := os.ReadFile(testdata.Path(optional{f}, "images", "layers", "claircore-debian9-dpkg-layer.tar")); err == nil {
		f.Add(b)
	}
	if p := testdata.Path(optional{f}, "images", "debian12-layers.docker.tar"); fileExists(p) {
		// The third layer: 67 entries with whiteouts and an opaque directory.
		b, err := io.ReadAll(openBlob(f, "debian12-layers.docker.tar", "sha256:ff4f84e9c8ad62c3a07271cdce35060d41187ebe1ad9054c0076d3452a0a607f"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	sel := NewSelector([]string{"etc/*", "var/lib/dpkg/status", "var/lib/dpkg/status.d/*", "usr/share/doc/*", "lib/apk/db/installed"})
	lim := Limits{MaxFileSize: 4096, MaxEntries: 5000, MaxTotalSize: 8 << 20, MaxPathLen: 256, MaxWarnings: 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		read := int64(0)
		ch, err := Read(context.Background(), bytes.NewReader(data), sel, lim, func(p string, r io.Reader) error {
			checkPath(t, "file", p)
			if !sel.Want(p) {
				t.Errorf("unwanted file %q handed over", p)
			}
			n, err := io.Copy(io.Discard, r)
			if n > lim.MaxFileSize {
				t.Errorf("%s: read %d bytes, above MaxFileSize", p, n)
			}
			read += n
			return err
		})
		if read > int64(len(data)) {
			t.Errorf("read %d bytes of files from %d bytes of tar", read, len(data))
		}
		if ch == nil {
			t.Fatalf("nil Changes (err %v)", err)
		}
		for _, p := range ch.Whiteouts {
			checkPath(t, "whiteout", p)
		}
		for p, target := range ch.Links {
			checkPath(t, "link", p)
			if target == "" || len(target) > lim.MaxPathLen {
				t.Errorf("link %q has target %q", p, target)
			}
		}
		if len(ch.Warnings) > lim.MaxWarnings+1 {
			t.Errorf("%d warnings", len(ch.Warnings))
		}
	})
}

func checkPath(t *testing.T, kind, p string) {
	t.Helper()
	if p == "" || p != path.Clean(p) || strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") {
		t.Errorf("%s path %q is not clean and root-relative", kind, p)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// BenchmarkRead reads the debian12-minbase layer (77 MB of tar, 4214
// entries) for a scanner's small wanted set, from an uncompressed copy in a
// temporary file, so that the figure is the tar reader's alone.
func BenchmarkRead(b *testing.B) {
	tl := readTruth(b, "debian12-minbase")[0]
	tmp := filepath.Join(b.TempDir(), "layer.tar")
	out, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, openBlob(b, "debian12-minbase.docker.tar", tl.Digest)); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	sel := NewSelector([]string{"etc/os-release", "usr/lib/os-release", "etc/debian_version", "var/lib/dpkg/status", "var/lib/dpkg/status.d/*", "lib/apk/db/installed", "var/lib/rpm/rpmdb.sqlite"})
	b.SetBytes(tl.Uncompresse)
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(tmp)
		if err != nil {
			b.Fatal(err)
		}
		files := 0
		_, err = Read(context.Background(), f, sel, DefaultLimits(), func(p string, r io.Reader) error {
			files++
			_, err := io.Copy(io.Discard, r)
			return err
		})
		f.Close()
		if err != nil || files != 3 {
			b.Fatal(fmt.Sprint(files, " files: ", err))
		}
	}
}
