package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/version"
)

// Namespace is Clair v1's namespace.
type Namespace struct {
	Name          string `json:",omitempty"`
	VersionFormat string `json:",omitempty"`
}

// maxPageSize caps the limit of a vulnerability listing.
const maxPageSize = 1000

// notFixed is Clair's version of a fix that does not exist yet.
const notFixed = "None"

type vulnEnvelope struct {
	Vulnerability   *Vulnerability  `json:",omitempty"`
	Vulnerabilities []Vulnerability `json:",omitempty"`
	NextPage        string          `json:",omitempty"`
}

type featureEnvelope struct {
	Feature  *Feature  `json:",omitempty"`
	Features []Feature `json:",omitempty"`
}

// vulnPage is the position a page token carries.
type vulnPage struct {
	NS    string `json:"ns"`
	After string `json:"after"`
}

func (s *Server) getNamespaces(w http.ResponseWriter, r *http.Request) error {
	nss, err := s.st.ClairNamespaces(r.Context())
	if err != nil {
		return err
	}
	out := struct{ Namespaces []Namespace }{Namespaces: []Namespace{}}
	for _, ns := range nss {
		vf := ns.VersionFormat
		if vf == "" {
			vf = defaultFormat(ns.Name)
		}
		out.Namespaces = append(out.Namespaces, Namespace{Name: ns.Name, VersionFormat: vf})
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// defaultFormat is the version format of a namespace's packages.
func defaultFormat(ns string) string {
	switch family, _, _ := strings.Cut(ns, ":"); family {
	case "debian", "ubuntu":
		return model.KindDpkg
	case "alpine", "wolfi", "chainguard":
		return model.KindAPK
	}
	return model.KindRPM
}

func (s *Server) listVulnerabilities(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ns := r.PathValue("ns")
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 0 {
		return errorf(http.StatusBadRequest, "invalid or missing limit: want a number of vulnerabilities, 0 or more")
	}
	limit = min(limit, maxPageSize)
	pos := vulnPage{NS: ns}
	if tok := q.Get("page"); tok != "" {
		if err := s.opt.Pages.Decode(tok, &pos); err != nil {
			return err
		}
		if pos.NS != ns {
			return errorf(http.StatusBadRequest, "page: the token is for namespace %q, not %q", pos.NS, ns)
		}
	}
	names, err := s.st.ClairVulnerabilityNames(ctx, ns, pos.After, limit+1)
	if err != nil {
		return err
	}
	out := vulnEnvelope{Vulnerabilities: []Vulnerability{}}
	if len(names) > limit {
		names = names[:limit]
		// limit 0: an empty page, the next starting where it did (as Clair).
		after := pos.After
		if limit > 0 {
			after = names[limit-1]
		}
		tok, err := s.opt.Pages.Encode(vulnPage{NS: ns, After: after})
		if err != nil {
			return err
		}
		out.NextPage = tok
	}
	if len(names) == 0 && pos.After == "" {
		if err := s.namespaceExists(r, ns); err != nil {
			return err
		}
	}
	vs, err := s.st.ClairVulnerabilities(ctx, ns, names)
	if err != nil {
		return err
	}
	for _, v := range vs {
		cv, err := clairVulnerability(v, false)
		if err != nil {
			return err
		}
		out.Vulnerabilities = append(out.Vulnerabilities, cv)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) namespaceExists(r *http.Request, ns string) error {
	nss, err := s.st.ClairNamespaces(r.Context())
	if err != nil {
		return err
	}
	for _, n := range nss {
		if n.Name == ns {
			return nil
		}
	}
	return errorf(http.StatusNotFound, "namespace %q not found", ns)
}

// clairVulnerability converts a stored vulnerability, with its fixes when
// fixedIn.
func clairVulnerability(v store.ClairVulnerability, fixedIn bool) (Vulnerability, error) {
	out := Vulnerability{Name: v.Name, NamespaceName: v.Namespace, Description: v.Description, Link: v.Link, Severity: v.Severity}
	if v.Metadata != "" {
		if err := json.Unmarshal([]byte(v.Metadata), &out.Metadata); err != nil {
			return out, fmt.Errorf("vulnerability %s: stored metadata: %w", v.Name, err)
		}
	}
	if fixedIn {
		for _, f := range v.FixedIn {
			out.FixedIn = append(out.FixedIn, fixFeature(v.Namespace, f))
		}
	}
	return out, nil
}

func fixFeature(ns string, f store.ClairFix) Feature {
	ver := f.FixedVersion
	if f.State != model.StateFixed {
		ver = notFixed
	}
	return Feature{Name: f.Package, NamespaceName: ns, VersionFormat: f.VersionFormat, Version: ver}
}

// lookup returns one vulnerability of a namespace (404 when none).
func (s *Server) lookup(r *http.Request, ns, name string) (store.ClairVulnerability, error) {
	vs, err := s.st.ClairVulnerabilities(r.Context(), ns, []string{name})
	if err != nil {
		return store.ClairVulnerability{}, err
	}
	if len(vs) == 0 {
		return store.ClairVulnerability{}, errorf(http.StatusNotFound, "vulnerability %q not found in namespace %q", name, ns)
	}
	return vs[0], nil
}

func (s *Server) getVulnerability(w http.ResponseWriter, r *http.Request) error {
	v, err := s.lookup(r, r.PathValue("ns"), r.PathValue("vuln"))
	if err != nil {
		return err
	}
	_, fixedIn := r.URL.Query()["fixedIn"]
	cv, err := clairVulnerability(v, fixedIn)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, vulnEnvelope{Vulnerability: &cv})
	return nil
}

// storedVulnerability validates a posted vulnerability for namespace ns.
func storedVulnerability(ns string, v *Vulnerability) (store.ClairVulnerability, error) {
	out := store.ClairVulnerability{Namespace: ns, Name: v.Name, Description: v.Description, Link: v.Link}
	if v.Name == "" {
		return out, errorf(http.StatusBadRequest, "Vulnerability.Name is empty")
	}
	if v.NamespaceName != "" && v.NamespaceName != ns {
		return out, errorf(http.StatusBadRequest, "Vulnerability.NamespaceName %q differs from the namespace in the path, %q", v.NamespaceName, ns)
	}
	sev, err := severity(v.Severity)
	if err != nil {
		return out, err
	}
	out.Severity = sev
	if len(v.Metadata) > 0 {
		b, err := json.Marshal(v.Metadata)
		if err != nil {
			return out, errorf(http.StatusBadRequest, "Vulnerability.Metadata: %v", err)
		}
		out.Metadata = string(b)
	}
	for _, f := range v.FixedIn {
		fix, err := storedFix(ns, f)
		if err != nil {
			return out, err
		}
		out.FixedIn = append(out.FixedIn, fix)
	}
	return out, nil
}

// severity checks a Clair severity; Defcon1 is Critical, "" Unknown.
func severity(s string) (string, error) {
	switch s {
	case "":
		return model.SeverityUnknown, nil
	case "Defcon1":
		return model.SeverityCritical, nil
	}
	for _, v := range model.Severities {
		if v == s {
			return s, nil
		}
	}
	return "", errorf(http.StatusBadRequest, "Severity %q: want one of %s or Defcon1", s, strings.Join(model.Severities, ", "))
}

// storedFix validates a fix of namespace ns: Version "None" means no fix
// yet (affects every version); any other must be a valid version.
func storedFix(ns string, f Feature) (store.ClairFix, error) {
	if f.Name == "" {
		return store.ClairFix{}, errorf(http.StatusBadRequest, "Feature.Name is empty")
	}
	if f.NamespaceName != "" && f.NamespaceName != ns {
		return store.ClairFix{}, errorf(http.StatusBadRequest, "Feature %s: NamespaceName %q differs from the namespace in the path, %q", f.Name, f.NamespaceName, ns)
	}
	fix := store.ClairFix{Package: f.Name, VersionFormat: f.VersionFormat, State: model.StateFixed, FixedVersion: f.Version}
	if fix.VersionFormat == "" {
		fix.VersionFormat = defaultFormat(ns)
	}
	cmp, ok := version.Lookup(fix.VersionFormat)
	if !ok {
		return fix, errorf(http.StatusBadRequest, "Feature %s: unknown VersionFormat %q", f.Name, f.VersionFormat)
	}
	switch f.Version {
	case "":
		return fix, errorf(http.StatusBadRequest, "Feature %s: Version is empty (use %q for no fix yet)", f.Name, notFixed)
	case notFixed:
		fix.State, fix.FixedVersion = model.StateUnfixed, ""
	default:
		if err := cmp.Valid(f.Version); err != nil {
			return fix, errorf(http.StatusBadRequest, "Feature %s: Version %q: %v", f.Name, f.Version, err)
		}
	}
	return fix, nil
}

func (s *Server) postVulnerability(w http.ResponseWriter, r *http.Request) error {
	return s.saveVulnerability(w, r, r.PathValue("ns"), "", true)
}

func (s *Server) putVulnerability(w http.ResponseWriter, r *http.Request) error {
	return s.saveVulnerability(w, r, r.PathValue("ns"), r.PathValue("vuln"), false)
}

// saveVulnerability creates (POST, with its fixes) or updates (PUT,
// fixes untouched: they have their own routes) an API vulnerability.
func (s *Server) saveVulnerability(w http.ResponseWriter, r *http.Request, ns, name string, post bool) error {
	var env vulnEnvelope
	if err := decodeBody(r, &env); err != nil {
		return err
	}
	if env.Vulnerability == nil {
		return errorf(http.StatusBadRequest, "failed to deserialize request: no Vulnerability")
	}
	if !post {
		if len(env.Vulnerability.FixedIn) > 0 {
			return errorf(http.StatusBadRequest, "Vulnerability.FixedIn must be empty: change fixes through …/vulnerabilities/%s/fixes", name)
		}
		env.Vulnerability.Name = name
		env.Vulnerability.NamespaceName = ns
	}
	v, err := storedVulnerability(ns, env.Vulnerability)
	if err != nil {
		return err
	}
	created, err := s.st.PutClairVulnerability(r.Context(), v, post)
	if err != nil {
		return err
	}
	saved, err := s.lookup(r, ns, v.Name)
	if err != nil {
		return err
	}
	cv, err := clairVulnerability(saved, true)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	WriteJSON(w, code, vulnEnvelope{Vulnerability: &cv})
	return nil
}

// apiOnly turns ErrNotFound from a change to an API vulnerability into
// 404, or 400 when the vulnerability exists but only in feed data.
func (s *Server) apiOnly(r *http.Request, ns, name string, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if v, lerr := s.lookup(r, ns, name); lerr == nil && !v.API {
		return errorf(http.StatusBadRequest, "vulnerability %q of namespace %q comes from feed data, which only feed updates change", name, ns)
	}
	return errorf(http.StatusNotFound, "%v", err)
}

func (s *Server) deleteVulnerability(w http.ResponseWriter, r *http.Request) error {
	ns, name := r.PathValue("ns"), r.PathValue("vuln")
	if err := s.st.DeleteClairVulnerability(r.Context(), ns, name); err != nil {
		return s.apiOnly(r, ns, name, err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getFixes(w http.ResponseWriter, r *http.Request) error {
	ns := r.PathValue("ns")
	v, err := s.lookup(r, ns, r.PathValue("vuln"))
	if err != nil {
		return err
	}
	out := featureEnvelope{Features: []Feature{}}
	for _, f := range v.FixedIn {
		out.Features = append(out.Features, fixFeature(ns, f))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putFix(w http.ResponseWriter, r *http.Request) error {
	ns, name, feature := r.PathValue("ns"), r.PathValue("vuln"), r.PathValue("feature")
	var env featureEnvelope
	if err := decodeBody(r, &env); err != nil {
		return err
	}
	if env.Feature == nil {
		return errorf(http.StatusBadRequest, "failed to deserialize request: no Feature")
	}
	if env.Feature.Name != feature {
		return errorf(http.StatusBadRequest, "Feature.Name %q differs from the feature in the path, %q", env.Feature.Name, feature)
	}
	fix, err := storedFix(ns, *env.Feature)
	if err != nil {
		return err
	}
	if err := s.st.PutClairFix(r.Context(), ns, name, fix); err != nil {
		return s.apiOnly(r, ns, name, err)
	}
	out := fixFeature(ns, fix)
	WriteJSON(w, http.StatusOK, featureEnvelope{Feature: &out})
	return nil
}

func (s *Server) deleteFix(w http.ResponseWriter, r *http.Request) error {
	ns, name := r.PathValue("ns"), r.PathValue("vuln")
	if err := s.st.DeleteClairFix(r.Context(), ns, name, r.PathValue("feature")); err != nil {
		return s.apiOnly(r, ns, name, err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
