// Package update brings advisories into the store: it imports upstream
// documents from files or from their URLs, through the feed that reads
// them, each document atomically (see store.Import).
//
// Rules:
//   - A document may be gzip, bzip2 or zstd compressed; the compression is
//     recognised by its magic bytes, not its name, and the decompressed size
//     is bounded (Options.MaxDocumentSize).
//   - The feed is chosen by Sniff on the (decompressed) first bytes and the
//     name, among all feeds or among those whose name starts with the source
//     the user named ("debian" covers debian-tracker and debian-oval).
//   - A download must answer 200 with a non-HTML content type, and stay
//     under Options.MaxDownloadSize; anything else fails that document and
//     leaves its stored data as it was.
//   - An import that would empty a scope, or shrink it by more than
//     Options.MaxShrink, is refused (store.ErrShrunk).
//   - A feed.Checksummed feed's document is checked against its manifest
//     entry: the manifest must list it (else the document is refused), a
//     Content-Length other than the listed size is refused before reading,
//     and the size and sha256 of the bytes as sent are compared at the end
//     of the import, inside its transaction, so a mismatch stores nothing.
//   - A feed.DocumentSet URL is updated document by document (see setRun):
//     a first run verifies the whole archive against its .sha256 in a
//     temporary file (os.TempDir, bounded by MaxDownloadSize) before
//     importing any of it; later runs apply the change logs, each changed
//     document verified against its own .sha256 inside its transaction.
//     Every document is its own scope, imported atomically; one document's
//     failure is reported as its own Result and the others go on; a
//     Result with Set sums the run. Bounds: 1,048,576 archive entries or
//     change-log lines, MaxDocumentSize per document, 64 GiB decompressed
//     per archive.
package update

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vigil-scanner/vigil/internal/decompress"
	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/feed/alpine"
	"github.com/vigil-scanner/vigil/internal/feed/debian"
	"github.com/vigil-scanner/vigil/internal/feed/oracle"
	"github.com/vigil-scanner/vigil/internal/feed/redhat"
	"github.com/vigil-scanner/vigil/internal/feed/ubuntu"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/store"
)

// Feeds returns every known feed, in the order Sniff is tried.
func Feeds() []feed.Feed {
	return []feed.Feed{
		debian.NewTracker(), debian.NewOVAL(),
		ubuntu.Feed{},
		alpine.Feed{},
		redhat.OVAL{}, redhat.CSAF{},
		oracle.Feed{},
	}
}

// Options bound imports and downloads.
type Options struct {
	MaxDocumentSize int64   // decompressed bytes of one document
	MaxDownloadSize int64   // bytes of one download, as sent
	MaxShrink       float64 // see store.ImportOptions
	Client          *http.Client
}

// DefaultOptions: 4 GiB documents, 1 GiB downloads, a scope may shrink by
// at most half in one import, 10-minute HTTP timeout.
func DefaultOptions() Options {
	return Options{
		MaxDocumentSize: 4 << 30,
		MaxDownloadSize: 1 << 30,
		MaxShrink:       0.5,
		Client:          &http.Client{Timeout: 10 * time.Minute},
	}
}

// Store is what imports need of the store.
type Store interface {
	Import(ctx context.Context, meta store.Scope, opt store.ImportOptions, fill func(put func(model.Advisory) error) (string, error)) (store.Scope, error)
	Scopes(ctx context.Context) ([]store.Scope, error)
}

// ImportFile imports the document at path, read by a feed of the named
// source ("" for any).
func ImportFile(ctx context.Context, st Store, source, file string, opt Options) (store.Scope, error) {
	f, err := os.Open(file)
	if err != nil {
		return store.Scope{}, err
	}
	defer f.Close()
	sc, err := Import(ctx, st, source, file, f, opt)
	if err != nil {
		return store.Scope{}, fmt.Errorf("%s: %w", file, err)
	}
	return sc, nil
}

// Import imports one document read from r; name is its file name or URL.
func Import(ctx context.Context, st Store, source, name string, r io.Reader, opt Options) (store.Scope, error) {
	return importDoc(ctx, st, source, name, r, opt, nil)
}

// importDoc imports one document; when want is set, the document as read
// must have that sha256 and size, or the import is rolled back.
func importDoc(ctx context.Context, st Store, source, name string, r io.Reader, opt Options, want *feed.Checksum) (store.Scope, error) {
	h := sha256.New()
	var n byteCount
	raw := io.TeeReader(r, io.MultiWriter(h, &n))
	dr, comp, err := decompress.NewReader(raw)
	if err != nil {
		return store.Scope{}, err
	}
	defer dr.Close()
	var body io.Reader = dr
	if comp != decompress.None {
		body = namedReader{dr, comp}
	}
	limited := newLimitReader(body, opt.MaxDocumentSize, "document")
	br := bufio.NewReaderSize(limited, 64<<10)
	head, err := br.Peek(4096)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return store.Scope{}, fmt.Errorf("read: %w", err)
	}
	if len(bytes.TrimSpace(head)) == 0 {
		return store.Scope{}, errors.New("empty document")
	}
	f, err := pick(source, stripCompression(name), head)
	if err != nil {
		return store.Scope{}, err
	}
	meta := store.Scope{Source: f.Name(), Origin: name}
	digest := func() string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }
	return st.Import(ctx, meta, store.ImportOptions{MaxShrink: opt.MaxShrink, Digest: digest}, func(put func(model.Advisory) error) (string, error) {
		scope, err := f.Parse(ctx, name, br, func(a model.Advisory) error {
			if a.Source == "" {
				a.Source = f.Name()
			}
			return put(a)
		})
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.Name(), err)
		}
		// Read to the end so the digest covers the whole document.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return "", err
		}
		if want != nil {
			if _, err := io.Copy(io.Discard, raw); err != nil {
				return "", err
			}
			if err := verify(want, h, int64(n)); err != nil {
				return "", err
			}
		}
		return scope, nil
	})
}

// pick chooses the feed for a document.
func pick(source, name string, head []byte) (feed.Feed, error) {
	var names []string
	for _, f := range Feeds() {
		if source != "" && !strings.HasPrefix(f.Name(), source) {
			continue
		}
		names = append(names, f.Name())
		if f.Sniff(name, head) {
			return f, nil
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("unknown source %q (known: %s)", source, strings.Join(feedNames(), ", "))
	}
	return nil, fmt.Errorf("not a document of %s (unrecognised format)", strings.Join(names, " or "))
}

func feedNames() []string {
	var out []string
	for _, f := range Feeds() {
		out = append(out, f.Name())
	}
	return out
}

// stripCompression removes a compression suffix from a document name, so
// feeds sniff on the name of what they read.
func stripCompression(name string) string {
	for _, ext := range []string{".gz", ".bz2", ".zst", ".zstd"} {
		if s, ok := strings.CutSuffix(name, ext); ok {
			return s
		}
	}
	return name
}

// namedReader names the compression in its read errors.
type namedReader struct {
	r    io.Reader
	name string
}

func (n namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", n.name, err)
	}
	return k, err
}

// limitReader fails, rather than ends quietly, past its limit.
type limitReader struct {
	r     io.Reader
	left  int64
	limit int64
	what  string // "document" or "download", for the error
}

func newLimitReader(r io.Reader, limit int64, what string) *limitReader {
	return &limitReader{r: r, left: limit, limit: limit, what: what}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, l.tooLarge()
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left <= 0 && err == nil {
		// Probe for more: at the limit exactly is fine, past it is not.
		var one [1]byte
		if m, _ := l.r.Read(one[:]); m > 0 {
			return n, l.tooLarge()
		}
	}
	return n, err
}

func (l *limitReader) tooLarge() error {
	return fmt.Errorf("%s larger than the %d-byte limit", l.what, l.limit)
}

// byteCount is a writer that counts what it is given.
type byteCount int64

func (c *byteCount) Write(p []byte) (int, error) {
	*c += byteCount(len(p))
	return len(p), nil
}

// errChecksum is wrapped by every refusal of a document whose bytes differ
// from the checksum its upstream publishes.
var errChecksum = errors.New("checksum mismatch")

// verify compares what was read (digest h, n bytes) with want; a negative
// want.Size is not checked.
func verify(want *feed.Checksum, h hash.Hash, n int64) error {
	if want.Size >= 0 && n != want.Size {
		return fmt.Errorf("%w: %d bytes read, upstream says %d", errChecksum, n, want.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return fmt.Errorf("%w: sha256 %s, upstream says %s", errChecksum, got, want.SHA256)
	}
	return nil
}

// Result is the outcome of importing one URL, or one document of a
// document set.
type Result struct {
	URL   string
	Scope store.Scope
	Set   *SetCounts // for the summary of a document set; Scope is then its marker
	Err   error
}

// Update downloads and imports each URL of the given feeds (all feeds when
// sources is empty; urls overrides a feed's defaults by feed name). One
// document's failure does not stop the others; each is reported.
func Update(ctx context.Context, st Store, sources []string, urls map[string][]string, opt Options) []Result {
	var out []Result
	for _, f := range Feeds() {
		if !selected(f.Name(), sources) {
			continue
		}
		list, ok := urls[f.Name()]
		if !ok {
			list = f.URLs()
		}
		for _, u := range list {
			if ds, ok := f.(feed.DocumentSet); ok {
				if set, ok := ds.Set(u); ok {
					out = append(out, updateSet(ctx, st, f.Name(), set, opt)...)
					continue
				}
			}
			sc, err := fetchAndImport(ctx, st, f, u, opt)
			out = append(out, Result{URL: u, Scope: sc, Err: err})
		}
	}
	return out
}

func selected(name string, sources []string) bool {
	if len(sources) == 0 {
		return true
	}
	for _, s := range sources {
		if strings.HasPrefix(name, s) {
			return true
		}
	}
	return false
}

// fetchAndImport imports the document at u. A feed that publishes
// checksums has the document checked against its manifest entry.
func fetchAndImport(ctx context.Context, st Store, f feed.Feed, u string, opt Options) (store.Scope, error) {
	var want *feed.Checksum
	if cf, ok := f.(feed.Checksummed); ok {
		if m, ok := cf.Manifest(u); ok {
			sum, err := fetchChecksum(ctx, u, m, cf, opt)
			if err != nil {
				return store.Scope{}, err
			}
			want = &sum
		}
	}
	resp, body, err := get(ctx, u, opt.MaxDownloadSize, opt)
	if err != nil {
		return store.Scope{}, err
	}
	defer resp.Body.Close()
	if want != nil && resp.ContentLength >= 0 && resp.ContentLength != want.Size {
		return store.Scope{}, fmt.Errorf("%s: %w: %d bytes sent, upstream says %d", u, errChecksum, resp.ContentLength, want.Size)
	}
	sc, err := importDoc(ctx, st, f.Name(), u, body, opt, want)
	if err != nil {
		return store.Scope{}, fmt.Errorf("%s: %w", u, err)
	}
	return sc, nil
}

// maxManifestSize bounds a checksum manifest or checksum file.
const maxManifestSize = 4 << 20

// fetchChecksum reads the checksum of the document at u from manifest m.
func fetchChecksum(ctx context.Context, u, m string, cf feed.Checksummed, opt Options) (feed.Checksum, error) {
	resp, body, err := get(ctx, m, maxManifestSize, opt)
	if err != nil {
		return feed.Checksum{}, fmt.Errorf("%s: checksum manifest: %w", u, err)
	}
	defer resp.Body.Close()
	sum, err := cf.ChecksumOf(body, m, u)
	if err != nil {
		return feed.Checksum{}, fmt.Errorf("%s: checksum manifest: %w", u, err)
	}
	return sum, nil
}

// get GETs u and checks the answer before its body is read: status 200, a
// content type other than HTML, a Content-Length within max (when max >
// 0). The body returned fails past max bytes. Errors name u.
func get(ctx context.Context, u string, max int64, opt Options) (*http.Response, io.Reader, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	client := opt.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	fail := func(format string, args ...any) (*http.Response, io.Reader, error) {
		resp.Body.Close()
		return nil, nil, &httpError{status: resp.StatusCode, msg: u + ": " + fmt.Sprintf(format, args...)}
	}
	if resp.StatusCode != http.StatusOK {
		return fail("HTTP %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "text/html" {
			return fail("served an HTML page, not a feed document")
		}
	}
	if max > 0 && resp.ContentLength > max {
		return fail("%d bytes exceeds the %d-byte download limit", resp.ContentLength, max)
	}
	var body io.Reader = resp.Body
	if max > 0 {
		body = newLimitReader(resp.Body, max, "download")
	}
	return resp, body, nil
}

// httpError is a refused answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }
