// Package index turns an image into an index report: the operating system
// and the installed packages, each with the layer that introduced it.
//
// Each layer is read once, as a stream, keeping only the files the OS
// detector and the package catalogers name: small release files verbatim,
// package databases parsed into packages on the fly. That per-layer result
// (plus the layer's whiteouts, opaque directories and links on those paths)
// is cached in the store under the layer's diff ID and the indexer version,
// so a layer shared by many images is read once. The image is then composed
// from the layer results bottom-up, applying whiteouts; the OS is detected on
// the composed view, and a package's introducing layer is the lowest layer
// from which the same record (kind, name, version, arch, source) is present
// in every composed state up to the top.
package index

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/vigil-scanner/vigil/internal/catalog"
	"github.com/vigil-scanner/vigil/internal/detect"
	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/layer"
	"github.com/vigil-scanner/vigil/internal/model"
)

// Version identifies the indexer's output. Bump it whenever a detector, a
// cataloger or the layer result format changes what an index holds, so
// cached results of older versions are not reused.
const Version = "vigil-index/2"

// maxReleaseFile bounds a release file kept verbatim (os-release and
// friends are a few hundred bytes).
const maxReleaseFile = 64 << 10

// Cache stores per-layer and per-image results; *store.Store satisfies it.
type Cache interface {
	LayerIndex(ctx context.Context, diffID, indexer string) ([]byte, bool, error)
	PutLayerIndex(ctx context.Context, diffID, indexer string, result []byte) error
	ImageIndex(ctx context.Context, imageID, indexer string) ([]byte, bool, error)
	PutImageIndex(ctx context.Context, imageID, indexer string, report []byte) error
}

// Report is an image's index report.
type Report struct {
	Image        string              `json:"image"`
	ImageID      string              `json:"image_id,omitempty"`
	Manifest     string              `json:"manifest_digest,omitempty"`
	Layers       []LayerInfo         `json:"layers"`
	Distribution *model.Distribution `json:"distribution,omitempty"`
	Packages     []model.Package     `json:"packages"`
	Warnings     []string            `json:"warnings,omitempty"`
}

// LayerInfo describes one layer of the image.
type LayerInfo struct {
	Digest string `json:"digest,omitempty"`
	DiffID string `json:"diff_id,omitempty"`
	Cached bool   `json:"-"` // read from the layer cache, not from the image
}

// Stats counts work done by one Index call.
type Stats struct {
	LayersRead   int  // layers streamed from the image
	LayersCached int  // layers whose result came from the cache
	ImageCached  bool // the whole report came from the image cache
}

// Indexer indexes images against a cache (which may be nil).
type Indexer struct {
	Cache      Cache
	Catalogers []catalog.Cataloger
	Limits     layer.Limits
	Log        *slog.Logger
}

// New returns an Indexer with every cataloger and the default limits.
func New(cache Cache, log *slog.Logger) *Indexer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Indexer{Cache: cache, Catalogers: catalog.All(), Limits: layer.DefaultLimits(), Log: log}
}

// Index indexes img.
func (ix *Indexer) Index(ctx context.Context, img *image.Image) (*Report, Stats, error) {
	var st Stats
	if ix.Cache != nil && img.ID != "" {
		if b, ok, err := ix.Cache.ImageIndex(ctx, img.ID, Version); err != nil {
			ix.Log.Warn("image cache unavailable", "image", img.ID, "err", err)
		} else if ok {
			var r Report
			if err := json.Unmarshal(b, &r); err == nil {
				r.Image = img.Ref
				st.ImageCached = true
				ix.Log.Debug("image index from cache", "image", img.ID)
				return &r, st, nil
			}
			ix.Log.Warn("ignoring unreadable cached image index", "image", img.ID)
		}
	}
	results := make([]*Result, len(img.Layers))
	cached := make([]bool, len(img.Layers))
	errs := make([]error, len(img.Layers))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for i := range img.Layers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], cached[i], errs[i] = ix.layer(ctx, img.Layers[i])
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, st, fmt.Errorf("layer %d (%s): %w", i+1, layerName(img.Layers[i]), err)
		}
	}
	r := &Report{Image: img.Ref, ImageID: img.ID, Manifest: img.ManifestDigest}
	for i, l := range img.Layers {
		r.Layers = append(r.Layers, LayerInfo{Digest: l.Digest, DiffID: l.DiffID, Cached: cached[i]})
		if cached[i] {
			st.LayersCached++
		} else {
			st.LayersRead++
		}
		for _, w := range results[i].Warnings {
			r.Warnings = append(r.Warnings, fmt.Sprintf("layer %d (%s): %s", i+1, layerName(l), w))
		}
	}
	if err := Compose(r, results); err != nil {
		return nil, st, err
	}
	ix.Log.Debug("indexed image", "image", img.Ref, "layers_read", st.LayersRead, "layers_cached", st.LayersCached, "packages", len(r.Packages))
	if ix.Cache != nil && img.ID != "" && allCacheable(img) {
		if b, err := json.Marshal(r); err == nil {
			if err := ix.Cache.PutImageIndex(ctx, img.ID, Version, b); err != nil {
				ix.Log.Warn("could not cache image index", "image", img.ID, "err", err)
			}
		}
	}
	return r, st, nil
}

func allCacheable(img *image.Image) bool {
	for _, l := range img.Layers {
		if l.DiffID == "" {
			return false
		}
	}
	return true
}

func layerName(l image.Layer) string {
	if l.DiffID != "" {
		return l.DiffID
	}
	if l.Digest != "" {
		return l.Digest
	}
	return "uncached layer"
}

// layer returns one layer's result, from the cache or by reading it.
func (ix *Indexer) layer(ctx context.Context, l image.Layer) (*Result, bool, error) {
	if ix.Cache != nil && l.DiffID != "" {
		b, ok, err := ix.Cache.LayerIndex(ctx, l.DiffID, Version)
		if err != nil {
			ix.Log.Warn("layer cache unavailable", "layer", l.DiffID, "err", err)
		} else if ok {
			var res Result
			if err := json.Unmarshal(b, &res); err == nil {
				ix.Log.Debug("layer index from cache", "layer", l.DiffID)
				return &res, true, nil
			}
			ix.Log.Warn("ignoring unreadable cached layer index", "layer", l.DiffID)
		}
	}
	res, err := ix.ReadLayer(ctx, l)
	if err != nil {
		return nil, false, err
	}
	ix.Log.Debug("indexed layer", "layer", layerName(l), "files", len(res.Files), "package_dbs", len(res.Packages))
	if ix.Cache != nil && l.DiffID != "" {
		b, err := json.Marshal(res)
		if err == nil {
			err = ix.Cache.PutLayerIndex(ctx, l.DiffID, Version, b)
		}
		if err != nil {
			ix.Log.Warn("could not cache layer index", "layer", l.DiffID, "err", err)
		}
	}
	return res, false, nil
}

// Result is what one layer holds of interest: release files, parsed
// package databases, and its changes to those paths.
type Result struct {
	Files     map[string][]byte          `json:"files,omitempty"`    // release files, verbatim
	Packages  map[string][]model.Package `json:"packages,omitempty"` // package database path → its packages
	Whiteouts []string                   `json:"whiteouts,omitempty"`
	Opaque    []string                   `json:"opaque,omitempty"`
	Links     map[string]string          `json:"links,omitempty"`
	Warnings  []string                   `json:"warnings,omitempty"`
}

// ReadLayer streams one layer and returns its result.
func (ix *Indexer) ReadLayer(ctx context.Context, l image.Layer) (*Result, error) {
	rc, err := l.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return ix.Read(ctx, rc)
}

// Read indexes one uncompressed layer tar read from r.
func (ix *Indexer) Read(ctx context.Context, r io.Reader) (*Result, error) {
	patterns := slices.Clone(detect.Patterns)
	for _, c := range ix.Catalogers {
		patterns = append(patterns, c.Patterns()...)
	}
	res := &Result{Files: map[string][]byte{}, Packages: map[string][]model.Package{}}
	ch, err := layer.Read(ctx, r, layer.NewSelector(patterns), ix.Limits, func(p string, r io.Reader) error {
		if matchAny(detect.Patterns, p) {
			b, err := io.ReadAll(io.LimitReader(r, maxReleaseFile+1))
			if err != nil {
				return err
			}
			if len(b) > maxReleaseFile {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: release file over %d bytes, ignored", p, maxReleaseFile))
				return nil
			}
			res.Files[p] = b
			return nil
		}
		for _, c := range ix.Catalogers {
			if !matchAny(c.Patterns(), p) {
				continue
			}
			pkgs, err := c.Parse(p, r)
			if err != nil {
				// A broken database is reported, not fatal: the rest of the
				// image is still indexed, and the warning says what is missing.
				msg := err.Error()
				if !strings.HasPrefix(msg, p+":") { // catalogers name the file themselves
					msg = p + ": " + msg
				}
				res.Warnings = append(res.Warnings, msg)
				delete(res.Packages, p)
				return nil
			}
			res.Packages[p] = pkgs
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Whiteouts, res.Opaque, res.Links = ch.Whiteouts, ch.Opaque, ch.Links
	res.Warnings = append(res.Warnings, ch.Warnings...)
	// A path re-added as a link later in the layer supersedes its contents.
	for p := range ch.Links {
		delete(res.Files, p)
		delete(res.Packages, p)
	}
	return res, nil
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}
