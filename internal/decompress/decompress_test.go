package decompress

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestNewReader(t *testing.T) {
	want := bytes.Repeat([]byte("vigil layer data "), 1000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(want)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(want, nil)
	for _, c := range []struct {
		name, comp string
		in         []byte
	}{
		{"plain", None, want},
		{"gzip", Gzip, gz.Bytes()},
		{"zstd", Zstd, zs},
		{"empty", None, nil},
	} {
		r, comp, err := NewReader(bytes.NewReader(c.in))
		if err != nil || comp != c.comp {
			t.Fatalf("%s: comp %q err %v", c.name, comp, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || (c.in != nil && !bytes.Equal(got, want)) {
			t.Errorf("%s: %d bytes, err %v", c.name, len(got), err)
		}
	}
	if _, comp, err := NewReader(bytes.NewReader([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1})); comp != Xz || !errors.Is(err, ErrXz) {
		t.Errorf("xz: comp %q err %v", comp, err)
	}
	if _, _, err := NewReader(bytes.NewReader([]byte{0x1f, 0x8b, 0})); err == nil {
		t.Error("a broken gzip header was accepted")
	}
	r, _, err := NewReader(bytes.NewReader(gz.Bytes()[:gz.Len()-3]))
	if err == nil {
		if _, err = io.ReadAll(r); err == nil {
			t.Error("a truncated gzip stream read without error")
		}
	}
	if Sniff([]byte("BZh9")) != Bzip2 || Sniff([]byte("ustar")) != None {
		t.Error("sniff")
	}
}
