package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/testdata"
)

// entry is one member of a synthetic tar.
type entry struct {
	name, body, link string
	typ              byte
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: 0o644, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// collect reads a layer and returns the contents handed to the callback, in
// call order, as "path=contents".
func collect(t testing.TB, data []byte, sel Selector, lim Limits) ([]string, *Changes, error) {
	t.Helper()
	var got []string
	ch, err := Read(context.Background(), bytes.NewReader(data), sel, lim, func(p string, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, p+"="+string(b))
		return err
	})
	return got, ch, err
}

func TestSelector(t *testing.T) {
	s := NewSelector([]string{"etc/os-release", "var/lib/dpkg/status.d/*", "usr/lib/*/libc.so.6"})
	for _, c := range []struct {
		p          string
		want, cont bool
	}{
		{"etc/os-release", true, false},
		{"etc", false, true},
		{"", false, true},
		{"etc/passwd", false, false},
		{"var/lib/dpkg/status.d/libc6", true, false},
		{"var/lib/dpkg/status.d", false, true},
		{"var/lib/dpkg/status.d/a/b", false, false},
		{"usr/lib/x86_64-linux-gnu", false, true},
		{"usr/lib/x86_64-linux-gnu/libc.so.6", true, false},
		{"usr/share", false, false},
	} {
		if got := s.Want(c.p); got != c.want {
			t.Errorf("Want(%q) = %v", c.p, got)
		}
		if got := s.MayContain(c.p); got != c.cont {
			t.Errorf("MayContain(%q) = %v", c.p, got)
		}
	}
	if NewSelector(nil).MayContain("") {
		t.Error("an empty selector may contain the root")
	}
	for _, bad := range []string{"[", "/etc/x", "./etc", "../x", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewSelector(%q) did not panic", bad)
				}
			}()
			NewSelector([]string{bad})
		}()
	}
}

func TestRead(t *testing.T) {
	data := makeTar(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "./etc/", typ: tar.TypeDir},
		entry{name: "./etc/os-release", body: "ID=one"},
		entry{name: "/etc/issue", body: "hello"},
		entry{name: "etc/passwd", body: "not wanted"},
		entry{name: "etc/.wh.motd"},
		entry{name: "etc/.wh.unrelated"},
		entry{name: "usr/share/doc/.wh..wh..opq"},
		entry{name: "var/.wh..wh..opq"},
		entry{name: "usr/share/.wh.doc"},
		entry{name: "usr/share/doc/.wh..wh.plnk"},
		entry{name: "../../etc/shadow", body: "escape"},
		entry{name: "etc/../../etc/issue", body: "escape"},
		entry{name: "etc/" + strings.Repeat("x", 300), body: "long"},
		entry{name: "etc/big", body: strings.Repeat("b", 100)},
		entry{name: "etc/null", typ: tar.TypeChar},
		entry{name: "etc/fifo", typ: tar.TypeFifo},
		entry{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
		entry{name: "etc/alternatives/x", typ: tar.TypeSymlink, link: "/usr/bin/x"},
		entry{name: "usr/share/doc/readme", typ: tar.TypeLink, link: "./usr/share/common/readme"},
		entry{name: "etc/os-release", body: "ID=two"},
		entry{name: "usr/share/doc/pkg/copyright", body: "(c)"},
	)
	sel := NewSelector([]string{"etc/os-release", "etc/issue", "etc/motd", "etc/big", "etc/null", "etc/fifo", "usr/share/doc/*", "usr/share/doc/*/copyright", "lib/*"})
	lim := DefaultLimits()
	lim.MaxFileSize = 50
	lim.MaxPathLen = 200
	got, ch, err := collect(t, data, sel, lim)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"etc/os-release=ID=one", "etc/issue=hello", "etc/os-release=ID=two", "usr/share/doc/pkg/copyright=(c)"}
	if !slices.Equal(got, wantFiles) {
		t.Errorf("files = %q, want %q", got, wantFiles)
	}
	// etc/big (oversize), etc/null and etc/fifo hide lower files though
	// they are not handed over.
	if want := []string{"etc/motd", "usr/share/doc", "etc/big", "etc/null", "etc/fifo"}; !slices.Equal(ch.Whiteouts, want) {
		t.Errorf("whiteouts = %q, want %q", ch.Whiteouts, want)
	}
	if want := []string{"usr/share/doc"}; !slices.Equal(ch.Opaque, want) {
		t.Errorf("opaque = %q, want %q", ch.Opaque, want)
	}
	wantLinks := map[string]string{"lib": "usr/lib", "usr/share/doc/readme": "/usr/share/common/readme"}
	if !reflect.DeepEqual(ch.Links, wantLinks) {
		t.Errorf("links = %q, want %q", ch.Links, wantLinks)
	}
	warn := strings.Join(ch.Warnings, "\n")
	for _, w := range []string{`"../../etc/shadow": name escapes the root`, `"etc/../../etc/issue": name escapes the root`, "longer than 200 bytes", "skipped etc/big: size 100 exceeds the limit of 50 bytes"} {
		if !strings.Contains(warn, w) {
			t.Errorf("warnings %q lack %q", ch.Warnings, w)
		}
	}
	if len(ch.Warnings) != 4 {
		t.Errorf("got %d warnings, want 4: %q", len(ch.Warnings), ch.Warnings)
	}
}

func TestReadLinkReplacedByFile(t *testing.T) {
	data := makeTar(t,
		entry{name: "etc/os-release", typ: tar.TypeSymlink, link: "../usr/lib/os-release"},
		entry{name: "etc/os-release", body: "ID=file"},
		entry{name: "etc/issue", body: "first"},
		entry{name: "etc/issue", typ: tar.TypeSymlink, link: "issue.net"},
	)
	got, ch, err := collect(t, data, NewSelector([]string{"etc/os-release", "etc/issue"}), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"etc/os-release=ID=file", "etc/issue=first"}) {
		t.Errorf("files = %q", got)
	}
	if want := map[string]string{"etc/issue": "issue.net"}; !reflect.DeepEqual(ch.Links, want) {
		t.Errorf("links = %q, want %q", ch.Links, want)
	}
}

func TestReadLimits(t *testing.T) {
	data := makeTar(t, entry{name: "a", body: "1"}, entry{name: "b", body: "2"}, entry{name: "c", body: strings.Repeat("3", 4096)})
	sel := NewSelector([]string{"*"})

	lim := DefaultLimits()
	lim.MaxEntries = 2
	if _, _, err := collect(t, data, sel, lim); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "more than 2 tar entries") {
		t.Errorf("entries: err = %v", err)
	}
	lim = DefaultLimits()
	lim.MaxTotalSize = 4096
	if _, _, err := collect(t, data, sel, lim); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "larger than 4096 bytes") {
		t.Errorf("total: err = %v", err)
	}
	lim.MaxTotalSize = int64(len(data))
	if _, _, err := collect(t, data, sel, lim); err != nil {
		t.Errorf("a layer of exactly MaxTotalSize bytes: %v", err)
	}
	lim = DefaultLimits()
	lim.MaxWarnings = 1
	lim.MaxFileSize = 0
	if _, ch, err := collect(t, data, sel, lim); err != nil || len(ch.Warnings) != 2 || ch.Warnings[1] != "2 more warnings dropped" {
		t.Errorf("warnings = %q, %v", ch.Warnings, err)
	}
}

func TestReadErrors(t *testing.T) {
	data := makeTar(t, entry{name: "etc/os-release", body: strings.Repeat("x", 2000)}, entry{name: "etc/issue", body: "y"})
	sel := NewSelector([]string{"etc/*"})
	for _, n := range []int{100, 512 + 1000, len(data) - 1025} {
		if _, _, err := collect(t, data[:n], sel, DefaultLimits()); err == nil {
			t.Errorf("tar truncated at %d of %d bytes: no error", n, len(data))
		}
	}
	if _, _, err := collect(t, []byte(strings.Repeat("not a tar ", 100)), sel, DefaultLimits()); err == nil {
		t.Error("garbage: no error")
	}
	boom := errors.New("boom")
	_, err := Read(context.Background(), bytes.NewReader(data), sel, DefaultLimits(), func(string, io.Reader) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "etc/os-release") {
		t.Errorf("callback error = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Read(ctx, bytes.NewReader(data), sel, DefaultLimits(), func(string, io.Reader) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestResolveLink(t *testing.T) {
	links := map[string]string{
		"etc/os-release":     "../usr/lib/os-release",
		"lib":                "usr/lib",
		"bin":                "/usr/bin",
		"usr/lib/os-release": "os-release.d/current",
		"escape":             "../../../../etc",
		"abs":                "/../../usr/./lib",
		"loop1":              "loop2",
		"loop2":              "loop1",
		"self":               "./self",
		"empty":              "",
		"usr/bin/sh":         "dash",
		"top":                "/",
	}
	lookup := func(p string) (string, bool) { t, ok := links[p]; return t, ok }
	for p, want := range map[string]string{
		"etc/os-release":     "usr/lib/os-release.d/current",
		"lib/x86_64/libc.so": "usr/lib/x86_64/libc.so",
		"bin/sh":             "usr/bin/dash",
		"escape/passwd":      "etc/passwd",
		"abs/x":              "usr/lib/x",
		"etc/../lib":         "usr/lib",
		"../../lib":          "usr/lib",
		"plain/file":         "plain/file",
		"top/etc":            "etc",
		"top":                "",
		"":                   "",
	} {
		got, err := ResolveLink(p, lookup)
		if err != nil || got != want {
			t.Errorf("ResolveLink(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	for _, p := range []string{"loop1", "self/x"} {
		if _, err := ResolveLink(p, lookup); !errors.Is(err, ErrLinkLoop) {
			t.Errorf("ResolveLink(%q): err = %v, want a loop", p, err)
		}
	}
	if _, err := ResolveLink("empty", lookup); err == nil {
		t.Error("empty target: no error")
	}
	// A chain of exactly MaxLinkHops links resolves; one more does not.
	chain := map[string]string{}
	for i := range MaxLinkHops + 1 {
		chain[string(rune('a'+i%26))+strings.Repeat("z", i/26)] = "/" + string(rune('a'+(i+1)%26)) + strings.Repeat("z", (i+1)/26)
	}
	last := string(rune('a'+MaxLinkHops%26)) + strings.Repeat("z", MaxLinkHops/26)
	delete(chain, last)
	if got, err := ResolveLink("a", func(p string) (string, bool) { t, ok := chain[p]; return t, ok }); err != nil || got != last {
		t.Errorf("40-hop chain = %q, %v", got, err)
	}
	chain[last] = "/end"
	if _, err := ResolveLink("a", func(p string) (string, bool) { t, ok := chain[p]; return t, ok }); !errors.Is(err, ErrLinkLoop) {
		t.Errorf("41-hop chain: err = %v", err)
	}
}

// truthLayer is the part of images/NAME.truth.json these tests check.
type truthLayer struct {
	Digest      string   `json:"digest"`
	TarEntries  int      `json:"tar_entries"`
	Whiteouts   []string `json:"whiteouts"`
	OpaqueDirs  []string `json:"opaque_dirs"`
	Uncompresse int64    `json:"uncompressed_size"`
}

func readTruth(t testing.TB, name string) []truthLayer {
	t.Helper()
	b, err := os.ReadFile(testdata.Path(t, "images", name+".truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Layers []truthLayer `json:"layers"`
	}
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	return truth.Layers
}

// openBlob streams the gzip layer blob named "<hex>.tar.gz" out of a
// crane-format docker tar (the image package's job; done by hand here to
// keep this package's tests self-contained).
func openBlob(t testing.TB, archive, digest string) io.Reader {
	t.Helper()
	f, err := os.Open(testdata.Path(t, "images", archive))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tr := tar.NewReader(f)
	want := strings.TrimPrefix(digest, "sha256:") + ".tar.gz"
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s in %s: %v", want, archive, err)
		}
		if hdr.Name == want {
			zr, err := gzip.NewReader(tr)
			if err != nil {
				t.Fatal(err)
			}
			return zr
		}
	}
}

// everything wants every path.
type everything struct{}

func (everything) Want(string) bool       { return true }
func (everything) MayContain(string) bool { return true }

func TestDebianLayersWhiteouts(t *testing.T) {
	layers := readTruth(t, "debian12-layers")
	sel := NewSelector([]string{"usr/share/doc/*", "etc/motd"})
	for i, tl := range layers {
		ch, err := Read(context.Background(), openBlob(t, "debian12-layers.docker.tar", tl.Digest), sel, DefaultLimits(), func(string, io.Reader) error { return nil })
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		var want []string
		for _, w := range tl.Whiteouts {
			if sel.Want(w) || sel.MayContain(w) {
				want = append(want, w)
			}
		}
		slices.Sort(ch.Whiteouts)
		if !slices.Equal(ch.Whiteouts, want) {
			t.Errorf("layer %d whiteouts = %q, want %q", i, ch.Whiteouts, want)
		}
		if len(tl.OpaqueDirs) == 0 {
			tl.OpaqueDirs = nil
		}
		if !slices.Equal(ch.Opaque, tl.OpaqueDirs) {
			t.Errorf("layer %d opaque = %q, want %q", i, ch.Opaque, tl.OpaqueDirs)
		}
		if i == 2 && (!slices.Contains(ch.Whiteouts, "etc/motd") || len(ch.Opaque) != 1) {
			t.Errorf("layer 2 lost etc/motd or usr/share/doc: %q %q", ch.Whiteouts, ch.Opaque)
		}
	}
}

func TestDebianLayersEverything(t *testing.T) {
	layers := readTruth(t, "debian12-layers")
	tl := layers[2]
	files := 0
	ch, err := Read(context.Background(), openBlob(t, "debian12-layers.docker.tar", tl.Digest), everything{}, DefaultLimits(), func(string, io.Reader) error { files++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ch.Whiteouts)
	if !slices.Equal(ch.Whiteouts, tl.Whiteouts) || !slices.Equal(ch.Opaque, tl.OpaqueDirs) {
		t.Errorf("whiteouts %q opaque %q; want %q %q", ch.Whiteouts, ch.Opaque, tl.Whiteouts, tl.OpaqueDirs)
	}
	if files == 0 || files+len(ch.Whiteouts)+len(ch.Opaque)+len(ch.Links) > tl.TarEntries {
		t.Errorf("%d files for %d tar entries", files, tl.TarEntries)
	}
}

func TestDistrolessDotSlashNames(t *testing.T) {
	// distroless-style member names start with "./"; its docker tar holds
	// gzip copies of the zstd layers.
	f, err := os.Open(testdata.Path(t, "images", "distroless-style.docker.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var truth struct {
		Outputs map[string]struct {
			LayerDigests []string `json:"layer_digests"`
		} `json:"outputs"`
	}
	b, err := os.ReadFile(testdata.Path(t, "images", "distroless-style.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	var got []string
	sel := NewSelector([]string{"var/lib/dpkg/status.d/*", "etc/os-release"})
	for _, d := range truth.Outputs["docker-save"].LayerDigests {
		ch, err := Read(context.Background(), openBlob(t, "distroless-style.docker.tar", d), sel, DefaultLimits(), func(p string, r io.Reader) error {
			got = append(got, p)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for p := range ch.Links {
			got = append(got, p+"@")
		}
	}
	if !slices.Contains(got, "var/lib/dpkg/status.d/libc6") || !slices.Contains(got, "var/lib/dpkg/status.d/base-files") {
		t.Errorf("status.d files not found: %q", got)
	}
	if !slices.Contains(got, "etc/os-release") && !slices.Contains(got, "etc/os-release@") {
		t.Errorf("etc/os-release not found: %q", got)
	}
}
