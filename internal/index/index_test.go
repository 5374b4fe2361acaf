package index

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/store"
)

// entry of a synthetic layer: a file (body), a symlink (link) or a
// directory (name ending in "/").
type tarEntry struct{ name, body, link string }

func layerTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func status(pkgs ...string) string {
	var b strings.Builder
	for _, p := range pkgs {
		n, v, _ := strings.Cut(p, "=")
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n", n, v)
	}
	return b.String()
}

func controlFile(pkg string) string {
	n, v, _ := strings.Cut(pkg, "=")
	return fmt.Sprintf("Package: %s\nArchitecture: amd64\nVersion: %s\n", n, v)
}

const osRelease = "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"

// writeImage writes a docker-save tarball of the given layers.
func writeImage(t *testing.T, layers ...[]byte) string {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		layer, err := tarball.LayerFromReader(bytes.NewReader(l))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	img, err := mutate.ConfigFile(img, mustConfig(t, img))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "img.tar")
	tag, _ := name.NewTag("vigil.test/whiteouts:1")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustConfig(t *testing.T, img v1.Image) *v1.ConfigFile {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	return cf
}

func indexImage(t *testing.T, ix *Indexer, path string) (*Report, Stats) {
	t.Helper()
	img, err := image.Open(context.Background(), path, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	r, st, err := ix.Index(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

// pkgLayers lists "name=version@layer-number" for a report.
func pkgLayers(r *Report) []string {
	no := map[string]int{}
	for i, l := range r.Layers {
		no[l.DiffID] = i + 1
	}
	var out []string
	for _, p := range r.Packages {
		out = append(out, fmt.Sprintf("%s=%s@%d", p.Name, p.Version, no[p.Layer]))
	}
	sort.Strings(out)
	return out
}

func TestWhiteoutsAndIntroducingLayers(t *testing.T) {
	base := layerTar(t,
		tarEntry{name: "etc/"}, tarEntry{name: "usr/lib/"},
		tarEntry{name: "usr/lib/os-release", body: osRelease},
		tarEntry{name: "etc/os-release", link: "../usr/lib/os-release"},
		tarEntry{name: "var/lib/dpkg/status", body: status("a=1", "b=1", "c=1")},
		tarEntry{name: "var/lib/dpkg/status.d/"},
		tarEntry{name: "var/lib/dpkg/status.d/d", body: controlFile("d=1")},
		tarEntry{name: "var/lib/dpkg/status.d/e", body: controlFile("e=1")},
	)
	cases := []struct {
		name  string
		upper [][]byte
		want  []string
	}{
		{"base only", nil, []string{"a=1@1", "b=1@1", "c=1@1", "d=1@1", "e=1@1"}},
		{"upgrade and install", [][]byte{layerTar(t,
			tarEntry{name: "var/lib/dpkg/status", body: status("a=1", "b=2", "c=1", "f=1")},
		)}, []string{"a=1@1", "b=2@2", "c=1@1", "d=1@1", "e=1@1", "f=1@2"}},
		{"package removed in an upper layer", [][]byte{layerTar(t,
			tarEntry{name: "var/lib/dpkg/status", body: status("a=1", "c=1")},
		)}, []string{"a=1@1", "c=1@1", "d=1@1", "e=1@1"}},
		{"status.d file whited out", [][]byte{layerTar(t,
			tarEntry{name: "var/lib/dpkg/status.d/.wh.d"},
		)}, []string{"a=1@1", "b=1@1", "c=1@1", "e=1@1"}},
		{"opaque status.d keeps only the upper contents", [][]byte{layerTar(t,
			tarEntry{name: "var/lib/dpkg/status.d/"},
			tarEntry{name: "var/lib/dpkg/status.d/.wh..wh..opq"},
			tarEntry{name: "var/lib/dpkg/status.d/g", body: controlFile("g=1")},
		)}, []string{"a=1@1", "b=1@1", "c=1@1", "g=1@2"}},
		{"package database deleted", [][]byte{layerTar(t,
			tarEntry{name: "var/lib/dpkg/.wh.status"},
		)}, []string{"d=1@1", "e=1@1"}},
		{"whole dpkg directory deleted", [][]byte{layerTar(t,
			tarEntry{name: "var/lib/.wh.dpkg"},
		)}, nil},
		{"removed then reinstalled: introduced by the upper layer", [][]byte{
			layerTar(t, tarEntry{name: "var/lib/dpkg/status", body: status("a=1")}),
			layerTar(t, tarEntry{name: "var/lib/dpkg/status", body: status("a=1", "b=1")}),
		}, []string{"a=1@1", "b=1@3", "d=1@1", "e=1@1"}},
		{"unrelated file deleted", [][]byte{layerTar(t,
			tarEntry{name: "etc/.wh.motd"},
		)}, []string{"a=1@1", "b=1@1", "c=1@1", "d=1@1", "e=1@1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ix := New(nil, nil)
			r, _ := indexImage(t, ix, writeImage(t, append([][]byte{base}, c.upper...)...))
			got := pkgLayers(r)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("packages\n got %v\nwant %v", got, c.want)
			}
			if r.Distribution == nil || r.Distribution.Namespace != "debian:12" {
				t.Errorf("distribution %+v, want debian:12 through the os-release symlink", r.Distribution)
			}
		})
	}
}

func TestOSReleaseDeletedAndInherited(t *testing.T) {
	base := layerTar(t, tarEntry{name: "etc/os-release", body: osRelease})
	ix := New(nil, nil)
	r, _ := indexImage(t, ix, writeImage(t, base, layerTar(t, tarEntry{name: "etc/motd", body: "hi"})))
	if r.Distribution == nil || r.Distribution.ID != "debian" {
		t.Errorf("an upper layer without release files must inherit the OS: %+v", r.Distribution)
	}
	r, _ = indexImage(t, ix, writeImage(t, base, layerTar(t, tarEntry{name: "etc/.wh.os-release"})))
	if r.Distribution != nil {
		t.Errorf("os-release deleted in the upper layer, still detected %+v", r.Distribution)
	}
	// A symlink escaping the root resolves inside it: no host file is read.
	r, _ = indexImage(t, ix, writeImage(t, layerTar(t, tarEntry{name: "etc/os-release", link: "../../../../etc/os-release"})))
	if r.Distribution != nil {
		t.Errorf("escaping symlink detected %+v", r.Distribution)
	}
}

// TestSharedLayersIndexedOnce indexes two images sharing their base layer
// through one store: the second reads only its own layer.
func TestSharedLayersIndexedOnce(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ix := New(st, nil)
	base := layerTar(t, tarEntry{name: "etc/os-release", body: osRelease}, tarEntry{name: "var/lib/dpkg/status", body: status("a=1")})
	first := writeImage(t, base, layerTar(t, tarEntry{name: "var/lib/dpkg/status", body: status("a=1", "b=1")}))
	second := writeImage(t, base, layerTar(t, tarEntry{name: "var/lib/dpkg/status", body: status("a=1", "c=1")}))
	if _, s := indexImage(t, ix, first); s.LayersRead != 2 || s.LayersCached != 0 {
		t.Errorf("first image: %+v", s)
	}
	r, s := indexImage(t, ix, second)
	if s.LayersRead != 1 || s.LayersCached != 1 {
		t.Errorf("second image: read %d, cached %d; want 1 and 1", s.LayersRead, s.LayersCached)
	}
	if got := strings.Join(pkgLayers(r), " "); got != "a=1@1 c=1@2" {
		t.Errorf("second image packages %s", got)
	}
	if _, s := indexImage(t, ix, second); !s.ImageCached {
		t.Errorf("re-index of a known image: %+v, want the image cache", s)
	}
}

// TestMergedUsrAPK finds the apk database of an image whose /lib is a
// symlink to usr/lib.
func TestMergedUsrAPK(t *testing.T) {
	img := writeImage(t, layerTar(t,
		tarEntry{name: "etc/alpine-release", body: "3.23.0\n"},
		tarEntry{name: "lib", link: "usr/lib"},
		tarEntry{name: "usr/lib/apk/db/installed", body: "P:musl\nV:1.2.5-r10\nA:x86_64\no:musl\n\nP:apk-tools\nV:3.0.3-r1\nA:x86_64\no:apk-tools\n\n"},
	))
	r, _ := indexImage(t, New(nil, nil), img)
	if got := strings.Join(pkgLayers(r), " "); got != "apk-tools=3.0.3-r1@1 musl=1.2.5-r10@1" {
		t.Errorf("packages %s", got)
	}
	if r.Distribution == nil || r.Distribution.Namespace != "alpine:v3.23" {
		t.Errorf("distribution %+v", r.Distribution)
	}
}
