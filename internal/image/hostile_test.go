package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Hostile compressed inputs: decompression bombs, truncated and corrupt
// streams. The bombs are built by streaming zeros through the compressor,
// so only their small compressed form is ever held.

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// bomb returns a layer tar holding one file of n zero bytes, compressed by
// wrap, and the diff ID of the uncompressed tar.
func bomb(t *testing.T, n int64, wrap func(io.Writer) io.WriteCloser) ([]byte, string) {
	t.Helper()
	var out bytes.Buffer
	zw := wrap(&out)
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	if err := tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Size: n, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, n); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func gzipBest(w io.Writer) io.WriteCloser {
	zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
	return zw
}

func zstdBest(w io.Writer) io.WriteCloser {
	zw, _ := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	return zw
}

// allocDuring returns the bytes allocated while fn runs.
func allocDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// readLayer opens the single layer of the archive p and reads it to the
// end, returning the bytes read and the error that stopped it.
func readLayer(t *testing.T, p string, opt Options) (int64, error) {
	t.Helper()
	img := mustOpen(t, p, opt)
	defer img.Close()
	rc, err := img.Layers[0].Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// TestHostileLayerBombs: gzip and zstd layers of zeros are stopped by the
// decompression ratio under the default options, and by MaxLayerSize when
// the ratio is disabled, long before their full size, in flat memory.
func TestHostileLayerBombs(t *testing.T) {
	const size = 128 << 20
	gz, gzDiffID := bomb(t, size, gzipBest)
	zs, zsDiffID := bomb(t, size, zstdBest)
	gzArchive, zsArchive := dockerArchive(t, gz, gzDiffID), dockerArchive(t, zs, zsDiffID)
	for _, c := range []struct {
		name, archive string
		blob          []byte
		opt           Options
		want          string
	}{
		{"gzip", gzArchive, gz, Options{MaxRatio: 100}, "decompression ratio"},
		{"zstd", zsArchive, zs, Options{}, "decompression ratio"},
		{"zstd-total", zsArchive, zs, Options{MaxRatio: -1, MaxLayerSize: 64 << 20}, "exceeds 67108864 bytes"},
	} {
		p, blob := c.archive, c.blob
		var n int64
		var err error
		alloc := allocDuring(func() { n, err = readLayer(t, p, c.opt) })
		t.Logf("%s: %d compressed bytes, stopped after %d MiB of %d MiB, %d KiB allocated", c.name, len(blob), n>>20, size>>20, alloc>>10)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "layer 0 (l/layer.tar)") {
			t.Errorf("%s: err = %v, want %q naming the layer", c.name, err, c.want)
		}
		if n >= size {
			t.Errorf("%s: the whole bomb was decompressed", c.name)
		}
		if alloc > 64<<20 {
			t.Errorf("%s: %d bytes allocated", c.name, alloc)
		}
	}
}

// TestHostileGzipBombDefaults: a 1 GiB gzip bomb at the default ratio.
// Deflate's own ceiling (1032:1) barely exceeds 1000:1, so the bound bites
// near the end; building the bomb is what takes the time.
func TestHostileGzipBombDefaults(t *testing.T) {
	if testing.Short() || os.Getenv("VIGIL_HOSTILE_FULL") != "1" {
		t.Skip("compresses 1 GiB: set VIGIL_HOSTILE_FULL=1 to run")
	}
	blob, diffID := bomb(t, 1<<30, gzipBest)
	n, err := readLayer(t, dockerArchive(t, blob, diffID), Options{})
	if err == nil || !strings.Contains(err.Error(), "decompression ratio") {
		t.Errorf("gzip at the default ratio: read %d bytes, err = %v", n, err)
	}
}

// TestHostileCorruptLayers: truncated and corrupted compressed layers fail
// with an error naming the layer; none passes as a short, clean layer.
func TestHostileCorruptLayers(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	body := bytes.Repeat([]byte("Package: x\nVersion: 1\n\n"), 20000)
	tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Size: int64(len(body)), Mode: 0o644})
	tw.Write(body)
	tw.Close()
	sum := sha256.Sum256(tb.Bytes())
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	compress := func(wrap func(io.Writer) io.WriteCloser) []byte {
		var b bytes.Buffer
		zw := wrap(&b)
		zw.Write(tb.Bytes())
		zw.Close()
		return b.Bytes()
	}
	for name, blob := range map[string][]byte{"gzip": compress(gzipBest), "zstd": compress(zstdBest)} {
		corrupt := bytes.Clone(blob)
		for i := len(corrupt) / 3; i < len(corrupt)/3+16; i++ {
			corrupt[i] ^= 0x5a
		}
		for what, b := range map[string][]byte{
			"truncated in the middle": blob[:len(blob)/2],
			"truncated by one byte":   blob[:len(blob)-1],
			"only the magic":          blob[:4],
			"corrupted":               corrupt,
		} {
			_, err := readLayer(t, dockerArchive(t, b, diffID), Options{})
			if err == nil || !strings.Contains(err.Error(), "layer 0 (l/layer.tar)") {
				t.Errorf("%s %s: err = %v, want an error naming the layer", name, what, err)
			}
		}
	}
	// Unsupported compressions are named when the image is opened.
	for what, b := range map[string][]byte{"bzip2": []byte("BZh91AY&SY...."), "xz": {0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}} {
		_, err := Open(context.Background(), dockerArchive(t, b, diffID), Options{})
		if err == nil || !strings.Contains(err.Error(), "layer 0 (l/layer.tar): bzip2 and xz compression are not supported") {
			t.Errorf("%s: err = %v", what, err)
		}
	}
}

// TestHostileArchiveBomb: a compressed docker archive that decompresses to
// far more than its size is refused by the ratio bound before it fills the
// temporary directory, which is left empty.
func TestHostileArchiveBomb(t *testing.T) {
	const size = 64 << 20
	// The archive holds one uncompressed layer of size zero bytes (never
	// read here, so its diff ID is never checked); only its gzip form is
	// kept.
	diffID := "sha256:" + strings.Repeat("0", 64)
	var gz bytes.Buffer
	zw := gzipBest(&gz)
	tw := tar.NewWriter(zw)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diffID + `"]}}`)
	for _, m := range []struct {
		name string
		body []byte
	}{
		{"manifest.json", []byte(`[{"Config":"config.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]`)},
		{"config.json", cfg},
	} {
		tw.WriteHeader(&tar.Header{Name: m.name, Size: int64(len(m.body)), Mode: 0o644})
		tw.Write(m.body)
	}
	tw.WriteHeader(&tar.Header{Name: "l/layer.tar", Size: size, Mode: 0o644})
	io.CopyN(tw, zeroReader{}, size)
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "bomb.tar.gz")
	if err := os.WriteFile(p, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	img, err := Open(context.Background(), p, Options{TempDir: tmp, MaxRatio: 100})
	if err == nil {
		img.Close()
	}
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "decompression ratio limit") {
		t.Errorf("archive of %d bytes decompressing to %d: err = %v", gz.Len(), size, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Within the bounds the spill is used and removed on Close.
	img, err = Open(context.Background(), p, Options{TempDir: tmp, MaxRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 1 {
		t.Errorf("temporary files while open: %v", left)
	}
	img.Close()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left after Close: %v", left)
	}
}
