package image

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/vigil-scanner/vigil/internal/decompress"
)

// Compression of a blob, sniffed from its first bytes (media types lie).
// Layers may be gzip, zstd or plain tar.
const (
	compNone = "none"
	compGzip = decompress.Gzip
	compZstd = decompress.Zstd
)

// sniffHead is how many leading bytes sniffBytes needs.
const sniffHead = decompress.HeadLen

// errUnsupportedCompression refuses the compressions layers may not use.
var errUnsupportedCompression = errors.New("bzip2 and xz compression are not supported")

// sniffBytes names the compression of a blob starting with head.
func sniffBytes(head []byte) (string, error) {
	switch comp := decompress.Sniff(head); comp {
	case compGzip, compZstd:
		return comp, nil
	case decompress.Bzip2, decompress.Xz:
		return "", errUnsupportedCompression
	}
	return compNone, nil
}

// openBlob returns the uncompressed stream of rc, whatever its
// compression, and that compression's name. Closing the result closes rc.
// A compressed stream is decompressed a few buffers ahead, in its own
// goroutine (see readAhead).
func openBlob(rc io.ReadCloser) (io.ReadCloser, string, error) {
	dr, comp, err := decompress.NewReader(rc)
	if err == nil && comp == decompress.Bzip2 {
		dr.Close()
		err = errUnsupportedCompression
	}
	if errors.Is(err, decompress.ErrXz) {
		err = errUnsupportedCompression
	}
	if err != nil {
		rc.Close()
		return nil, "", err
	}
	if comp == decompress.None {
		return readCloser{dr, rc.Close}, compNone, nil
	}
	return newReadAhead(dr, rc.Close, func() { dr.Close() }), comp, nil
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
		ur, comp, err := openBlob(rc)
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
