package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Media types given to root filesystem layers.
const (
	mediaTypeTar     = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	mediaTypeTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// openRootfsArchive makes img a single layer: the root filesystem tarball
// f. sums holds the digests of a compressed one; a plain one is hashed here.
func openRootfsArchive(ctx context.Context, img *Image, f *os.File, p, comp string, sums *streamSums, opt Options) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if sums == nil {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(ctxReaderAt{ctx, f}, 0, st.Size())); err != nil {
			return err
		}
		d := digestOf(h.Sum(nil))
		sums = &streamSums{raw: d, uncompressed: d}
	}
	mt := map[string]string{compNone: mediaTypeTar, compGzip: mediaTypeTarGzip, compZstd: mediaTypeTarZstd}[comp]
	img.Kind = KindRootfsArchive
	img.Layers = []Layer{{
		Digest:    sums.raw,
		DiffID:    sums.uncompressed,
		MediaType: mt,
		Size:      st.Size(),
		Open: opt.opener("root filesystem archive "+p, st.Size(), sums.uncompressed, func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(f, 0, st.Size())), nil
		}),
	}}
	return nil
}

// ctxReaderAt stops reading when ctx is done.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

// openDir makes an image of one layer from the root filesystem directory
// dir. Its Open streams a tar made on the fly; symlinks are stored as links,
// never followed, and files are opened through an os.Root so that none
// outside dir is read even if the tree changes meanwhile. Device nodes,
// fifos and sockets are left out. The layer has no digests: its contents
// may change between reads, so it must not be cached.
func openDir(dir string) (*Image, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Image{
		Kind:    KindDir,
		closers: []func() error{root.Close},
		Layers: []Layer{{
			MediaType: mediaTypeTar,
			Open: func() (io.ReadCloser, error) {
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(writeDirTar(pw, root)) }()
				return pr, nil
			},
		}},
	}, nil
}

// writeDirTar writes the tree under root as a tar to w.
func writeDirTar(w io.Writer, root *os.Root) error {
	tw := tar.NewWriter(w)
	err := fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch mode := info.Mode(); {
		case mode&fs.ModeSymlink != 0:
			if link, err = root.Readlink(name); err != nil {
				return err
			}
		case mode.IsDir(), mode.IsRegular():
		default:
			return nil // devices, fifos, sockets
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Name = filepath.ToSlash(name)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(tw, root, name, hdr.Size)
	})
	return errors.Join(err, tw.Close())
}

func copyFile(w io.Writer, root *os.Root, name string, size int64) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, size); err != nil {
		return fmt.Errorf("%s: %w (did it change while being read?)", name, err)
	}
	return nil
}
