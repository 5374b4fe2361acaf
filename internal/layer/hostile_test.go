package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile layers: each tar is built in code, huge ones streamed through a
// pipe from a generator goroutine so that nothing large is ever held.

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// streamTar returns the tar that gen writes, produced while it is read.
// Closing the reader early stops the generator.
func streamTar(gen func(tw *tar.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := gen(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// heapPeak runs fn while sampling the heap, and returns the largest
// HeapInuse seen above the level before fn, and the bytes fn's run
// allocated in all (an upper bound on any peak).
func heapPeak(fn func()) (peak, total uint64) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var top atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > top.Load() {
				top.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if p := top.Load(); p > before.HeapInuse {
		peak = p - before.HeapInuse
	}
	return peak, after.TotalAlloc - before.TotalAlloc
}

// fullSize skips a test at full hostile size unless VIGIL_HOSTILE_FULL=1:
// the same logic runs at a lower limit in the default run.
func fullSize(t *testing.T, what string) {
	t.Helper()
	if testing.Short() || os.Getenv("VIGIL_HOSTILE_FULL") != "1" {
		t.Skipf("%s: set VIGIL_HOSTILE_FULL=1 to run", what)
	}
}

func discardFiles(string, io.Reader) error { return nil }

// TestHostileHugeFile: a header claiming 10 GB of zeros. Unwanted, it is
// skipped; wanted, it is skipped as oversize with a warning; either way the
// total-size bound stops the stream and memory stays flat.
func TestHostileHugeFile(t *testing.T) {
	const claimed = 10 << 30
	gen := func(name string) func(tw *tar.Writer) error {
		return func(tw *tar.Writer) error {
			if err := tw.WriteHeader(&tar.Header{Name: name, Size: claimed, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err := io.CopyN(tw, zeros{}, claimed)
			return err
		}
	}
	lim := DefaultLimits()
	lim.MaxTotalSize = 256 << 20 // the logic is that of the 32 GiB default, at a fraction of the time
	sel := NewSelector([]string{"var/lib/dpkg/status"})
	for _, name := range []string{"usr/share/big.img", "var/lib/dpkg/status"} {
		var ch *Changes
		var err error
		called := false
		peak, total := heapPeak(func() {
			rc := streamTar(gen(name))
			defer rc.Close()
			ch, err = Read(context.Background(), rc, sel, lim, func(string, io.Reader) error { called = true; return nil })
		})
		t.Logf("%s: heap peak +%d KiB, allocated %d KiB", name, peak>>10, total>>10)
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), fmt.Sprintf("larger than %d bytes", lim.MaxTotalSize)) {
			t.Errorf("%s: err = %v, want the total size limit", name, err)
		}
		if called {
			t.Errorf("%s: the oversize file was handed to the callback", name)
		}
		if sel.Want(name) && (len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "skipped var/lib/dpkg/status: size 10737418240 exceeds")) {
			t.Errorf("%s: warnings = %q", name, ch.Warnings)
		}
		if total > 16<<20 {
			t.Errorf("%s: reading allocated %d bytes, want under 16 MiB", name, total)
		}
	}
}

// TestHostileHugeFileDefaults streams the whole 10 GB file under the
// default limits: it is skipped and the layer read to its end.
func TestHostileHugeFileDefaults(t *testing.T) {
	fullSize(t, "streams 10 GiB (7 s on 2 cores)")
	const claimed = 10 << 30
	var ch *Changes
	var err error
	var got []string
	peak, total := heapPeak(func() {
		rc := streamTar(func(tw *tar.Writer) error {
			if err := tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Size: claimed, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := io.CopyN(tw, zeros{}, claimed); err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: "etc/os-release", Size: 9, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err := io.WriteString(tw, "ID=debian")
			return err
		})
		defer rc.Close()
		ch, err = Read(context.Background(), rc, NewSelector([]string{"var/lib/dpkg/status", "etc/os-release"}), DefaultLimits(), func(p string, r io.Reader) error {
			b, err := io.ReadAll(r)
			got = append(got, p+"="+string(b))
			return err
		})
	})
	t.Logf("10 GiB skipped: heap peak +%d KiB, allocated %d KiB", peak>>10, total>>10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"etc/os-release=ID=debian"}) {
		t.Errorf("files = %q, want only the os-release after the huge file", got)
	}
	if len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "skipped var/lib/dpkg/status: size 10737418240 exceeds the limit") {
		t.Errorf("warnings = %q", ch.Warnings)
	}
	if total > 16<<20 {
		t.Errorf("allocated %d bytes reading 10 GiB, want under 16 MiB", total)
	}
}

// manyEntries streams a tar of n empty files, d/0000000 onwards. The
// headers are stamped from one template (only the name digits and the
// checksum change), so the generator costs little beside the reader.
func manyEntries(n int) io.ReadCloser {
	var one bytes.Buffer
	tw := tar.NewWriter(&one)
	if err := tw.WriteHeader(&tar.Header{Name: "d/0000000", Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
		panic(err)
	}
	tmpl := one.Bytes()[:blockSize]
	pr, pw := io.Pipe()
	go func() {
		const batch = 128
		buf := make([]byte, 0, batch*blockSize+2*blockSize)
		for i := 0; i < n; {
			buf = buf[:0]
			for ; i < n && len(buf) < batch*blockSize; i++ {
				h := append([]byte(nil), tmpl...)
				copy(h[2:9], fmt.Sprintf("%07d", i))
				copy(h[148:156], "        ")
				sum := 0
				for _, c := range h {
					sum += int(c)
				}
				copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
				buf = append(buf, h...)
			}
			if i == n {
				buf = append(buf, make([]byte, 2*blockSize)...)
			}
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
		pw.Close()
	}()
	return pr
}

func TestHostileManyEntries(t *testing.T) {
	sel := NewSelector([]string{"d/*"})
	lim := DefaultLimits()
	lim.MaxEntries = 1000
	calls := 0
	count := func(string, io.Reader) error { calls++; return nil }
	rc := manyEntries(1000)
	if _, err := Read(context.Background(), rc, sel, lim, count); err != nil || calls != 1000 {
		t.Errorf("1000 entries at a limit of 1000: %d files, err %v", calls, err)
	}
	rc.Close()
	calls = 0
	rc = manyEntries(1001)
	if _, err := Read(context.Background(), rc, sel, lim, count); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "more than 1000 tar entries") {
		t.Errorf("1001 entries: err = %v", err)
	}
	rc.Close()

	fullSize(t, "reads a million-entry stream (14 s on 2 cores, archive/tar's own cost)")
	// A real stream of a million and more entries against the default limit,
	// none of them wanted, so memory must not grow with the count.
	n := DefaultLimits().MaxEntries + 1
	var err error
	peak, total := heapPeak(func() {
		rc := manyEntries(n)
		defer rc.Close()
		_, err = Read(context.Background(), rc, NewSelector([]string{"etc/os-release"}), DefaultLimits(), discardFiles)
	})
	t.Logf("%d entries: heap peak +%d KiB, allocated %d MiB", n, peak>>10, total>>20)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d tar entries", n-1)) {
		t.Errorf("%d entries: err = %v", n, err)
	}
	if peak > 32<<20 {
		t.Errorf("heap grew by %d bytes over %d entries", peak, n)
	}
}

// TestHostileNames: escaping, absolute and odd member names never come out
// as paths leaving the root, and nothing escaping is handed over.
func TestHostileNames(t *testing.T) {
	data := makeTar(t,
		entry{name: "../etc/os-release", body: "escape1"},
		entry{name: "../../../../../../etc/os-release", body: "escape2"},
		entry{name: "./../etc/os-release", body: "escape3"},
		entry{name: "etc/../../etc/os-release", body: "escape4"},
		entry{name: "..", typ: tar.TypeDir},
		entry{name: "/etc/os-release", body: "ID=abs"},
		entry{name: "//etc//./os-release", body: "ID=abs2"},
		entry{name: "etc/x/../os-release", body: "ID=dotdot-inside"},
		entry{name: "etc/.wh.../../etc/os-release"},
		entry{name: "../.wh.etc"},
		entry{name: "etc/.wh."},
	)
	got, ch, err := collect(t, data, NewSelector([]string{"etc/os-release"}), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/os-release=ID=abs", "etc/os-release=ID=abs2", "etc/os-release=ID=dotdot-inside"}
	if !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	for _, w := range ch.Whiteouts {
		if strings.HasPrefix(w, "..") || strings.HasPrefix(w, "/") {
			t.Errorf("whiteout %q leaves the root", w)
		}
	}
	warn := strings.Join(ch.Warnings, "\n")
	for _, name := range []string{`"../etc/os-release"`, `"../../../../../../etc/os-release"`, `"./../etc/os-release"`, `"etc/../../etc/os-release"`, `"..": name escapes`, `"../.wh.etc"`, "no name after the prefix"} {
		if !strings.Contains(warn, name) {
			t.Errorf("no warning naming %s in %q", name, ch.Warnings)
		}
	}
}

// TestHostileLinks: links out of the root, into loops, over the package
// database directory, and hard links to escaping targets.
func TestHostileLinks(t *testing.T) {
	data := makeTar(t,
		entry{name: "etc/os-release", typ: tar.TypeSymlink, link: "/../../etc/passwd"},
		entry{name: "var/lib/dpkg", typ: tar.TypeSymlink, link: "/"},
		entry{name: "lib/apk/db", typ: tar.TypeSymlink, link: "../../../../../../../../var"},
		entry{name: "etc/lsb-release", typ: tar.TypeSymlink, link: "lsb-release"},
		entry{name: "etc/debian_version", typ: tar.TypeSymlink, link: "alpine-release"},
		entry{name: "etc/alpine-release", typ: tar.TypeSymlink, link: "/etc/debian_version"},
		entry{name: "etc/issue", typ: tar.TypeLink, link: "../../../etc/shadow"},
		entry{name: "etc/redhat-release", typ: tar.TypeLink, link: "/etc/shadow"},
		entry{name: "etc/system-release", typ: tar.TypeLink, link: ""},
		entry{name: "etc/centos-release", typ: tar.TypeSymlink, link: ""},
	)
	sel := NewSelector([]string{"etc/*", "var/lib/dpkg/status", "lib/apk/db/installed"})
	got, ch, err := collect(t, data, sel, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("links handed over as files: %q", got)
	}
	want := map[string]string{
		"etc/os-release":     "/../../etc/passwd",
		"var/lib/dpkg":       "/",
		"lib/apk/db":         "../../../../../../../../var",
		"etc/lsb-release":    "lsb-release",
		"etc/debian_version": "alpine-release",
		"etc/alpine-release": "/etc/debian_version",
		"etc/redhat-release": "/etc/shadow",
	}
	for p, target := range want {
		if ch.Links[p] != target {
			t.Errorf("link %s = %q, want %q", p, ch.Links[p], target)
		}
	}
	if len(ch.Links) != len(want) {
		t.Errorf("links = %q", ch.Links)
	}
	warn := strings.Join(ch.Warnings, "\n")
	for _, w := range []string{"skipped hard link etc/issue", "skipped hard link etc/system-release", "skipped link etc/centos-release: target empty"} {
		if !strings.Contains(warn, w) {
			t.Errorf("warnings %q lack %q", ch.Warnings, w)
		}
	}
	lookup := func(p string) (string, bool) { tg, ok := ch.Links[p]; return tg, ok }
	for p, wantRes := range map[string]string{
		"etc/os-release":       "etc/passwd", // inside the image, never the host's
		"var/lib/dpkg/status":  "status",
		"lib/apk/db/installed": "var/installed",
		"etc/redhat-release":   "etc/shadow",
	} {
		res, err := ResolveLink(p, lookup)
		if err != nil || res != wantRes {
			t.Errorf("ResolveLink(%s) = %q, %v; want %q", p, res, err, wantRes)
		}
	}
	for _, p := range []string{"etc/lsb-release", "etc/debian_version"} {
		if _, err := ResolveLink(p, lookup); !errors.Is(err, ErrLinkLoop) {
			t.Errorf("ResolveLink(%s): err = %v, want a loop", p, err)
		}
	}
}

// TestHostileSpecialFiles: device nodes, fifos and directories at wanted
// paths are never opened or handed over.
func TestHostileSpecialFiles(t *testing.T) {
	var got []string
	for _, typ := range []byte{tar.TypeChar, tar.TypeBlock, tar.TypeFifo, tar.TypeDir, tar.TypeCont, 'Z'} {
		data := makeTar(t, entry{name: "var/lib/dpkg/status", typ: typ})
		files, ch, err := collect(t, data, NewSelector([]string{"var/lib/dpkg/status"}), DefaultLimits())
		if err != nil {
			t.Errorf("type %q: %v", typ, err)
			continue
		}
		got = append(got, files...)
		if len(ch.Links) != 0 {
			t.Errorf("type %q: links %q", typ, ch.Links)
		}
	}
	if len(got) != 0 {
		t.Errorf("special files handed over: %q", got)
	}
}

// rawTar builds a tar by hand so that headers can lie.
func rawTar(t *testing.T, hdrs ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, h := range hdrs {
		var one bytes.Buffer
		tw := tar.NewWriter(&one)
		if err := tw.WriteHeader(&tar.Header{Name: h.name, Size: h.claim, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		buf.Write(one.Bytes()[:blockSize])
		buf.WriteString(h.body)
		if pad := len(h.body) % blockSize; pad != 0 {
			buf.Write(make([]byte, blockSize-pad))
		}
	}
	return buf.Bytes()
}

type rawEntry struct {
	name, body string
	claim      int64
}

// TestHostileLyingSizes: headers claiming more or less than their contents.
func TestHostileLyingSizes(t *testing.T) {
	sel := NewSelector([]string{"etc/*"})
	for what, data := range map[string][]byte{
		"claims more, then ends":           rawTar(t, rawEntry{"etc/os-release", "ID=x\n", 1 << 20}),
		"claims more, then the end marker": append(rawTar(t, rawEntry{"etc/os-release", "ID=x\n", 5000}), make([]byte, 1024)...),
		"claims less, rest is no header":   rawTar(t, rawEntry{"etc/os-release", strings.Repeat("ID=x\n", 300), 5}),
		"negative size":                    []byte(strings.Replace(string(rawTar(t, rawEntry{"etc/issue", "", 0})), "00000000000", "-0000000001", 1)),
	} {
		_, _, err := collect(t, data, sel, DefaultLimits())
		if err == nil {
			t.Errorf("%s: no error", what)
			continue
		}
		if !strings.Contains(err.Error(), "layer tar") && !strings.Contains(err.Error(), "etc/") {
			t.Errorf("%s: error %q names neither the layer tar nor the entry", what, err)
		}
	}
}

// TestHostileDuplicates: the last of several entries for a path wins,
// whatever mix of files and links they are.
func TestHostileDuplicates(t *testing.T) {
	var es []entry
	for i := range 50 {
		es = append(es, entry{name: "etc/os-release", body: fmt.Sprintf("ID=v%d", i)})
		es = append(es, entry{name: "etc/os-release", typ: tar.TypeSymlink, link: "/dev/zero"})
	}
	es = append(es, entry{name: "etc/os-release", body: "ID=last"})
	got, ch, err := collect(t, makeTar(t, es...), NewSelector([]string{"etc/os-release"}), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 51 || got[50] != "etc/os-release=ID=last" {
		t.Errorf("got %d files, last %q", len(got), got[len(got)-1])
	}
	if len(ch.Links) != 0 {
		t.Errorf("a link superseded by a file is still reported: %q", ch.Links)
	}
}

// TestHostileWarningFlood: a layer of nothing but bad entries keeps a
// bounded list of warnings.
func TestHostileWarningFlood(t *testing.T) {
	rc := streamTar(func(tw *tar.Writer) error {
		for i := range 100000 {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("../%d", i), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
				return err
			}
		}
		return nil
	})
	defer rc.Close()
	ch, err := Read(context.Background(), rc, NewSelector([]string{"etc/os-release"}), DefaultLimits(), discardFiles)
	if err != nil {
		t.Fatal(err)
	}
	if n := DefaultLimits().MaxWarnings; len(ch.Warnings) != n+1 || ch.Warnings[n] != fmt.Sprintf("%d more warnings dropped", 100000-n) {
		t.Errorf("%d warnings, last %q", len(ch.Warnings), ch.Warnings[len(ch.Warnings)-1])
	}
}

// TestHostileCancel: a never-ending layer stops when the context is done.
func TestHostileCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	rc := streamTar(func(tw *tar.Writer) error {
		for i := 0; ; i++ {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("etc/f%d", i), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
				return err
			}
		}
	})
	defer rc.Close()
	_, err := Read(ctx, rc, NewSelector([]string{"etc/*"}), DefaultLimits(), func(string, io.Reader) error {
		if n++; n == 1000 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
