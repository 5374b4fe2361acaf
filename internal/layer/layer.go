// Package layer reads one image layer — an uncompressed tar stream — once,
// from start to end, handing the contents of wanted files to a callback and
// reporting the layer's whiteouts, opaque directories and links. It never
// holds a layer or a file in memory, and bounds every read (see Limits).
// Composing layers into a filesystem view is left to the caller; ResolveLink
// helps it follow symlinks inside that view.
package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Limits bound what Read accepts from an untrusted layer.
type Limits struct {
	// MaxFileSize is the largest wanted file handed to the callback; a
	// larger one is skipped with a warning.
	MaxFileSize int64
	// MaxEntries is the most tar entries a layer may hold (error beyond).
	MaxEntries int
	// MaxTotalSize is the most uncompressed bytes read through the tar,
	// headers and skipped contents included (error beyond).
	MaxTotalSize int64
	// MaxPathLen is the longest entry name or link target accepted; a
	// longer one is skipped with a warning.
	MaxPathLen int
	// MaxWarnings is how many warnings are kept; further ones are counted
	// in a last summary warning.
	MaxWarnings int
}

// DefaultLimits returns the limits used by scanners: 256 MiB per wanted file
// (package databases and binaries), 1<<20 entries, 32 GiB of uncompressed
// tar, 4096-byte paths (PATH_MAX) and 100 warnings.
func DefaultLimits() Limits {
	return Limits{
		MaxFileSize:  256 << 20,
		MaxEntries:   1 << 20,
		MaxTotalSize: 32 << 30,
		MaxPathLen:   4096,
		MaxWarnings:  100,
	}
}

// Changes is what a layer does to the paths a Selector cares about, beside
// the contents of wanted files.
type Changes struct {
	// Whiteouts are paths hidden from lower layers (".wh.NAME" in DIR gives
	// DIR/NAME), kept when wanted or possibly containing a wanted path. A
	// path whose entry hides lower contents without being handed over (a
	// file over a directory, a device node, an oversize file) is one too.
	Whiteouts []string
	// Opaque are directories marked with ".wh..wh..opq": everything lower
	// layers put in them is hidden. Kept when they may contain a wanted path.
	Opaque []string
	// Links maps symlinks and hard links at wanted paths, or at paths that
	// may contain one, to their targets. A symlink target is kept as written
	// in the tar; a hard link target names another member of the layer, so
	// it is normalised and made absolute ("/usr/bin/x"), which ResolveLink
	// reads as relative to the image root. An entry here means the last
	// entry of the layer for that path is a link: any contents handed to
	// the callback earlier for the same path are superseded.
	Links map[string]string
	// Warnings name each entry skipped (oversize wanted file, bad path...)
	// and why.
	Warnings []string
}

// whiteoutPrefix marks a deleted path; opaqueMarker a directory whose lower
// contents are hidden (the OCI image spec's names, inherited from AUFS).
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	blockSize      = 512 // tar block
)

// ErrLimit is wrapped by the errors Read returns when a layer exceeds Limits.
var ErrLimit = errors.New("layer exceeds limit")

// Read reads the uncompressed layer tar r once. For each regular file whose
// normalised path sel wants, it calls fn with a reader of exactly that
// file's contents; fn must not keep the reader. If a path occurs twice in
// the layer the later entry wins: fn is called again for it. An error from
// fn stops Read and is returned, wrapped with the path.
//
// Member names are normalised: leading "/" and "./" are stripped and the
// name is cleaned; names escaping the root with "..", empty names and names
// above MaxPathLen are skipped with a warning. Device nodes, fifos and
// directories are ignored. A truncated or corrupt tar is an error, and so
// is exceeding MaxEntries or MaxTotalSize (wrapping ErrLimit). Like
// archive/tar, Read accepts a stream that ends at an entry boundary without
// the end-of-archive marker; a cut anywhere else is an error. After the
// end-of-archive marker Read drains r (within MaxTotalSize), so that a
// verifying reader beneath sees the whole stream.
func Read(ctx context.Context, r io.Reader, sel Selector, lim Limits, fn func(path string, r io.Reader) error) (*Changes, error) {
	cr := &countingReader{ctx: ctx, r: r, max: lim.MaxTotalSize}
	tr := tar.NewReader(cr)
	ch := &Changes{Links: map[string]string{}}
	w := warner{max: lim.MaxWarnings}
	defer w.finish(ch)
	for n := 1; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			// archive/tar reports a stream cut inside an entry's padding as
			// a clean end; the position gives it away.
			if cr.n%blockSize != 0 {
				return ch, fmt.Errorf("layer tar truncated after %d entries (%d bytes): %w", n-1, cr.n, io.ErrUnexpectedEOF)
			}
			if _, err := io.Copy(io.Discard, cr); err != nil {
				return ch, fmt.Errorf("reading past the end of the layer tar: %w", err)
			}
			return ch, nil
		}
		if err != nil {
			return ch, fmt.Errorf("reading layer tar after %d entries: %w", n-1, err)
		}
		if n > lim.MaxEntries {
			return ch, fmt.Errorf("layer has more than %d tar entries: %w", lim.MaxEntries, ErrLimit)
		}
		name, why := normalize(hdr.Name, lim.MaxPathLen)
		if why != "" {
			w.add(ch, fmt.Sprintf("skipped tar entry %.200q: %s", hdr.Name, why))
			continue
		}
		if name == "" { // the root directory itself
			continue
		}
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		if strings.HasPrefix(base, whiteoutPrefix) {
			switch {
			case base == opaqueMarker:
				if sel.MayContain(dir) {
					ch.Opaque = append(ch.Opaque, dir)
				}
			case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
				// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not a path.
			case base == whiteoutPrefix:
				w.add(ch, fmt.Sprintf("skipped whiteout %s: no name after the prefix", name))
			default:
				hidden := path.Join(dir, base[len(whiteoutPrefix):])
				if sel.Want(hidden) || sel.MayContain(hidden) {
					ch.Whiteouts = append(ch.Whiteouts, hidden)
				}
			}
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeGNUSparse:
			if !sel.Want(name) {
				replace(ch, sel, name)
				continue
			}
			delete(ch.Links, name)
			if hdr.Size > lim.MaxFileSize {
				w.add(ch, fmt.Sprintf("skipped %s: size %d exceeds the limit of %d bytes", name, hdr.Size, lim.MaxFileSize))
				replace(ch, sel, name)
				continue
			}
			if err := fn(name, io.LimitReader(tr, hdr.Size)); err != nil {
				return ch, fmt.Errorf("%s: %w", name, err)
			}
		case tar.TypeSymlink, tar.TypeLink:
			if !sel.Want(name) && !sel.MayContain(name) {
				continue
			}
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeLink {
				t, why := normalize(target, lim.MaxPathLen)
				if why != "" || t == "" {
					w.add(ch, fmt.Sprintf("skipped hard link %s to %.200q: bad target %s", name, target, why))
					continue
				}
				target = "/" + t
			}
			if target == "" || len(target) > lim.MaxPathLen {
				w.add(ch, fmt.Sprintf("skipped link %s: target empty or longer than %d bytes", name, lim.MaxPathLen))
				continue
			}
			ch.Links[name] = target
		case tar.TypeDir:
			// A directory replacing a link at the same path.
			delete(ch.Links, name)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			replace(ch, sel, name)
		}
	}
}

// replace records that a non-directory entry not handed over hides
// whatever lower layers had at and below name.
func replace(ch *Changes, sel Selector, name string) {
	if sel.Want(name) || sel.MayContain(name) {
		delete(ch.Links, name)
		ch.Whiteouts = append(ch.Whiteouts, name)
	}
}

// normalize turns a tar member name into a clean root-relative path, or
// says why it cannot.
func normalize(name string, maxLen int) (string, string) {
	if len(name) > maxLen {
		return "", fmt.Sprintf("name longer than %d bytes", maxLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", "name holds a NUL byte"
	}
	rel := path.Clean(strings.TrimLeft(name, "/"))
	switch {
	case rel == ".." || strings.HasPrefix(rel, "../"):
		return "", "name escapes the root"
	case rel == ".":
		return "", ""
	}
	return rel, ""
}

// countingReader bounds and counts the bytes read from a layer stream and
// stops when ctx is done.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.n >= c.max {
		// Probe for one more byte: a stream of exactly max bytes is fine.
		var one [1]byte
		if k, _ := io.ReadFull(c.r, one[:]); k == 0 {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("layer is larger than %d bytes: %w", c.max, ErrLimit)
	}
	if rem := c.max - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// warner caps the warnings kept in a Changes.
type warner struct {
	max, dropped int
}

func (w *warner) add(ch *Changes, msg string) {
	if len(ch.Warnings) < w.max {
		ch.Warnings = append(ch.Warnings, msg)
		return
	}
	w.dropped++
}

func (w *warner) finish(ch *Changes) {
	if w.dropped > 0 {
		ch.Warnings = append(ch.Warnings, fmt.Sprintf("%d more warnings dropped", w.dropped))
	}
}
