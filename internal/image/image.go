// Package image opens a container image, whatever form it comes in, as an
// ordered list of layers whose uncompressed tar streams are opened lazily.
// Nothing is held in memory beyond small, bounded metadata (manifests,
// configs, indexes); layers are streamed from where they are.
//
// Inputs, detected from the argument or forced by a prefix:
//
//   - "docker-archive:PATH": a docker-save tarball — the legacy layout
//     (manifest.json + <id>/layer.tar), crane's (compressed blobs) or Docker
//     ≥25's hybrid one; plain or gzip/zstd-compressed.
//   - "oci-dir:PATH": an OCI image layout directory.
//   - "oci-archive:PATH": a tar (plain or compressed) of an OCI image layout.
//   - "dir:PATH": a root filesystem directory, or a plain directory that is
//     not an OCI layout.
//   - "rootfs-archive:PATH": a root filesystem tarball (alpine-minirootfs),
//     or any tar that is neither a docker nor an OCI archive.
//   - "registry:REF": an image in a registry ("host/repo:tag", "@sha256:…").
//     An argument that is no existing file and does not look like a path is
//     taken as a registry reference.
//
// A local path may end in ":TAG" to choose one image of an archive or
// layout holding several (matched against manifest.json's RepoTags or the
// index's org.opencontainers.image.ref.name / io.containerd.image.name).
//
// Plain tar archives are indexed once (headers only) and read in place. A
// compressed archive is read once to tell what it holds; a compressed
// docker or OCI archive is then decompressed once into a temporary file
// (bounded by Options.MaxSpill), removed by Image.Close.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Input kinds, also the prefixes that force them.
const (
	KindDockerArchive = "docker-archive"
	KindOCIDir        = "oci-dir"
	KindOCIArchive    = "oci-archive"
	KindDir           = "dir"
	KindRootfsArchive = "rootfs-archive"
	KindRegistry      = "registry"
)

// Defaults for Options.
const (
	DefaultPlatform     = "linux/amd64"
	DefaultMaxLayerSize = 32 << 30
	DefaultMaxRatio     = 1000
	DefaultMaxSpill     = 32 << 30
)

// Bounds on metadata read from untrusted inputs.
const (
	maxMetaSize   = 8 << 20 // manifest.json, index.json, manifests, configs
	maxArchiveLen = 1 << 20 // tar entries of an archive
	maxIndexDepth = 4       // nested OCI indexes
	maxCandidates = 1024    // image manifests found in an index
	ratioSlack    = 1 << 20 // bytes allowed beyond MaxRatio × compressed size
)

// Layer is one layer of an image, bottom first.
type Layer struct {
	// Digest is the blob's digest as the image names it (compressed form);
	// "" when unknown.
	Digest string
	// DiffID is the digest of the uncompressed tar, from the config's
	// rootfs.diff_ids; the stream Open returns is checked against it when
	// read to the end. "" for a directory input, which is not cacheable.
	DiffID    string
	MediaType string
	// Size is the blob's size in bytes (0 when unknown).
	Size int64
	// CreatedBy is the history's created_by for this layer, if any.
	CreatedBy string
	// Open returns the uncompressed tar stream (gzip, zstd or plain blobs
	// alike). Each call starts a new stream; the caller closes it.
	Open func() (io.ReadCloser, error)
}

// Image is an opened image input. Close releases its files.
type Image struct {
	Ref  string // the argument given to Open
	Kind string // one of the Kind constants
	// ID is the config digest; "" for root filesystem inputs.
	ID string
	// ManifestDigest is the manifest's digest for OCI and registry inputs;
	// "" for docker archives (which hold no manifest) and root filesystems.
	ManifestDigest string
	// Config is the image configuration (platform, history...); nil for
	// root filesystem inputs.
	Config *v1.ConfigFile
	Layers []Layer

	closers []func() error
}

// Close releases the files and temporary data the image holds.
func (img *Image) Close() error {
	var errs []error
	for i := len(img.closers) - 1; i >= 0; i-- {
		errs = append(errs, img.closers[i]())
	}
	img.closers = nil
	return errors.Join(errs...)
}

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Platform chooses among the images of an index, as "os/arch[/variant]".
	// Empty means DefaultPlatform, preferred but not required when an input
	// holds a single image; a Platform given explicitly must match.
	Platform string
	// Insecure allows plain HTTP and unverified TLS for registries.
	Insecure bool
	// Keychain gives registry credentials; nil means authn.DefaultKeychain
	// (the Docker config, $DOCKER_CONFIG/config.json or ~/.docker).
	Keychain authn.Keychain
	// TempDir holds temporary files ("" for os.TempDir).
	TempDir string
	// MaxLayerSize bounds each uncompressed layer (0 for the default).
	MaxLayerSize int64
	// MaxRatio bounds uncompressed/compressed size of a layer (0 for the
	// default, negative to disable).
	MaxRatio int64
	// MaxSpill bounds the temporary copy of a compressed archive (0 for
	// the default).
	MaxSpill int64
}

func (o *Options) maxLayerSize() int64 { return orDefault(o.MaxLayerSize, DefaultMaxLayerSize) }
func (o *Options) maxRatio() int64     { return orDefault(o.MaxRatio, DefaultMaxRatio) }
func (o *Options) maxSpill() int64     { return orDefault(o.MaxSpill, DefaultMaxSpill) }

func orDefault(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// platform parses Options.Platform and says whether it was given.
func (o *Options) platform() (*v1.Platform, bool, error) {
	s, explicit := o.Platform, o.Platform != ""
	if !explicit {
		s = DefaultPlatform
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return nil, false, fmt.Errorf("platform %q: %w", s, err)
	}
	return p, explicit, nil
}

// Open opens the image named by ref (see the package documentation for the
// forms it takes). For registry images ctx also bounds later layer reads.
func Open(ctx context.Context, ref string, opt Options) (*Image, error) {
	kind, arg := splitKind(ref)
	img, err := open(ctx, kind, arg, opt)
	if err != nil {
		return nil, fmt.Errorf("opening image %s: %w", ref, err)
	}
	img.Ref = ref
	return img, nil
}

func splitKind(ref string) (kind, arg string) {
	for _, k := range []string{KindDockerArchive, KindOCIDir, KindOCIArchive, KindDir, KindRootfsArchive, KindRegistry} {
		if rest, ok := strings.CutPrefix(ref, k+":"); ok {
			return k, rest
		}
	}
	return "", ref
}

func open(ctx context.Context, kind, arg string, opt Options) (*Image, error) {
	if kind == KindRegistry {
		return openRemote(ctx, arg, opt)
	}
	p, tag, st, err := localPath(arg)
	if err != nil {
		if kind == "" && !looksLikePath(arg) {
			img, rerr := openRemote(ctx, arg, opt)
			if rerr != nil {
				return nil, fmt.Errorf("no such file, and as a registry reference: %w", rerr)
			}
			return img, nil
		}
		return nil, err
	}
	if st.IsDir() {
		switch kind {
		case "":
			if isOCILayout(p) {
				return openOCIDir(p, tag, opt)
			}
			return openDir(p)
		case KindOCIDir:
			return openOCIDir(p, tag, opt)
		case KindDir:
			return openDir(p)
		}
		return nil, fmt.Errorf("%s is a directory, not a %s", p, kind)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file or directory", p)
	}
	if kind == KindOCIDir || kind == KindDir {
		return nil, fmt.Errorf("%s is a file, not a directory (%s)", p, kind)
	}
	return openArchive(ctx, p, kind, tag, opt)
}

// localPath finds the file or directory arg names, splitting a ":TAG"
// suffix off when arg itself does not exist.
func localPath(arg string) (p, tag string, st os.FileInfo, err error) {
	st, err = os.Stat(arg)
	if err == nil {
		return arg, "", st, nil
	}
	if i := strings.LastIndexByte(arg, ':'); i > 0 && !strings.Contains(arg[i+1:], "/") {
		if st2, err2 := os.Stat(arg[:i]); err2 == nil {
			return arg[:i], arg[i+1:], st2, nil
		}
	}
	return "", "", nil, err
}

// looksLikePath tells a mistyped local path from a registry reference.
func looksLikePath(s string) bool {
	for _, p := range []string{"/", "./", "../", "~"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".oci"} {
		if strings.HasSuffix(s, ext) {
			return true
		}
	}
	return false
}

// historyFor returns the created_by of each non-empty layer in history.
func historyFor(cfg *v1.ConfigFile, n int) []string {
	out := make([]string, n)
	i := 0
	for _, h := range cfg.History {
		if h.EmptyLayer {
			continue
		}
		if i >= n {
			break
		}
		out[i] = h.CreatedBy
		i++
	}
	return out
}

// manifestLayers describes the layers a manifest lists, with the diff IDs
// and history of its config cfg; blob gives the opener of a layer's blob.
func (o *Options) manifestLayers(layers []v1.Descriptor, cfg *v1.ConfigFile, blob func(v1.Descriptor) (func() (io.ReadCloser, error), error)) ([]Layer, error) {
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("manifest lists %d layers but the config has %d diff IDs", len(layers), len(cfg.RootFS.DiffIDs))
	}
	created := historyFor(cfg, len(layers))
	out := make([]Layer, 0, len(layers))
	for i, ld := range layers {
		raw, err := blob(ld)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		diffID := cfg.RootFS.DiffIDs[i].String()
		out = append(out, Layer{
			Digest:    ld.Digest.String(),
			DiffID:    diffID,
			MediaType: string(ld.MediaType),
			Size:      ld.Size,
			CreatedBy: created[i],
			Open:      o.opener(fmt.Sprintf("layer %d (%s)", i, ld.Digest), ld.Size, diffID, raw),
		})
	}
	return out, nil
}
