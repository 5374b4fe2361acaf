// Package decompress recognises a stream's compression by its magic bytes,
// never by a file name, and returns the decompressed stream: gzip
// (klauspost's decoder), zstd (with the window a frame may ask for capped
// at MaxZstdWindow, so a hostile frame cannot demand gigabytes), bzip2, or
// the stream unchanged when it starts with none of their magics. xz is
// recognised and refused. Size and ratio bounds are the caller's.
package decompress

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names.
const (
	None  = ""
	Gzip  = "gzip"
	Zstd  = "zstd"
	Bzip2 = "bzip2"
	Xz    = "xz"
)

// HeadLen is how many leading bytes Sniff needs to tell every format.
const HeadLen = 6

// MaxZstdWindow caps the memory a zstd frame may ask for (zstd --long=27).
const MaxZstdWindow = 128 << 20

// ErrXz is returned for xz streams.
var ErrXz = errors.New("xz compression is not supported (use gzip, zstd, bzip2 or none)")

var magics = []struct {
	name  string
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{Bzip2, []byte("BZh")},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
}

// Sniff names the compression of a stream starting with head (None when
// it starts with no known magic).
func Sniff(head []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.name
		}
	}
	return None
}

// NewReader returns the decompressed stream of r and the compression's
// name. Closing the result releases the decoder, not r.
func NewReader(r io.Reader) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(HeadLen)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, None, err
	}
	switch comp := Sniff(head); comp {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, comp, fmt.Errorf("gzip: %w", err)
		}
		return zr, comp, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow))
		if err != nil {
			return nil, comp, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), comp, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), comp, nil
	case Xz:
		return nil, comp, ErrXz
	}
	return io.NopCloser(br), None, nil
}
