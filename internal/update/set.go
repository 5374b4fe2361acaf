package update

import (
	"archive/tar"
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-scanner/vigil/internal/decompress"
	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/store"
)

// Bounds of a document set (feed.Set).
const (
	maxSetEntries  = 1 << 20  // archive entries; change-log lines
	maxArchiveSize = 64 << 30 // decompressed bytes of an archive
	maxSmallFile   = 4 << 10  // the latest-archive file; a .sha256 file
)

// SetCounts sums the update of a document set.
type SetCounts struct {
	Imported  int // documents imported
	Unchanged int // documents whose stored digest is the upstream's: not read
	Withdrawn int // documents withdrawn upstream, their scope emptied
	Failed    int // documents refused, each with its own Result
}

// setRun is one update of a document set. The rules (see feed.Set for the
// layout):
//   - Without its marker scope (a first run), the latest archive is
//     downloaded into a temporary file, bounded by MaxDownloadSize, while
//     its sha256 is computed and its tar structure walked (entries, sizes,
//     duplicate names, each document's sha256). Only once the archive has
//     matched its .sha256 and read whole without error is any document
//     imported, so a wrong, truncated or corrupt archive changes nothing.
//     Then each document (member) is imported, each in its own transaction
//     under its own scope, unless the stored digest of its scope is already
//     the member's. The change logs are then applied from the archive's
//     date (the earlier of its Last-Modified and the date in its name).
//   - With the marker, only the change logs are read, from the time the
//     marker records less the set's Lag.
//   - A changed document is skipped when its .sha256 is its scope's stored
//     digest, else downloaded and imported in one transaction that is
//     rolled back unless its bytes match that sha256. A document withdrawn
//     in the deletions log empties its scope (store.ImportOptions.Withdraw).
//   - A document the parser or the store refuses is reported (a Result with
//     its error, naming it) and keeps its previous data; the others go on,
//     and it is not read again until it changes upstream. A download that
//     fails (except 404 or 410) or disagrees with its checksum is reported
//     too, and the marker is then left where it was, so the next run reads
//     it again.
//   - The marker is written last: Origin the change log's URL with the
//     newest change time as its fragment, Digest the change log's sha256.
type setRun struct {
	ctx     context.Context
	st      Store
	source  string
	set     feed.Set
	opt     Options
	digests map[string]string // stored digest of each scope of the source
	counts  SetCounts
	results []Result // failures
	retry   bool     // a failure to try again: the marker stays
}

func updateSet(ctx context.Context, st Store, source string, set feed.Set, opt Options) []Result {
	r := &setRun{ctx: ctx, st: st, source: source, set: set, opt: opt, digests: map[string]string{}}
	sc, err := r.run()
	return append(r.results, Result{URL: set.Base, Scope: sc, Set: &r.counts, Err: err})
}

func (r *setRun) run() (store.Scope, error) {
	stored, err := r.st.Scopes(r.ctx)
	if err != nil {
		return store.Scope{}, err
	}
	var since time.Time
	for _, sc := range stored {
		if sc.Source != r.source {
			continue
		}
		r.digests[sc.Scope] = sc.Digest
		if sc.Scope == r.set.Marker {
			since, _ = markerTime(sc.Origin)
		}
	}
	if since.IsZero() {
		if since, err = r.importArchive(); err != nil {
			return store.Scope{}, err
		}
	}
	newest, digest, err := r.applyLogs(since)
	if err != nil {
		return store.Scope{}, err
	}
	if r.retry {
		return store.Scope{}, nil
	}
	if newest.Before(since) {
		newest = since
	}
	origin := r.set.Base + r.set.Changes + "#" + newest.UTC().Format(time.RFC3339)
	return r.st.Import(r.ctx, store.Scope{Source: r.source, Origin: origin, Digest: digest}, store.ImportOptions{},
		func(func(model.Advisory) error) (string, error) { return r.set.Marker, nil })
}

// markerTime reads the time a marker's origin records.
func markerTime(origin string) (time.Time, bool) {
	i := strings.LastIndexByte(origin, '#')
	if i < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, origin[i+1:])
	return t, err == nil
}

var archiveDate = regexp.MustCompile(`\d{4}-\d{2}-\d{2}`)

// importArchive imports the latest archive and returns its date.
func (r *setRun) importArchive() (time.Time, error) {
	latest := r.set.Base + r.set.Latest
	b, err := r.small(latest)
	if err != nil {
		return time.Time{}, err
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, "/\\?#% \t\r\n") || name == "." || name == ".." {
		return time.Time{}, fmt.Errorf("%s: %q is not an archive name", latest, name)
	}
	u := r.set.Base + name
	want, err := r.checksum(u)
	if err != nil {
		return time.Time{}, err
	}
	resp, body, err := get(r.ctx, u, r.opt.MaxDownloadSize, r.opt)
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	asOf, err := archiveTime(resp.Header.Get("Last-Modified"), name)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", u, err)
	}
	tmp, err := os.CreateTemp("", "vigil-archive-*")
	if err != nil {
		return time.Time{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	sums, err := r.scanArchive(io.TeeReader(body, io.MultiWriter(tmp, h)))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w; nothing imported", u, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return time.Time{}, fmt.Errorf("%s: %w: sha256 %s, %s.sha256 says %s; nothing imported", u, errChecksum, got, u, want)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return time.Time{}, err
	}
	dr, _, err := decompress.NewReader(bufio.NewReaderSize(tmp, 1<<20))
	if err != nil {
		return time.Time{}, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return asOf, nil
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: reading it again: %w", u, err)
		}
		if sum, ok := sums[hdr.Name]; ok && hdr.Typeflag == tar.TypeReg {
			if err := r.document(hdr.Name, u+"#"+hdr.Name, tr, feed.Checksum{SHA256: sum, Size: hdr.Size}); err != nil {
				return time.Time{}, err
			}
		}
	}
}

// archiveTime is the earlier of an archive's Last-Modified and the date in
// its name.
func archiveTime(lastModified, name string) (time.Time, error) {
	var t time.Time
	if lm, err := http.ParseTime(lastModified); err == nil {
		t = lm
	}
	if d, err := time.Parse(time.DateOnly, archiveDate.FindString(name)); err == nil && (t.IsZero() || d.Before(t)) {
		t = d
	}
	if t.IsZero() {
		return t, errors.New("no Last-Modified and no date in the archive's name: cannot tell which changes it holds")
	}
	return t, nil
}

// scanArchive reads a whole archive (a tar, compressed or not) within the
// bounds and returns the sha256 of each document in it, by member name.
func (r *setRun) scanArchive(in io.Reader) (map[string]string, error) {
	dr, _, err := decompress.NewReader(in)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	lr := newLimitReader(dr, maxArchiveSize, "decompressed archive")
	tr := tar.NewReader(lr)
	sums := map[string]string{}
	last := "the start"
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("after member %s: %w", last, err)
		}
		last = hdr.Name
		switch {
		case n >= maxSetEntries:
			return nil, fmt.Errorf("more than %d members", maxSetEntries)
		case hdr.Typeflag != tar.TypeReg || r.set.Scope(hdr.Name) == "":
			continue // directories, other files
		case r.opt.MaxDocumentSize > 0 && hdr.Size > r.opt.MaxDocumentSize:
			return nil, fmt.Errorf("member %s: %d bytes exceeds the %d-byte document limit", hdr.Name, hdr.Size, r.opt.MaxDocumentSize)
		}
		if _, dup := sums[hdr.Name]; dup {
			return nil, fmt.Errorf("member %s appears twice", hdr.Name)
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			return nil, fmt.Errorf("member %s: %w", hdr.Name, err)
		}
		sums[hdr.Name] = hex.EncodeToString(h.Sum(nil))
	}
	// The end-of-archive padding and anything after it: the download's
	// checksum must cover every byte.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return nil, fmt.Errorf("after the last member: %w", err)
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return nil, err
	}
	return sums, nil
}

// document imports one document of the set, read from body, unless its
// scope already holds it. It returns only errors that stop the run.
func (r *setRun) document(p, origin string, body io.Reader, want feed.Checksum) error {
	scope := r.set.Scope(p)
	if r.digests[scope] == "sha256:"+want.SHA256 {
		r.counts.Unchanged++
		return nil
	}
	sc, err := importDoc(r.ctx, r.st, r.source, origin, body, r.opt, &want)
	if err != nil {
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		r.fail(origin, err, errors.Is(err, errChecksum) || errors.As(err, new(*readError)))
		return nil
	}
	r.digests[sc.Scope] = sc.Digest
	r.counts.Imported++
	return nil
}

// fail reports one document's failure.
func (r *setRun) fail(origin string, err error, retry bool) {
	if !strings.Contains(err.Error(), origin) {
		err = fmt.Errorf("%s: %w", origin, err)
	}
	r.results = append(r.results, Result{URL: origin, Err: err})
	r.counts.Failed++
	r.retry = r.retry || retry
}

// applyLogs applies the change logs' entries newer than since less the
// set's Lag. It returns the newest time in the change logs and the digest
// of the changes log.
func (r *setRun) applyLogs(since time.Time) (time.Time, string, error) {
	from := since.Add(-r.set.Lag)
	changes, digest, err := r.readLog(r.set.Changes)
	if err != nil {
		return time.Time{}, "", err
	}
	deletions, _, err := r.readLog(r.set.Deletions)
	if err != nil {
		return time.Time{}, "", err
	}
	type event struct {
		at      time.Time
		deleted bool
	}
	due := map[string]event{}
	var newest time.Time
	for i, log := range [][]logEntry{changes, deletions} {
		for _, e := range log {
			if e.At.After(newest) {
				newest = e.At
			}
			if e.At.After(from) && r.set.Scope(e.Path) != "" && !due[e.Path].at.After(e.At) {
				due[e.Path] = event{e.At, i == 1}
			}
		}
	}
	paths := make([]string, 0, len(due))
	for p := range due {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, func(a, b string) int {
		return cmp.Or(due[a].at.Compare(due[b].at), strings.Compare(a, b))
	})
	for _, p := range paths {
		if err := r.ctx.Err(); err != nil {
			return time.Time{}, "", err
		}
		if due[p].deleted {
			r.withdraw(p)
		} else if err := r.change(p); err != nil {
			return time.Time{}, "", err
		}
	}
	return newest, digest, nil
}

// change brings in the changed document at path p.
func (r *setRun) change(p string) error {
	u := r.set.Base + p
	sum, err := r.checksum(u)
	if err != nil {
		r.fail(u, err, retryable(err))
		return nil
	}
	if r.digests[r.set.Scope(p)] == "sha256:"+sum {
		r.counts.Unchanged++
		return nil
	}
	resp, body, err := get(r.ctx, u, r.opt.MaxDownloadSize, r.opt)
	if err != nil {
		r.fail(u, err, retryable(err))
		return nil
	}
	defer resp.Body.Close()
	return r.document(p, u, readErrors{body}, feed.Checksum{SHA256: sum, Size: -1})
}

// withdraw empties the scope of the withdrawn document at path p, if it
// was imported.
func (r *setRun) withdraw(p string) {
	scope := r.set.Scope(p)
	if _, ok := r.digests[scope]; !ok {
		return
	}
	origin := r.set.Base + r.set.Deletions
	_, err := r.st.Import(r.ctx, store.Scope{Source: r.source, Origin: origin}, store.ImportOptions{Withdraw: true},
		func(func(model.Advisory) error) (string, error) { return scope, nil })
	if err != nil {
		r.fail(r.set.Base+p, fmt.Errorf("withdrawn upstream (%s): %w", origin, err), false)
		return
	}
	r.counts.Withdrawn++
}

// retryable tells a download failure worth trying again from a document
// that is gone.
func retryable(err error) bool {
	var he *httpError
	return !errors.As(err, &he) || (he.status != http.StatusNotFound && he.status != http.StatusGone)
}

// readError is a failure to read a download's body.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readErrors marks its reader's failures as readErrors.
type readErrors struct{ r io.Reader }

func (w readErrors) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// small downloads a small file of the set whole.
func (r *setRun) small(u string) ([]byte, error) {
	resp, body, err := get(r.ctx, u, maxSmallFile, r.opt)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return b, nil
}

// checksum returns the sha256 that u.sha256 gives u.
func (r *setRun) checksum(u string) (string, error) {
	b, err := r.small(u + ".sha256")
	if err != nil {
		return "", err
	}
	sum, err := parseSHA256File(b, path.Base(u))
	if err != nil {
		return "", fmt.Errorf("%s.sha256: %w", u, err)
	}
	return sum, nil
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// parseSHA256File reads a sha256sum line, "<hex>  <name>" (the name maybe
// marked "*" for binary) or "<hex>" alone; a name must be name's base.
func parseSHA256File(b []byte, name string) (string, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f) > 2 {
		return "", errors.New(`want "<sha256>  <name>" or "<sha256>"`)
	}
	sum := strings.ToLower(f[0])
	if !hexSHA256.MatchString(sum) {
		return "", fmt.Errorf("%.80q is not a sha256", f[0])
	}
	if len(f) == 2 && path.Base(strings.TrimPrefix(f[1], "*")) != path.Base(name) {
		return "", fmt.Errorf("it is the checksum of %.200q, not of %s", f[1], name)
	}
	return sum, nil
}

// logEntry is one line of a change log.
type logEntry struct {
	Path string
	At   time.Time
}

// readLog downloads and parses one change log of the set, and returns its
// digest.
func (r *setRun) readLog(name string) ([]logEntry, string, error) {
	u := r.set.Base + name
	resp, body, err := get(r.ctx, u, r.opt.MaxDownloadSize, r.opt)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	log, err := parseLog(io.TeeReader(body, h))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", u, err)
	}
	return log, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// parseLog reads a change log: "path","RFC 3339 time" lines. A path must
// be relative and clean (it is resolved against the set's base).
func parseLog(in io.Reader) ([]logEntry, error) {
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = 2
	cr.ReuseRecord = true
	var out []logEntry
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(out) >= maxSetEntries {
			return nil, fmt.Errorf("more than %d lines", maxSetEntries)
		}
		p := rec[0]
		if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || p == ".." ||
			strings.ContainsAny(p, "\\?#%:") || strings.ContainsFunc(p, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return nil, fmt.Errorf("line %d: bad path %.200q", line, p)
		}
		at, err := time.Parse(time.RFC3339, rec[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", line, p, err)
		}
		out = append(out, logEntry{Path: p, At: at})
	}
}
