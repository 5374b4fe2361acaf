package image

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression of a blob, sniffed from its first bytes (media types lie).
const (
	compNone = "none"
	compGzip = "gzip"
	compZstd = "zstd"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
)

// maxZstdWindow caps the memory a zstd frame may ask for (zstd --long=27).
const maxZstdWindow = 128 << 20

// sniff peeks at br's first bytes and names their compression.
func sniff(br *bufio.Reader) (string, error) {
	head, err := br.Peek(len(magicXz))
	if err != nil && err != io.EOF {
		return "", err
	}
	return sniffBytes(head)
}

// sniffBytes names the compression of a blob starting with head.
func sniffBytes(head []byte) (string, error) {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return compGzip, nil
	case bytes.HasPrefix(head, magicZstd):
		return compZstd, nil
	case bytes.HasPrefix(head, magicBzip2), bytes.HasPrefix(head, magicXz):
		return "", errors.New("bzip2 and xz compression are not supported")
	}
	return compNone, nil
}

// decompress returns the uncompressed stream of rc, whatever its
// compression, and that compression's name. Closing the result closes rc.
func decompress(rc io.ReadCloser) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(rc, 64<<10)
	comp, err := sniff(br)
	if err != nil {
		rc.Close()
		return nil, "", err
	}
	switch comp {
	case compGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, "", fmt.Errorf("gzip: %w", err)
		}
		return newReadAhead(zr, rc.Close, func() { zr.Close() }), comp, nil
	case compZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			rc.Close()
			return nil, "", fmt.Errorf("zstd: %w", err)
		}
		return newReadAhead(zr, rc.Close, zr.Close), comp, nil
	}
	return readCloser{br, rc.Close}, comp, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// layerStream is what Layer.Open returns: the uncompressed tar, bounded in
// size and decompression ratio, and checked against the layer's diff ID
// once read to the end.
type layerStream struct {
	io.ReadCloser
	what   string // names the layer in errors
	h      hash.Hash
	want   string // expected "sha256:<hex>", or "" when unknown
	n, max int64
}

func (s *layerStream) Read(p []byte) (int, error) {
	if s.n > s.max {
		return 0, fmt.Errorf("%s: uncompressed layer exceeds %d bytes (size or decompression ratio limit)", s.what, s.max)
	}
	k, err := s.ReadCloser.Read(p)
	s.n += int64(k)
	if s.h != nil {
		s.h.Write(p[:k])
	}
	if s.n > s.max {
		return k, fmt.Errorf("%s: uncompressed layer exceeds %d bytes (size or decompression ratio limit)", s.what, s.max)
	}
	if err != nil && err != io.EOF {
		return k, fmt.Errorf("%s: %w", s.what, err)
	}
	if err == io.EOF && s.h != nil {
		if got := "sha256:" + hex.EncodeToString(s.h.Sum(nil)); got != s.want {
			return k, fmt.Errorf("%s: uncompressed content has digest %s, but the image config says %s", s.what, got, s.want)
		}
		s.h = nil
	}
	return k, err
}

// opener makes a Layer.Open from a function opening the raw blob. size is
// the blob's size (0 when unknown); diffID the expected digest of the
// uncompressed tar ("" to skip the check).
func (o *Options) opener(what string, size int64, diffID string, raw func() (io.ReadCloser, error)) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		rc, err := raw()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		ur, comp, err := decompress(rc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		s := &layerStream{ReadCloser: ur, what: what, max: o.maxLayerSize()}
		if ratio := o.maxRatio(); comp != compNone && size > 0 && ratio > 0 {
			s.max = min(s.max, size*ratio+ratioSlack)
		}
		if diffID != "" {
			s.h, s.want = sha256.New(), diffID
		}
		return s, nil
	}
}
