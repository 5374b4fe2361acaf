package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/match"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/store"
)

// Layer is Clair v1's layer.
type Layer struct {
	Name             string            `json:",omitempty"`
	NamespaceName    string            `json:",omitempty"`
	Path             string            `json:",omitempty"`
	Headers          map[string]string `json:",omitempty"`
	ParentName       string            `json:",omitempty"`
	Format           string            `json:",omitempty"`
	IndexedByVersion int               `json:",omitempty"`
	Features         []Feature         `json:",omitempty"`
}

// Feature is Clair v1's feature: an installed package, or a fix.
type Feature struct {
	Name            string          `json:",omitempty"`
	NamespaceName   string          `json:",omitempty"`
	VersionFormat   string          `json:",omitempty"`
	Version         string          `json:",omitempty"`
	Vulnerabilities []Vulnerability `json:",omitempty"`
	AddedBy         string          `json:",omitempty"`
}

// Vulnerability is Clair v1's vulnerability.
type Vulnerability struct {
	Name          string         `json:",omitempty"`
	NamespaceName string         `json:",omitempty"`
	Description   string         `json:",omitempty"`
	Link          string         `json:",omitempty"`
	Severity      string         `json:",omitempty"`
	Metadata      map[string]any `json:",omitempty"`
	FixedBy       string         `json:",omitempty"`
	FixedIn       []Feature      `json:",omitempty"`
}

type layerEnvelope struct {
	Layer *Layer `json:",omitempty"`
}

// postLayer indexes a layer by name (Clair's POST /v1/layers).
func (s *Server) postLayer(w http.ResponseWriter, r *http.Request) error {
	var env layerEnvelope
	if err := decodeBody(r, &env); err != nil {
		return err
	}
	l := env.Layer
	switch {
	case l == nil:
		return errorf(http.StatusBadRequest, "failed to deserialize request: no Layer")
	case l.Name == "":
		return errorf(http.StatusBadRequest, "could not insert layer: Layer.Name is empty")
	case l.Path == "":
		return errorf(http.StatusBadRequest, "could not insert layer: Layer.Path is empty")
	case l.Format == "":
		return errorf(http.StatusBadRequest, "could not insert layer: Layer.Format is empty")
	case l.ParentName == l.Name:
		return errorf(http.StatusBadRequest, "could not insert layer: layer %q names itself as its parent", l.Name)
	}
	headers := http.Header{}
	for k, v := range l.Headers {
		headers[k] = []string{v}
	}
	if err := checkHeaders(headers); err != nil {
		return errorf(http.StatusBadRequest, "could not insert layer: Layer.Headers: %v", err)
	}
	var aci bool
	switch strings.ToLower(l.Format) {
	case "docker":
	case "aci":
		aci = true
	default:
		return errorf(http.StatusBadRequest, "could not insert layer: unsupported Format %q (want Docker or ACI)", l.Format)
	}
	_, err := s.shared(r.Context(), "layer\x00"+l.Name, func(ctx context.Context) (any, error) {
		return nil, s.indexNamedLayer(ctx, l, aci)
	})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, layerEnvelope{&Layer{Name: l.Name, Path: l.Path, ParentName: l.ParentName, Format: l.Format, IndexedByVersion: indexedByVersion}})
	return nil
}

// indexNamedLayer fetches, indexes and stores layer l, unless a layer of
// that name is already indexed by this indexer version.
func (s *Server) indexNamedLayer(ctx context.Context, l *Layer, aci bool) error {
	if old, err := s.st.ClairLayer(ctx, l.Name); err == nil && old.Indexer == index.Version {
		return nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var ancestry []store.ClairLayer
	if l.ParentName != "" {
		var err error
		if ancestry, err = s.st.ClairAncestry(ctx, l.ParentName); errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusBadRequest, "worker: parent layer is unknown, it must be processed first")
		} else if err != nil {
			return err
		}
	}
	release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	headers := http.Header{}
	for k, v := range l.Headers {
		headers.Set(k, v)
	}
	res, err := s.readLayer(ctx, layerSource{uri: l.Path, headers: headers, aci: aci})
	if err != nil {
		return err
	}
	// As Clair: packages with no operating system to match them in, in
	// this layer or its ancestry, make the layer unsupported.
	rep, err := compose(append(ancestry, store.ClairLayer{Name: l.Name}), res)
	if err != nil {
		return err
	}
	if len(rep.Packages) > 0 && (rep.Distribution == nil || rep.Distribution.Namespace == "") {
		return errorf(http.StatusUnprocessableEntity, "worker: OS and/or package manager are not supported")
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = s.st.PutClairLayer(ctx, store.ClairLayer{Name: l.Name, Parent: l.ParentName, Indexer: index.Version, Result: b})
	if errors.Is(err, store.ErrParentUnknown) {
		return errorf(http.StatusBadRequest, "worker: parent layer is unknown, it must be processed first")
	}
	return err
}

// compose builds the index report of a layer chain, base first, each
// package's introducing layer set to the layer's name. extra, when
// non-nil, is the result of the last layer (not yet stored).
func compose(chain []store.ClairLayer, extra *index.Result) (*index.Report, error) {
	rep := &index.Report{Image: chain[len(chain)-1].Name}
	results := make([]*index.Result, len(chain))
	for i, l := range chain {
		rep.Layers = append(rep.Layers, index.LayerInfo{DiffID: l.Name})
		if i == len(chain)-1 && extra != nil {
			results[i] = extra
			continue
		}
		results[i] = &index.Result{}
		if err := json.Unmarshal(l.Result, results[i]); err != nil {
			return nil, fmt.Errorf("stored layer %q is unreadable: %w", l.Name, err)
		}
	}
	if err := index.Compose(rep, results); err != nil {
		return nil, err
	}
	return rep, nil
}

// getLayer answers a layer with the features of its whole ancestry and,
// on request, their vulnerabilities.
func (s *Server) getLayer(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	chain, err := s.st.ClairAncestry(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	leaf := chain[len(chain)-1]
	out := &Layer{Name: leaf.Name, ParentName: leaf.Parent, IndexedByVersion: indexedByVersion}
	q := r.URL.Query()
	_, wantVulns := q["vulnerabilities"]
	_, wantFeatures := q["features"]
	rep, err := compose(chain, nil)
	if err != nil {
		return err
	}
	ns := ""
	if rep.Distribution != nil {
		ns = rep.Distribution.Namespace
	}
	out.NamespaceName = ns
	if wantFeatures || wantVulns {
		out.Features = make([]Feature, len(rep.Packages))
		at := map[string]int{}
		for i, p := range rep.Packages {
			out.Features[i] = Feature{Name: p.Name, NamespaceName: ns, VersionFormat: p.Kind, Version: p.Version, AddedBy: p.Layer}
			at[packageKey(p)] = i
		}
		if wantVulns {
			m, err := match.Match(ctx, s.st, rep.Distribution, rep.Packages)
			if err != nil {
				return err
			}
			for _, f := range m.Findings {
				i, ok := at[packageKey(f.Package)]
				if !ok {
					return fmt.Errorf("finding for package %s %s not in the layer", f.Package.Name, f.Package.Version)
				}
				out.Features[i].Vulnerabilities = append(out.Features[i].Vulnerabilities, vulnerabilityOf(f.Advisory))
			}
		}
	}
	WriteJSON(w, http.StatusOK, layerEnvelope{out})
	return nil
}

func packageKey(p model.Package) string {
	return strings.Join([]string{p.Kind, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.Module, p.DBPath}, "\x00")
}

// vulnerabilityOf is a finding's advisory as Clair shows it in a layer.
func vulnerabilityOf(a model.Advisory) Vulnerability {
	v := Vulnerability{Name: a.ID, NamespaceName: a.Namespace, Description: a.Description, Link: a.Link, Severity: a.Severity}
	if v.Description == "" {
		v.Description = a.Title
	}
	if a.State == model.StateFixed {
		v.FixedBy = a.FixedVersion
	}
	return v
}

func (s *Server) deleteLayer(w http.ResponseWriter, r *http.Request) error {
	if err := s.st.DeleteClairLayer(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
