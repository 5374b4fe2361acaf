package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/match"
	"github.com/vigil-scanner/vigil/internal/report"
)

// Manifest is an image to index, as Clair v4's: its digest and its layers,
// base first, each with the digest of its blob (or of its uncompressed
// tar), where to fetch it and the headers to fetch it with.
type Manifest struct {
	Hash   string          `json:"hash"`
	Layers []ManifestLayer `json:"layers"`
}

// ManifestLayer is one layer of a Manifest.
type ManifestLayer struct {
	Hash      string              `json:"hash"`
	URI       string              `json:"uri"`
	Headers   map[string][]string `json:"headers,omitempty"`
	MediaType string              `json:"media_type,omitempty"`
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// layerFetchConcurrency bounds the layers of one manifest fetched at once.
const layerFetchConcurrency = 2

// postIndexReport indexes a manifest: each layer from the layer cache
// (keyed by the digest the client gives) or fetched, checked against that
// digest and indexed; then the image is composed and its report stored
// under the manifest digest. A known manifest is answered from the store.
func (s *Server) postIndexReport(w http.ResponseWriter, r *http.Request) error {
	var m Manifest
	if err := decodeBody(r, &m); err != nil {
		return err
	}
	if !digestRE.MatchString(m.Hash) {
		return errorf(http.StatusBadRequest, "manifest hash %q: want sha256:<64 lowercase hex digits>", m.Hash)
	}
	if len(m.Layers) == 0 {
		return errorf(http.StatusBadRequest, "manifest %s has no layers", m.Hash)
	}
	for i, l := range m.Layers {
		if !digestRE.MatchString(l.Hash) {
			return errorf(http.StatusBadRequest, "layer %d: hash %q: want sha256:<64 lowercase hex digits>", i+1, l.Hash)
		}
		if l.URI == "" {
			return errorf(http.StatusBadRequest, "layer %d (%s): uri is empty", i+1, l.Hash)
		}
		if err := checkHeaders(l.Headers); err != nil {
			return errorf(http.StatusBadRequest, "layer %d (%s): headers: %v", i+1, l.Hash, err)
		}
	}
	v, err := s.shared(r.Context(), "manifest\x00"+m.Hash, func(ctx context.Context) (any, error) {
		if b, ok, err := s.st.ImageIndex(ctx, m.Hash, index.Version); err != nil || ok {
			return indexed{b, false}, err
		}
		b, err := s.indexManifest(ctx, m)
		return indexed{b, true}, err
	})
	if err != nil {
		return err
	}
	res := v.(indexed)
	code := http.StatusOK
	if res.created {
		code = http.StatusCreated
	}
	w.Header().Set("Location", "/v2/index_report/"+m.Hash)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(code)
	w.Write(res.report)
	return nil
}

type indexed struct {
	report  []byte
	created bool
}

func (s *Server) indexManifest(ctx context.Context, m Manifest) ([]byte, error) {
	rep := &index.Report{Image: m.Hash, Manifest: m.Hash}
	results := make([]*index.Result, len(m.Layers))
	var missing []int
	for i, l := range m.Layers {
		rep.Layers = append(rep.Layers, index.LayerInfo{Digest: l.Hash, DiffID: l.Hash})
		b, ok, err := s.st.LayerIndex(ctx, l.Hash, index.Version)
		if err != nil {
			return nil, err
		}
		if ok {
			results[i] = &index.Result{}
			if err := json.Unmarshal(b, results[i]); err == nil {
				continue
			}
			s.log.Warn("ignoring unreadable cached layer index", "layer", l.Hash)
		}
		missing = append(missing, i)
	}
	if len(missing) > 0 {
		release, err := s.acquire()
		if err != nil {
			return nil, err
		}
		defer release()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(layerFetchConcurrency)
		for _, i := range missing {
			l := m.Layers[i]
			g.Go(func() error {
				// Manifests sharing a layer being fetched wait for that
				// fetch rather than repeat it.
				v, err := s.shared(gctx, "blob\x00"+l.Hash, func(ctx context.Context) (any, error) {
					if b, ok, err := s.st.LayerIndex(ctx, l.Hash, index.Version); err != nil || ok {
						return b, err
					}
					res, err := s.readLayer(ctx, layerSource{uri: l.URI, headers: http.Header(l.Headers), digest: l.Hash})
					if err != nil {
						return nil, err
					}
					b, err := json.Marshal(res)
					if err != nil {
						return nil, err
					}
					return b, s.st.PutLayerIndex(ctx, l.Hash, index.Version, b)
				})
				if err != nil {
					return fmt.Errorf("layer %d (%s): %w", i+1, l.Hash, err)
				}
				results[i] = &index.Result{}
				return json.Unmarshal(v.([]byte), results[i])
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	if err := index.Compose(rep, results); err != nil {
		return nil, err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	if err := s.st.PutImageIndex(ctx, m.Hash, index.Version, b); err != nil {
		return nil, err
	}
	return b, nil
}

// loadReport returns a stored index report (404 when none).
func (s *Server) loadReport(r *http.Request) (*index.Report, error) {
	h := r.PathValue("manifest")
	b, ok, err := s.st.ImageIndex(r.Context(), h, index.Version)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errorf(http.StatusNotFound, "manifest %q is not indexed (POST /v2/index_report first)", h)
	}
	var rep index.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("stored index report of %s: %w", h, err)
	}
	return &rep, nil
}

func (s *Server) getIndexReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.loadReport(r)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, rep)
	return nil
}

// getVulnerabilityReport matches a stored index report against the
// current advisories (always fresh) and answers report.New's document.
func (s *Server) getVulnerabilityReport(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.loadReport(r)
	if err != nil {
		return err
	}
	m, err := match.Match(r.Context(), s.st, rep.Distribution, rep.Packages)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, report.New(rep, m.Findings, m.Warnings))
	return nil
}
