package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotations naming an image in an index, and marking attestations.
const (
	annotRefName       = "org.opencontainers.image.ref.name"
	annotContainerName = "io.containerd.image.name"
	annotRefType       = "vnd.docker.reference.type"
)

// errNoImages says an index lists no image manifest.
var errNoImages = errors.New("the index holds no image manifest")

// maxMetaTotal bounds all metadata read from one OCI layout.
const maxMetaTotal = 64 << 20

// dirStore reads the files of a directory, never outside it.
type dirStore struct{ root *os.Root }

func (d dirStore) open(name string) (io.ReadCloser, int64, error) {
	f, err := d.root.Open(filepath.FromSlash(name))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

func isOCILayout(dir string) bool {
	for _, f := range []string{"oci-layout", "index.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

func openOCIDir(dir, tag string, opt Options) (*Image, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	img := &Image{Kind: KindOCIDir, closers: []func() error{root.Close}}
	if err := openOCI(img, dirStore{root}, tag, opt); err != nil {
		img.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return img, nil
}

// ociNode is an index or a manifest: which one shows in what it holds, as
// descriptors' media types are not always right.
type ociNode struct {
	MediaType string          `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
}

// candidate is an image manifest found in an index.
type candidate struct {
	desc     v1.Descriptor
	node     *ociNode
	names    []string // ref names of it and the indexes above it
	platform *v1.Platform
}

// ociReader reads the blobs of a layout within a metadata budget.
type ociReader struct {
	s      store
	budget int64
}

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

func blobPath(d v1.Hash) (string, error) {
	if d.Algorithm != "sha256" || !hexDigest.MatchString(d.Hex) {
		return "", fmt.Errorf("unsupported digest %q", d.String())
	}
	return "blobs/sha256/" + d.Hex, nil
}

// read returns the metadata blob d, checking its digest.
func (r *ociReader) read(d v1.Descriptor) ([]byte, error) {
	name, err := blobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	b, err := readMeta(r.s, name)
	if err != nil {
		return nil, err
	}
	if r.budget -= int64(len(b)); r.budget < 0 {
		return nil, fmt.Errorf("layout metadata exceeds %d bytes", maxMetaTotal)
	}
	if got := digestOf(sha256Sum(b)); got != d.Digest.String() {
		return nil, fmt.Errorf("blob %s has digest %s", d.Digest, got)
	}
	return b, nil
}

func (r *ociReader) node(d v1.Descriptor) (*ociNode, error) {
	b, err := r.read(d)
	if err != nil {
		return nil, err
	}
	var n ociNode
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	return &n, nil
}

// collect gathers the image manifests below descs, through nested indexes.
func (r *ociReader) collect(descs []v1.Descriptor, names []string, depth int, out *[]candidate) error {
	for _, d := range descs {
		if len(*out) >= maxCandidates {
			return fmt.Errorf("index lists more than %d images", maxCandidates)
		}
		if d.Annotations[annotRefType] == "attestation-manifest" || d.Platform != nil && d.Platform.OS == "unknown" {
			continue
		}
		n, err := r.node(d)
		if err != nil {
			return err
		}
		dn := slices.Clip(names)
		for _, a := range []string{annotRefName, annotContainerName} {
			if v := d.Annotations[a]; v != "" {
				dn = append(dn, v)
			}
		}
		switch {
		case n.Config != nil:
			*out = append(*out, candidate{desc: d, node: n, names: dn, platform: d.Platform})
		case n.Manifests != nil:
			if depth >= maxIndexDepth {
				return fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
			}
			if err := r.collect(n.Manifests, dn, depth+1, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// openOCI fills img from the OCI layout in s.
func openOCI(img *Image, s store, tag string, opt Options) error {
	r := &ociReader{s: s, budget: maxMetaTotal}
	b, err := readMeta(s, "index.json")
	if err != nil {
		return err
	}
	var idx ociNode
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	var cands []candidate
	if err := r.collect(idx.Manifests, nil, 0, &cands); err != nil {
		return err
	}
	c, cfgRaw, err := r.choose(cands, tag, opt)
	if err != nil {
		return err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return fmt.Errorf("image config %s: %w", c.node.Config.Digest, err)
	}
	img.ID = c.node.Config.Digest.String()
	img.ManifestDigest = c.desc.Digest.String()
	img.Config = cfg
	img.Layers, err = opt.manifestLayers(c.node.Layers, cfg, func(d v1.Descriptor) (func() (io.ReadCloser, error), error) {
		name, err := blobPath(d.Digest)
		return storeBlob(s, name), err
	})
	return err
}

// choose picks the image for tag and the platform, returning its config.
func (r *ociReader) choose(cands []candidate, tag string, opt Options) (*candidate, []byte, error) {
	want, explicit, err := opt.platform()
	if err != nil {
		return nil, nil, err
	}
	if tag != "" {
		var named []candidate
		var all []string
		for _, c := range cands {
			all = append(all, c.names...)
			if slices.ContainsFunc(c.names, func(n string) bool { return n == tag || strings.HasSuffix(n, ":"+tag) }) {
				named = append(named, c)
			}
		}
		if len(named) == 0 {
			return nil, nil, fmt.Errorf("no image named %q in the index (names: %s)", tag, strings.Join(all, ", "))
		}
		cands = named
	}
	if len(cands) == 0 {
		return nil, nil, errNoImages
	}
	configs := make([][]byte, len(cands))
	var match []int
	var seen []string
	for i := range cands {
		c := &cands[i]
		if configs[i], err = r.read(*c.node.Config); err != nil {
			return nil, nil, fmt.Errorf("image config: %w", err)
		}
		if c.platform == nil {
			var p struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
				Variant      string `json:"variant"`
			}
			if err := json.Unmarshal(configs[i], &p); err != nil {
				return nil, nil, fmt.Errorf("image config %s: %w", c.node.Config.Digest, err)
			}
			c.platform = &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
		}
		if p := c.platform.String(); !slices.Contains(seen, p) {
			seen = append(seen, p)
		}
		if c.platform.Satisfies(*want) && !slices.ContainsFunc(match, func(j int) bool { return cands[j].desc.Digest == c.desc.Digest }) {
			match = append(match, i)
		}
	}
	if len(match) == 0 && !explicit && len(cands) == 1 {
		match = []int{0}
	}
	switch len(match) {
	case 0:
		return nil, nil, fmt.Errorf("no image for platform %s (the index has %s)", want, strings.Join(seen, ", "))
	case 1:
		return &cands[match[0]], configs[match[0]], nil
	}
	var names []string
	for _, i := range match {
		names = append(names, cands[i].names...)
	}
	return nil, nil, fmt.Errorf("%d images match platform %s; choose one with PATH:TAG (names: %s)", len(match), want, strings.Join(names, ", "))
}
