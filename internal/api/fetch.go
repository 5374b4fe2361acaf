package api

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vigil-scanner/vigil/internal/decompress"
	"github.com/vigil-scanner/vigil/internal/index"
)

// FetchOptions bound layer downloads.
type FetchOptions struct {
	// Timeout bounds one download (default 10 minutes).
	Timeout time.Duration
	// MaxSize bounds a layer blob as fetched, in bytes (default 8 GiB).
	// The uncompressed tar is bounded by the indexer's layer limits.
	MaxSize int64
	// InsecureTLS skips certificate verification for layer downloads.
	InsecureTLS bool
	// MaxRatio bounds how many times its compressed size a layer may
	// expand to, once more than 64 MiB are decompressed (default 200; zero
	// runs of gzip reach about 1000, zstd far more): a decompression bomb
	// is refused with 422 after reading little of it.
	MaxRatio int64
	// AllowLocalPaths lets a layer path name a file on the server (Clair
	// v1 allowed it always; it reads any file the server can, so it is off
	// by default).
	AllowLocalPaths bool
}

// DefaultMaxRatio is FetchOptions.MaxRatio's default.
const DefaultMaxRatio = 200

// maxRedirects is the most redirects a layer download follows.
const maxRedirects = 5

// maxLayerHeaders is the most headers a client may ask a layer download to
// send (registry credentials need one or two).
const maxLayerHeaders = 32

// checkHeaders refuses more than maxLayerHeaders headers, names that are
// not HTTP tokens and values holding control characters.
func checkHeaders(h map[string][]string) error {
	if len(h) > maxLayerHeaders {
		return fmt.Errorf("%d headers, more than the %d allowed", len(h), maxLayerHeaders)
	}
	for k, vs := range h {
		if k == "" || strings.IndexFunc(k, func(c rune) bool { return c > 0x7e || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) }) >= 0 {
			return fmt.Errorf("header name %q is not a valid HTTP token", k)
		}
		for _, v := range vs {
			if strings.IndexFunc(v, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) >= 0 {
				return fmt.Errorf("header %s: value holds control characters", k)
			}
		}
	}
	return nil
}

type fetcher struct {
	opt    FetchOptions
	client *http.Client
}

func newFetcher(opt FetchOptions) *fetcher {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Minute
	}
	if opt.MaxSize <= 0 {
		opt.MaxSize = 8 << 30
	}
	if opt.MaxRatio <= 0 {
		opt.MaxRatio = DefaultMaxRatio
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opt.InsecureTLS {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // operator's explicit choice (--insecure-tls)
	}
	return &fetcher{opt: opt, client: &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return nil
		},
	}}
}

// fetchError is a failure to get a layer's bytes: Clair's 400 "could not
// find layer".
type fetchError struct{ err error }

func (e *fetchError) Error() string { return "could not find layer: " + e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// open returns the raw bytes of the layer at path: an http(s) URL fetched
// with headers, or (when allowed) a local file.
func (f *fetcher) open(ctx context.Context, path string, headers http.Header) (io.ReadCloser, error) {
	u, err := url.Parse(path)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Host == "" {
			return nil, errorf(http.StatusBadRequest, "layer path %q has no host", path)
		}
		ctx, cancel := context.WithTimeoutCause(ctx, f.opt.Timeout, fmt.Errorf("%s: %w of %s", redact(u), errFetchTimeout, f.opt.Timeout))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			cancel()
			return nil, errorf(http.StatusBadRequest, "layer path %q: %v", path, err)
		}
		for k, vs := range headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		resp, err := f.client.Do(req)
		if err != nil {
			if c := context.Cause(ctx); errors.Is(c, errFetchTimeout) {
				err = c
			}
			cancel()
			return nil, &fetchError{err}
		}
		if resp.StatusCode/100 != 2 {
			resp.Body.Close()
			cancel()
			return nil, &fetchError{fmt.Errorf("GET %s: %s", redact(u), resp.Status)}
		}
		if resp.ContentLength > f.opt.MaxSize {
			resp.Body.Close()
			cancel()
			return nil, errorf(http.StatusUnprocessableEntity, "layer at %s is %d bytes, over the %d-byte limit", redact(u), resp.ContentLength, f.opt.MaxSize)
		}
		return &boundedBody{r: resp.Body, left: f.opt.MaxSize, ctx: ctx, close: func() error { defer cancel(); return resp.Body.Close() }}, nil
	}
	if err == nil && u.Scheme != "" && u.Scheme != "file" && len(u.Scheme) > 1 {
		return nil, errorf(http.StatusBadRequest, "layer path %q: scheme %q is not supported (want http, https or, if allowed, a local path)", path, u.Scheme)
	}
	if !f.opt.AllowLocalPaths {
		return nil, errorf(http.StatusBadRequest, "layer path %q is not an http(s) URL, and local paths are not allowed on this server (api.allowlocalpaths)", path)
	}
	if err == nil && u.Scheme == "file" {
		path = u.Path
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, &fetchError{err}
	}
	return &boundedBody{r: file, left: f.opt.MaxSize, close: file.Close}, nil
}

func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.User = "", nil
	return c.String()
}

// errFetchTimeout is the cause of a download outliving
// FetchOptions.Timeout.
var errFetchTimeout = errors.New("download not finished within the fetch timeout (api.fetchtimeout)")

// boundedBody fails reads past a size limit and marks read failures as
// fetch errors, naming the fetch timeout when ctx ended by it.
type boundedBody struct {
	r     io.Reader
	left  int64
	ctx   context.Context // nil for local files
	close func() error
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errorf(http.StatusUnprocessableEntity, "layer larger than the size limit")
	}
	if err != nil && err != io.EOF {
		if b.ctx != nil && errors.Is(context.Cause(b.ctx), errFetchTimeout) {
			err = context.Cause(b.ctx)
		}
		err = &fetchError{err}
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.close() }

// ratioFloor is how many bytes a layer may decompress to before
// FetchOptions.MaxRatio applies.
const ratioFloor = 64 << 20

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ratioReader fails once the bytes read from r exceed both ratioFloor and
// ratio times the bytes read from in, the compressed stream beneath.
type ratioReader struct {
	r     io.Reader
	in    *countingReader
	out   int64
	ratio int64
}

func (b *ratioReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.out += int64(n)
	if b.out > ratioFloor && b.out/b.ratio > b.in.n {
		return n, errorf(http.StatusUnprocessableEntity, "layer expands more than %d times: %d bytes from the first %d compressed (a decompression bomb?)", b.ratio, b.out, b.in.n)
	}
	return n, err
}

// layerSource says where a layer is and how to read it.
type layerSource struct {
	uri     string
	headers http.Header
	aci     bool   // an appc image: the filesystem is under rootfs/
	digest  string // when set, the blob or its uncompressed tar must have it
}

// readLayer fetches and indexes one layer. Errors carry their status:
// 400 when it cannot be fetched, 422 when its contents are unreadable.
func (s *Server) readLayer(ctx context.Context, src layerSource) (*index.Result, error) {
	raw, err := s.fetcher.open(ctx, src.uri, src.headers)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	var rawHash, tarHash hash.Hash
	var in io.Reader = raw
	if src.digest != "" {
		rawHash, tarHash = sha256.New(), sha256.New()
		in = io.TeeReader(raw, rawHash)
	}
	compressed := &countingReader{r: in}
	// An unreadable or xz header is content vigil cannot read: 422.
	zr, _, err := decompress.NewReader(compressed)
	if err != nil {
		return nil, errorf(http.StatusUnprocessableEntity, "layer: %v", err)
	}
	defer zr.Close()
	var r io.Reader = &ratioReader{r: zr, in: compressed, ratio: s.fetcher.opt.MaxRatio}
	if tarHash != nil {
		r = io.TeeReader(r, tarHash)
	}
	if src.aci {
		pr := aciRootfs(r)
		defer pr.Close()
		r = pr
	}
	res, err := s.indexer.Read(ctx, r)
	if err == nil && src.digest != "" {
		// Read to the end of both streams to hash them whole.
		if _, err = io.Copy(io.Discard, r); err == nil {
			_, err = io.Copy(io.Discard, in)
		}
		if err == nil {
			if got := "sha256:" + hex.EncodeToString(rawHash.Sum(nil)); got != src.digest {
				if gotTar := "sha256:" + hex.EncodeToString(tarHash.Sum(nil)); gotTar != src.digest {
					err = errorf(http.StatusBadRequest, "layer %s: content has digest %s (uncompressed %s)", src.digest, got, gotTar)
				}
			}
		}
	}
	if err != nil {
		var he *httpError
		var fe *fetchError
		switch {
		case errors.As(err, &he):
			return nil, he
		case errors.As(err, &fe):
			return nil, errorf(http.StatusBadRequest, "%v", fe)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		return nil, errorf(http.StatusUnprocessableEntity, "layer unreadable: %v", err)
	}
	return res, nil
}

// aciRootfs rewrites an appc image tar into the tar of its root
// filesystem: entries under rootfs/ with that prefix removed (hard link
// targets too); the manifest and anything else are dropped.
func aciRootfs(r io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			name, ok := strings.CutPrefix(strings.TrimPrefix(h.Name, "./"), "rootfs/")
			if !ok || name == "" {
				continue
			}
			h.Name = name
			if h.Typeflag == tar.TypeLink {
				h.Linkname = strings.TrimPrefix(strings.TrimPrefix(h.Linkname, "./"), "rootfs/")
			}
			if err := tw.WriteHeader(h); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return &aciReader{pr, done}
}

// aciReader's Close stops the rewriting goroutine and waits for it, so
// the stream it reads may be closed after.
type aciReader struct {
	*io.PipeReader
	done chan struct{}
}

func (a *aciReader) Close() error {
	a.PipeReader.CloseWithError(errors.New("layer reader closed"))
	<-a.done
	return nil
}
