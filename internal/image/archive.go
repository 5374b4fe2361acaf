package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vigil-scanner/vigil/internal/layer"
)

// store reads named files of an archive or a layout directory.
type store interface {
	// open returns the regular file at the slash-separated name and its size.
	open(name string) (io.ReadCloser, int64, error)
}

// readMeta reads a small metadata file in full, refusing one above
// maxMetaSize.
func readMeta(s store, name string) ([]byte, error) {
	rc, size, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxMetaSize {
		return nil, fmt.Errorf("%s: %d bytes, above the %d-byte limit for metadata", name, size, maxMetaSize)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > maxMetaSize {
		return nil, fmt.Errorf("%s: above the %d-byte limit for metadata", name, maxMetaSize)
	}
	return b, nil
}

// tarEntry locates a member of an indexed tar file.
type tarEntry struct {
	typ       byte
	off, size int64
	link      string
}

// tarIndex is a plain tar file indexed by member name, read in place.
type tarIndex struct {
	f       *os.File
	entries map[string]tarEntry
}

// posReader tracks the offset of an os.File as archive/tar reads and seeks
// it, so that each member's data offset is known.
type posReader struct {
	f   *os.File
	pos int64
}

func (p *posReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	p.pos += int64(n)
	return n, err
}

func (p *posReader) Seek(off int64, whence int) (int64, error) {
	n, err := p.f.Seek(off, whence)
	p.pos = n
	return n, err
}

// indexTar reads the headers of the plain tar f, skipping member data.
func indexTar(ctx context.Context, f *os.File) (*tarIndex, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	pr := &posReader{f: f}
	tr := tar.NewReader(pr)
	idx := &tarIndex{f: f, entries: map[string]tarEntry{}}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return idx, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		if len(idx.entries) >= maxArchiveLen {
			return nil, fmt.Errorf("tar has more than %d entries", maxArchiveLen)
		}
		e := tarEntry{typ: hdr.Typeflag, off: pr.pos, size: hdr.Size, link: hdr.Linkname}
		if isSparse(hdr) {
			e.typ = tar.TypeGNUSparse // data not stored contiguously: unusable in place
		}
		idx.entries[memberName(hdr.Name)] = e
	}
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// memberName normalises a tar member name to a root-relative path. The
// archive is read in place, never extracted, so ".." merely clamps.
func memberName(name string) string {
	return path.Clean("/" + name)[1:]
}

func (t *tarIndex) has(name string) bool {
	e, ok := t.entries[name]
	return ok && e.typ == tar.TypeReg
}

func (t *tarIndex) open(name string) (io.ReadCloser, int64, error) {
	resolved, err := layer.ResolveLink(memberName(name), func(p string) (string, bool) {
		e, ok := t.entries[p]
		switch {
		case !ok:
			return "", false
		case e.typ == tar.TypeSymlink:
			return e.link, true
		case e.typ == tar.TypeLink:
			return "/" + memberName(e.link), true
		}
		return "", false
	})
	if err != nil {
		return nil, 0, err
	}
	e, ok := t.entries[resolved]
	switch {
	case !ok:
		return nil, 0, fmt.Errorf("%s: %w in the archive", name, fs.ErrNotExist)
	case e.typ != tar.TypeReg:
		return nil, 0, fmt.Errorf("%s: not a regular file in the archive", name)
	}
	return io.NopCloser(io.NewSectionReader(t.f, e.off, e.size)), e.size, nil
}

// archiveKind says what an archive holding the top-level members that has
// reports holds.
func archiveKind(has func(string) bool) string {
	switch {
	case has("oci-layout") && has("index.json"):
		// Docker ≥25 archives are OCI layouts too; reading them as such
		// gives the manifest digest.
		return KindOCIArchive
	case has("manifest.json"):
		return KindDockerArchive
	}
	return KindRootfsArchive
}

// openArchive opens a tar file, plain or compressed, of the given kind (""
// to detect it).
func openArchive(ctx context.Context, p, kind, tag string, opt Options) (*Image, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	img := &Image{closers: []func() error{f.Close}}
	ok := false
	defer func() {
		if !ok {
			img.Close()
		}
	}()
	head := make([]byte, sniffHead)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	comp, err := sniffBytes(head[:n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var idx *tarIndex
	var sums *streamSums
	auto := kind == ""
	if comp == compNone {
		if idx, err = indexTar(ctx, f); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if kind == "" {
			kind = archiveKind(idx.has)
		}
	} else {
		// One pass to learn what the compressed tar holds (and its digests,
		// in case it is a root filesystem).
		top, s, err := scanCompressed(ctx, f, opt.ratioBound(f))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		sums = s
		if kind == "" {
			kind = archiveKind(func(n string) bool { return top[n] })
		}
		if kind != KindRootfsArchive {
			if idx, err = spill(ctx, f, img, opt); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	switch kind {
	case KindDockerArchive:
		err = openDocker(img, idx, tag, opt)
	case KindOCIArchive:
		img.Kind = KindOCIArchive
		err = openOCI(img, idx, tag, opt)
		if errors.Is(err, errNoImages) && auto && idx.has("manifest.json") {
			// Early Docker 25 archives leave index.json empty.
			err = openDocker(img, idx, tag, opt)
		}
	case KindRootfsArchive:
		err = openRootfsArchive(ctx, img, f, p, comp, sums, opt)
	default:
		err = fmt.Errorf("a file cannot be a %s input", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	ok = true
	return img, nil
}

// streamSums are the digests of a compressed file and of its contents.
type streamSums struct {
	raw, uncompressed string
}

// scanCompressed reads the compressed tar f once, noting its top-level
// regular members and the digests of both forms; it fails past max
// uncompressed bytes.
func scanCompressed(ctx context.Context, f *os.File, max int64) (map[string]bool, *streamSums, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	rawHash := sha256.New()
	zr, _, err := openBlob(io.NopCloser(io.TeeReader(f, rawHash)))
	if err != nil {
		return nil, nil, err
	}
	defer zr.Close()
	uHash := sha256.New()
	ur := io.TeeReader(&boundReader{r: zr, max: max, what: "decompressed archive"}, uHash)
	tr := tar.NewReader(ur)
	top := map[string]bool{}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading tar: %w", err)
		}
		if n >= maxArchiveLen {
			return nil, nil, fmt.Errorf("tar has more than %d entries", maxArchiveLen)
		}
		if name := memberName(hdr.Name); hdr.Typeflag == tar.TypeReg && !strings.Contains(name, "/") {
			top[name] = true
		}
	}
	// Hash what follows the end-of-archive marker, as a layer digest would.
	if _, err := io.Copy(io.Discard, ur); err != nil {
		return nil, nil, err
	}
	if _, err := io.Copy(rawHash, f); err != nil {
		return nil, nil, err
	}
	return top, &streamSums{raw: digestOf(rawHash.Sum(nil)), uncompressed: digestOf(uHash.Sum(nil))}, nil
}

func digestOf(sum []byte) string { return "sha256:" + hex.EncodeToString(sum) }

// spill decompresses the archive f into a temporary file, removed when img
// closes, and indexes it.
func spill(ctx context.Context, f *os.File, img *Image, opt Options) (*tarIndex, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, _, err := openBlob(io.NopCloser(f))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(opt.TempDir, "vigil-archive-*.tar")
	if err != nil {
		return nil, err
	}
	img.closers = append(img.closers, func() error {
		return errors.Join(tmp.Close(), os.Remove(tmp.Name()))
	})
	max := opt.maxSpill()
	n, err := io.Copy(tmp, io.LimitReader(ctxReader{ctx, &boundReader{r: zr, max: opt.ratioBound(f), what: "decompressed archive"}}, max+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing to %s: %w", filepath.Dir(tmp.Name()), err)
	}
	if n > max {
		return nil, fmt.Errorf("decompressed archive exceeds %d bytes (Options.MaxSpill)", max)
	}
	return indexTar(ctx, tmp)
}

// ratioBound is the most bytes the compressed file f may decompress to
// under Options.MaxRatio (no bound when the ratio is disabled).
func (o *Options) ratioBound(f *os.File) int64 {
	st, err := f.Stat()
	if ratio := o.maxRatio(); err == nil && ratio > 0 && st.Size() < (1<<62)/ratio {
		return st.Size()*ratio + ratioSlack
	}
	return 1<<63 - 1
}

// boundReader fails once more than max bytes are read through it.
type boundReader struct {
	r      io.Reader
	n, max int64
	what   string
}

func (b *boundReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.n += int64(n); b.n > b.max {
		return n, fmt.Errorf("%s exceeds %d bytes (decompression ratio limit, Options.MaxRatio)", b.what, b.max)
	}
	return n, err
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
