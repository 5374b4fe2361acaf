package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// dockerManifest is a docker-save archive's manifest.json.
type dockerManifest []struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// blobName finds the digest in a layer's file name as crane
// ("<hex>.tar.gz") and Docker ≥25 ("blobs/sha256/<hex>") write them.
var blobName = regexp.MustCompile(`^(?:blobs/sha256/)?([0-9a-f]{64})(?:\.tar(?:\.gz|\.zst)?)?$`)

// openDocker fills img from the docker-save archive in s.
func openDocker(img *Image, s store, tag string, opt Options) error {
	b, err := readMeta(s, "manifest.json")
	if err != nil {
		return err
	}
	var m dockerManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	var tags []string
	pick := -1
	for i, e := range m {
		tags = append(tags, e.RepoTags...)
		if tag == "" || slices.ContainsFunc(e.RepoTags, func(t string) bool { return t == tag || strings.HasSuffix(t, ":"+tag) }) {
			if pick >= 0 {
				return fmt.Errorf("archive holds several images; choose one with PATH:TAG (tags: %s)", strings.Join(tags, ", "))
			}
			pick = i
		}
	}
	switch {
	case len(m) == 0:
		return fmt.Errorf("manifest.json lists no image")
	case pick < 0:
		return fmt.Errorf("no image tagged %q in the archive (tags: %s)", tag, strings.Join(tags, ", "))
	}
	e := m[pick]
	raw, err := readMeta(s, e.Config)
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("image config %s: %w", e.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return fmt.Errorf("manifest.json lists %d layers but the config has %d diff IDs", len(e.Layers), len(cfg.RootFS.DiffIDs))
	}
	img.Kind = KindDockerArchive
	img.ID = digestOf(sha256Sum(raw))
	img.Config = cfg
	created := historyFor(cfg, len(e.Layers))
	for i, name := range e.Layers {
		what := fmt.Sprintf("layer %d (%s)", i, name)
		l, err := dockerLayer(s, name, cfg.RootFS.DiffIDs[i].String())
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		l.CreatedBy = created[i]
		l.Open = opt.opener(what, l.Size, l.DiffID, storeBlob(s, name))
		img.Layers = append(img.Layers, l)
	}
	return nil
}

// storeBlob opens the file name of s.
func storeBlob(s store, name string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		rc, _, err := s.open(name)
		return rc, err
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// dockerLayer describes the layer blob name of a docker archive, sniffing
// its compression.
func dockerLayer(s store, name, diffID string) (Layer, error) {
	rc, size, err := s.open(name)
	if err != nil {
		return Layer{}, err
	}
	head := make([]byte, sniffHead)
	n, err := io.ReadFull(rc, head)
	rc.Close()
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Layer{}, err
	}
	comp, err := sniffBytes(head[:n])
	if err != nil {
		return Layer{}, err
	}
	l := Layer{DiffID: diffID, Size: size}
	switch comp {
	case compGzip:
		l.MediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	case compZstd:
		l.MediaType = mediaTypeTarZstd
	default:
		l.MediaType = "application/vnd.docker.image.rootfs.diff.tar"
		l.Digest = diffID // the blob is the tar itself
	}
	if m := blobName.FindStringSubmatch(path.Clean(name)); m != nil {
		l.Digest = "sha256:" + m[1]
	}
	return l, nil
}
