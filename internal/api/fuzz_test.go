package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/store"
)

// The fuzz targets send fuzzed request bodies, query parameters and
// Authorization headers through the real handler (Server.Handler, called
// in process) over a real SQLite store made once per target. Every answer
// must have a status its route documents, never 5xx, and on error Clair's
// error body; an accepted request must have left the store as it says.
//
// Fuzzed layer paths never leave the process: local paths are not
// allowed, and the fetcher's transport is offlineBlobs, which answers for
// blobHost from a temporary directory and refuses every other host.

// blobHost is the only host a fuzzed layer path can fetch from.
const blobHost = "blobs.test"

// offlineBlobs serves blobHost's files with its handler and refuses any
// other host, without resolving or dialling it.
type offlineBlobs struct{ files http.Handler }

func (o offlineBlobs) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != blobHost {
		return nil, fmt.Errorf("fuzzing: host %q refused (only %s is served)", req.URL.Host, blobHost)
	}
	rec := httptest.NewRecorder()
	o.files.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// fuzzServer is the API under fuzzing, its store, and the directory of
// the layer blobs blobHost serves.
type fuzzServer struct {
	s   *Server
	h   http.Handler
	st  *store.Store
	dir string
}

func newFuzzServer(f *testing.F, mod func(*Options)) *fuzzServer {
	st := openStore(f)
	s, _ := newServer(f, st, mod)
	if s.fetcher.opt.AllowLocalPaths {
		f.Fatal("fuzzed layer paths must not reach the server's files")
	}
	dir := f.TempDir()
	// One file each, so that the blobs (and their digests) are the same
	// in every fuzzing process.
	writeLayer(f, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	writeLayer(f, dir, "pkgs.tar", map[string]string{"var/lib/dpkg/status": dpkgStatus})
	writeLayer(f, dir, "image.aci", map[string]string{"rootfs/etc/os-release": osRelease})
	if err := os.WriteFile(filepath.Join(dir, "garbage.tar"), bytes.Repeat([]byte("x"), 2000), 0o644); err != nil {
		f.Fatal(err)
	}
	s.fetcher.client.Transport = offlineBlobs{http.FileServer(http.Dir(dir))}
	return &fuzzServer{s: s, h: s.Handler(), st: st, dir: dir}
}

// serve answers req and checks what every answer must be: a status among
// allowed (the route's documented codes) and, for an error, Clair's error
// body.
func (fz *fuzzServer) serve(t *testing.T, req *http.Request, allowed ...int) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	fz.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	errorMessage(t, resp)
	if !slices.Contains(allowed, rec.Code) {
		t.Fatalf("%s %s: %d %q, want one of %v", req.Method, req.URL, rec.Code, rec.Body.Bytes(), allowed)
	}
	return rec
}

// blobLayer is the manifest layer of the blob called name.
func (fz *fuzzServer) blobLayer(tb testing.TB, name string) ManifestLayer {
	b, err := os.ReadFile(filepath.Join(fz.dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return ManifestLayer{Hash: "sha256:" + hex.EncodeToString(sum[:]), URI: "http://" + blobHost + "/" + name}
}

// vulnerability is the stored view of ns/name, nil when there is none.
func (fz *fuzzServer) vulnerability(t *testing.T, ns, name string) *store.ClairVulnerability {
	t.Helper()
	vs, err := fz.st.ClairVulnerabilities(context.Background(), ns, []string{name})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		return nil
	}
	return &vs[0]
}

// putVulnerability stores v in namespace ns as the API would.
func putVulnerability(tb testing.TB, st *store.Store, ns string, v Vulnerability) {
	sv, err := storedVulnerability(ns, &v)
	if err == nil {
		_, err = st.PutClairVulnerability(context.Background(), sv, true)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// segment escapes s as one path segment that the mux unescapes back to s
// (dots too: "." and ".." are names there, not path steps).
func segment(s string) string { return strings.ReplaceAll(url.PathEscape(s), ".", "%2E") }

// noRoute is the one name no route takes as a path segment: the mux reads
// a segment of just "/" as a trailing slash.
const noRoute = "/"

// pathName is a fuzzed name as a path carries it: def when empty (an
// empty segment is another route), and valid UTF-8 (names travel in JSON
// answers too, which hold nothing else).
func pathName(s, def string) string {
	if s == "" {
		return def
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// acceptedJSON fails t unless body, which the server accepted, is exactly
// one JSON value (docs/security.md: trailing data answers 400).
func acceptedJSON(t *testing.T, body []byte) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("accepted a body that is not one JSON value: %q", body)
	}
}

func decodeAnswer(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("answer %d %q: %v", rec.Code, rec.Body.Bytes(), err)
	}
}

// FuzzPostLayer posts fuzzed Clair v1 layer envelopes. A refused post
// stores nothing; an accepted one echoes the layer without its Headers,
// and the layer is stored (under its first parent) and readable.
func FuzzPostLayer(f *testing.F) {
	fz := newFuzzServer(f, nil)
	blob := "http://" + blobHost + "/"
	for _, body := range []string{
		// docs/api.md's client flow, and an appc image.
		`{"Layer":{"Name":"sha256:aaaa-in-image-X","Path":"` + blob + `base.tar","Headers":{"Authorization":"Bearer <registry token>"},"Format":"Docker"}}`,
		`{"Layer":{"Name":"sha256:bbbb-in-image-X","ParentName":"sha256:aaaa-in-image-X","Path":"` + blob + `pkgs.tar","Headers":{"Authorization":"Bearer <registry token>"},"Format":"Docker"}}`,
		`{"Layer":{"Name":"aci","Path":"https://` + blobHost + `/image.aci","Format":"ACI"}}`,
		`{"Extra":[1,2],"Layer":{"Bogus":{"x":1},"Name":"unknown","Path":"` + blob + `base.tar","Format":"docker"}}`,
		// The refusals of TestPostLayerErrors and TestAbuseRequestBodies.
		`{"Layer":`, `{}`, `["Layer"]`, `{"Layer":{"Name":7}}`,
		`{"Layer":{"Path":"http://x/","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"http://x/"}}`,
		`{"Layer":{"Name":"a","Path":"http://x/","Format":"OCI"}}`,
		`{"Layer":{"Name":"a","Path":"` + blob + `base.tar","Format":"Docker","ParentName":"nope"}}`,
		`{"Layer":{"Name":"a","Path":"` + blob + `base.tar","Format":"Docker","ParentName":"a"}}`,
		`{"Layer":{"Name":"a","Path":"http://127.0.0.1:1/x.tar","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"` + blob + `missing.tar","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"` + blob + `garbage.tar","Format":"Docker"}}`,
		`{"Layer":{"Name":"nos","Path":"` + blob + `pkgs.tar","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"/etc/passwd","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"file:///etc/passwd","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"ftp://127.0.0.1/layer.tar","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"http:///layer.tar","Format":"Docker"}}`,
		`{"Layer":{"Name":"a","Path":"` + blob + `base.tar","Format":"Docker","Headers":{"Bad Name":"x"}}}`,
		`{"Layer":{"Name":"a","Path":"` + blob + `base.tar","Format":"Docker","Headers":{"X":"1\r\nX-Injected: 1"}}}`,
		`{"Layer":{"Name":"td","Path":"` + blob + `base.tar","Format":"Docker"}}{"Layer":{}}`,
		`{"Layer":{"Name":"td","Path":"` + blob + `base.tar","Format":"Docker"}}]`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx := context.Background()
		var posted layerEnvelope
		json.Unmarshal(body, &posted) // even a body refused for a type error may name a layer
		known := false                // a layer of the posted name was stored before
		if posted.Layer != nil {
			_, err := fz.st.ClairLayer(ctx, posted.Layer.Name)
			known = err == nil
		}
		rec := fz.serve(t, httptest.NewRequest("POST", "/v1/layers", bytes.NewReader(body)), 201, 400, 413, 422, 429)
		if rec.Code != http.StatusCreated {
			if posted.Layer != nil && !known {
				if _, err := fz.st.ClairLayer(ctx, posted.Layer.Name); err == nil {
					t.Fatalf("refused post (%d) stored layer %q", rec.Code, posted.Layer.Name)
				}
			}
			return
		}
		acceptedJSON(t, body)
		l := posted.Layer
		var got layerEnvelope
		decodeAnswer(t, rec, &got)
		want := Layer{Name: l.Name, Path: l.Path, ParentName: l.ParentName, Format: l.Format, IndexedByVersion: indexedByVersion}
		if got.Layer == nil || !reflect.DeepEqual(*got.Layer, want) {
			t.Fatalf("answered %+v, want the posted layer without its Headers: %+v", got.Layer, want)
		}
		stored, err := fz.st.ClairLayer(ctx, l.Name)
		if err != nil || stored.Indexer != index.Version || !known && stored.Parent != l.ParentName {
			t.Fatalf("layer %q stored as %+v (%v), want parent %q by %s", l.Name, stored, err, l.ParentName, index.Version)
		}
		if l.Name == noRoute {
			return
		}
		rec = fz.serve(t, httptest.NewRequest("GET", "/v1/layers/"+segment(l.Name)+"?features&vulnerabilities", nil), 200)
		var read layerEnvelope
		decodeAnswer(t, rec, &read)
		if read.Layer == nil || read.Layer.Name != l.Name || read.Layer.ParentName != stored.Parent {
			t.Fatalf("GET layer %q answered %+v, want parent %q", l.Name, read.Layer, stored.Parent)
		}
	})
}

// TestNoRoute: what no route takes answers Clair's error body (the mux's
// own answers were plain text): 405 with Allow on a route's path, else 404.
func TestNoRoute(t *testing.T) {
	_, ts := newServer(t, openStore(t), nil)
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"PATCH", "/v1/layers", 405, "POST"},
		{"POST", "/v1/layers/a", 405, "GET, DELETE, HEAD"},
		{"GET", "/v1/layer", 404, ""},
		{"GET", "/v1/namespaces/%2F/vulnerabilities?limit=1", 404, ""},
	} {
		req, err := http.NewRequest(c.method, ts.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg := errorMessage(t, resp)
		resp.Body.Close()
		if resp.StatusCode != c.code || resp.Header.Get("Allow") != c.allow || msg == "" {
			t.Errorf("%s %s: %d, Allow %q, %q; want %d, Allow %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), msg, c.code, c.allow)
		}
	}
}

// clairSeverity is the severity stored for a posted one.
func clairSeverity(s string) string {
	switch s {
	case "":
		return "Unknown"
	case "Defcon1":
		return "Critical"
	}
	return s
}

// FuzzVulnerability sends fuzzed bodies (and namespace and vulnerability
// names) to the routes that create and change vulnerabilities: op picks
// POST …/vulnerabilities, PUT …/vulnerabilities/{name} or PUT
// …/{name}/fixes/{feature}. A refused request changes nothing; an
// accepted one answers what was posted, and reads back the same.
func FuzzVulnerability(f *testing.F) {
	fz := newFuzzServer(f, nil)
	importTracker(f, fz.st)
	putVulnerability(f, fz.st, "debian:12", Vulnerability{Name: "CVE-2099-0042", Severity: "High", FixedIn: []Feature{{Name: "zlib", Version: "1:1.3-1"}}})
	const (
		opPost uint8 = iota
		opPut
		opPutFix
		ops
	)
	for _, s := range []struct {
		op       uint8
		ns, name string
		body     string
	}{
		{opPost, "debian:12", "", `{"Vulnerability":{"Name":"CVE-2099-0043","Severity":"High","Description":"d","Link":"https://example/x","Metadata":{"NVD":{"CVSSv2":{"Score":7.5}}},"FixedIn":[{"Name":"zlib","Version":"1:1.3-1"},{"Name":"bash","Version":"None"}]}}`},
		{opPost, "alpine:3.20", "", `{"Vulnerability":{"Name":"CVE-2099-1","NamespaceName":"alpine:3.20","Severity":"Defcon1","FixedIn":[{"Name":"musl","Version":"1.2.5-r1","VersionFormat":"apk"}]}}`},
		{opPost, "debian:12", "", `{"Vulnerability":{"Name":"CVE-2023-4911","Severity":"Low"}}`},
		{opPost, "debian:12", "", `{"Vulnerability":{"Name":"X","Severity":"Bad"}}`},
		{opPost, "debian:12", "", `{"Vulnerability":{"Name":"X","FixedIn":[{"Name":"zlib","Version":"not a version!"}]}}`},
		{opPost, "debian:12", "", `{"Vulnerability":{"Name":"X","NamespaceName":"ubuntu:22.04"}}`},
		{opPost, "debian:12", "", `{"Vulnerability":{"Severity":"Low"}}`},
		{opPost, "debian:12", "", `{"Vulnerability":{"Name":"X","FixedIn":[{"Name":"zlib","Version":"1","VersionFormat":"zip"}]}}`},
		{opPost, "debian:12", "", `{"Vulnerability":{"Name":"CVE-1","Description":"x"}}}`},
		{opPut, "debian:12", "CVE-2099-0042", `{"Vulnerability":{"Name":"ignored","Severity":"Low","Description":"new"}}`},
		{opPut, "debian:12", "CVE-2099-0042", `{"Vulnerability":{"Severity":"Low","FixedIn":[{"Name":"a","Version":"1"}]}}`},
		{opPut, "debian:12", "CVE-2023-45853", `{"Vulnerability":{"Severity":"Critical","Link":"https://example/y"}}`},
		{opPutFix, "debian:12", "CVE-2099-0042", `{"Feature":{"Name":"zlib","Version":"1:1.3.1-1"}}`},
		{opPutFix, "debian:12", "CVE-2099-0042", `{"Feature":{"Name":"bash","Version":"None"}}`},
		{opPutFix, "debian:12", "CVE-2023-4911", `{"Feature":{"Name":"glibc","Version":"2.36-9+deb12u4"}}`},
		{opPutFix, "debian:12", "CVE-2099-9999", `{"Feature":{"Name":"zlib","Version":"1"}}`},
		{opPutFix, "debian:12", "CVE-2099-0042", `{"Feature":{"Name":"zlib","Version":""}}`},
	} {
		f.Add(s.op, s.ns, s.name, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, op uint8, ns, name string, body []byte) {
		op %= ops
		ns, name = pathName(ns, "debian:12"), pathName(name, "CVE-2099-0042")
		base := "/v1/namespaces/" + segment(ns) + "/vulnerabilities"
		var v vulnEnvelope
		var fix featureEnvelope
		var req *http.Request
		allowed := []int{200, 201, 400, 413}
		unroutable := ns == noRoute || op != opPost && name == noRoute
		switch op {
		case opPost: // the name is the body's
			if json.Unmarshal(body, &v) == nil && v.Vulnerability != nil {
				name = v.Vulnerability.Name
			}
			req = httptest.NewRequest("POST", base, bytes.NewReader(body))
		case opPut:
			json.Unmarshal(body, &v)
			req = httptest.NewRequest("PUT", base+"/"+segment(name), bytes.NewReader(body))
		case opPutFix: // the feature in the path is the body's, which must match
			feature := "zlib"
			if json.Unmarshal(body, &fix) == nil && fix.Feature != nil && fix.Feature.Name != "" {
				feature = fix.Feature.Name
			}
			req = httptest.NewRequest("PUT", base+"/"+segment(name)+"/fixes/"+segment(feature), bytes.NewReader(body))
			allowed = []int{200, 400, 404, 413}
			unroutable = unroutable || feature == noRoute
		}
		if unroutable {
			allowed = []int{404, 413}
		}
		before := fz.vulnerability(t, ns, name)
		rec := fz.serve(t, req, allowed...)
		if rec.Code >= 400 {
			if after := fz.vulnerability(t, ns, name); !reflect.DeepEqual(before, after) {
				t.Fatalf("refused request (%d) changed %s/%s: %+v -> %+v", rec.Code, ns, name, before, after)
			}
			return
		}
		acceptedJSON(t, body)
		if op == opPutFix {
			var got featureEnvelope
			decodeAnswer(t, rec, &got)
			posted := fix.Feature
			if g := got.Feature; g == nil || g.Name != posted.Name || g.Version != posted.Version || g.NamespaceName != ns {
				t.Fatalf("fix %+v of %s/%s answered %+v", posted, ns, name, got.Feature)
			}
			rec = fz.serve(t, httptest.NewRequest("GET", base+"/"+segment(name)+"/fixes", nil), 200)
			var fixes featureEnvelope
			decodeAnswer(t, rec, &fixes)
			if !slices.ContainsFunc(fixes.Features, func(g Feature) bool { return g.Name == posted.Name && g.Version == posted.Version }) {
				t.Fatalf("fix %+v of %s/%s not read back: %+v", posted, ns, name, fixes.Features)
			}
			return
		}
		var got vulnEnvelope
		decodeAnswer(t, rec, &got)
		p, g := v.Vulnerability, got.Vulnerability
		if g == nil || g.Name != name || g.NamespaceName != ns || g.Severity != clairSeverity(p.Severity) ||
			g.Description != p.Description || g.Link != p.Link || len(g.Metadata)+len(p.Metadata) > 0 && !reflect.DeepEqual(g.Metadata, p.Metadata) {
			t.Fatalf("%s of %s/%s %+v answered %+v", req.Method, ns, name, p, g)
		}
		if created := before == nil || !before.API; created != (rec.Code == http.StatusCreated) {
			t.Fatalf("%s of %s/%s answered %d; an API record existed before: %v", req.Method, ns, name, rec.Code, !created)
		}
		if op == opPost {
			for _, pf := range p.FixedIn {
				if !slices.ContainsFunc(g.FixedIn, func(gf Feature) bool { return gf.Name == pf.Name && gf.Version == pf.Version }) {
					t.Fatalf("posted fix %+v not in the answer %+v", pf, g.FixedIn)
				}
			}
		} else {
			after := fz.vulnerability(t, ns, name)
			if before != nil && !reflect.DeepEqual(before.FixedIn, after.FixedIn) || before == nil && len(after.FixedIn) > 0 {
				t.Fatalf("PUT %s/%s changed its fixes: %+v -> %+v", ns, name, before, after.FixedIn)
			}
		}
		read := fz.serve(t, httptest.NewRequest("GET", base+"/"+segment(name)+"?fixedIn", nil), 200)
		if !bytes.Equal(read.Body.Bytes(), rec.Body.Bytes()) {
			t.Fatalf("%s/%s reads back as %s, answered %s", ns, name, read.Body.Bytes(), rec.Body.Bytes())
		}
	})
}

// FuzzIndexReport posts fuzzed v2 image manifests. A refused manifest is
// not stored; an accepted one answers 201 only when it was not indexed
// before, and its index and vulnerability reports read back.
func FuzzIndexReport(f *testing.F) {
	fz := newFuzzServer(f, nil)
	importTracker(f, fz.st)
	base, pkgs := fz.blobLayer(f, "base.tar"), fz.blobLayer(f, "pkgs.tar")
	withAuth := base
	withAuth.Headers = map[string][]string{"Authorization": {"Bearer <token>"}}
	wrong := pkgs
	wrong.URI = base.URI
	manifest := func(hash string, layers ...ManifestLayer) string {
		b, err := json.Marshal(Manifest{Hash: hash, Layers: layers})
		if err != nil {
			f.Fatal(err)
		}
		return string(b)
	}
	digest := func(b string) string { return "sha256:" + strings.Repeat(b, 32) }
	for _, body := range []string{
		manifest(digest("ab"), withAuth, pkgs),
		manifest(digest("cd"), base),
		manifest(digest("ef"), wrong),
		manifest("sha256:xyz", base),
		manifest(digest("01")),
		manifest(digest("02"), ManifestLayer{Hash: base.Hash}),
		manifest(digest("03"), ManifestLayer{Hash: base.Hash, URI: "ftp://127.0.0.1/layer.tar"}),
		manifest(digest("04"), ManifestLayer{Hash: base.Hash, URI: "http://127.0.0.1:1/x"}),
		manifest(digest("05"), ManifestLayer{Hash: base.Hash, URI: base.URI, Headers: map[string][]string{"X-A": {"1\n2"}}}),
		manifest(digest("06"), ManifestLayer{Hash: "sha256:" + strings.Repeat("0", 64), URI: "http://" + blobHost + "/garbage.tar"}),
		`{"hash":`,
		manifest(digest("07"), base) + `{}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m Manifest
		indexed := false
		hashOK := json.Unmarshal(body, &m) == nil && digestRE.MatchString(m.Hash)
		if hashOK {
			var err error
			if _, indexed, err = fz.st.ImageIndex(context.Background(), m.Hash, index.Version); err != nil {
				t.Fatal(err)
			}
		}
		rec := fz.serve(t, httptest.NewRequest("POST", "/v2/index_report", bytes.NewReader(body)), 200, 201, 400, 413, 422, 429)
		if rec.Code >= 400 {
			if hashOK && !indexed {
				fz.serve(t, httptest.NewRequest("GET", "/v2/index_report/"+m.Hash, nil), 404)
			}
			return
		}
		acceptedJSON(t, body)
		if created := rec.Code == http.StatusCreated; created == indexed {
			t.Fatalf("manifest %s answered %d; indexed before: %v", m.Hash, rec.Code, indexed)
		}
		if loc := rec.Header().Get("Location"); loc != "/v2/index_report/"+m.Hash {
			t.Fatalf("Location %q", loc)
		}
		var posted, read any
		decodeAnswer(t, rec, &posted)
		decodeAnswer(t, fz.serve(t, httptest.NewRequest("GET", "/v2/index_report/"+m.Hash, nil), 200), &read)
		if !reflect.DeepEqual(posted, read) {
			t.Fatalf("index report of %s reads back as %v, answered %v", m.Hash, read, posted)
		}
		fz.serve(t, httptest.NewRequest("GET", "/v2/vulnerability_report/"+m.Hash, nil), 200)
	})
}

// FuzzListQuery sends fuzzed limit and page parameters, to fuzzed
// namespaces, to GET /v1/namespaces/{ns}/vulnerabilities. 404 is only for
// a namespace without data (or no route), 200 only for a valid limit and
// page token; a page lists at most limit vulnerabilities of the namespace
// in name order after the token's position, and its NextPage continues
// after its last, or is absent when nothing follows.
func FuzzListQuery(f *testing.F) {
	fz := newFuzzServer(f, nil)
	importTracker(f, fz.st)
	putVulnerability(f, fz.st, "debian:12", Vulnerability{Name: "CVE-2099-0042", Severity: "High"})
	putVulnerability(f, fz.st, "alpine:3.20", Vulnerability{Name: "CVE-2099-0043"})
	pages := fz.s.opt.Pages
	tok, err := pages.Encode(vulnPage{NS: "debian:12", After: "CVE-2023-4911"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ ns, limit, page string }{
		{"debian:12", "2", ""},
		{"debian:12", "2", tok},
		{"debian:12", "0", ""},
		{"debian:12", "1000", ""},
		{"debian:12", "5000", ""},
		{"alpine:3.20", "1", ""},
		{"alpine:3.20", "1", tok},
		{"nope:1", "5", ""},
		{"debian:12", "x", ""},
		{"debian:12", "", ""},
		{"debian:12", "-1", ""},
		{"debian:12", "1", tok[:len(tok)-1] + "A"},
	} {
		f.Add(s.ns, s.limit, s.page)
	}
	f.Fuzz(func(t *testing.T, ns, limitParam, page string) {
		ctx := context.Background()
		ns = pathName(ns, "debian:12")
		q := url.Values{"limit": {limitParam}}
		if page != "" {
			q.Set("page", page)
		}
		req := httptest.NewRequest("GET", "/v1/namespaces/"+segment(ns)+"/vulnerabilities?"+q.Encode(), nil)
		rec := fz.serve(t, req, 200, 400, 404)
		switch rec.Code {
		case http.StatusBadRequest:
			return
		case http.StatusNotFound:
			nss, err := fz.st.ClairNamespaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(nss, func(n store.ClairNamespace) bool { return n.Name == ns }) {
				t.Fatalf("namespace %q holds data, yet answered 404", ns)
			}
			return
		}
		limit, err := strconv.Atoi(limitParam)
		if err != nil || limit < 0 {
			t.Fatalf("limit %q answered 200", limitParam)
		}
		var pos vulnPage
		if page != "" {
			if err := pages.Decode(page, &pos); err != nil || pos.NS != ns {
				t.Fatalf("page token %q (%v, for %q) answered 200 in %q", page, err, pos.NS, ns)
			}
		}
		var list vulnEnvelope
		decodeAnswer(t, rec, &list)
		limit = min(limit, maxPageSize)
		if len(list.Vulnerabilities) > limit {
			t.Fatalf("%d vulnerabilities, limit %d", len(list.Vulnerabilities), limit)
		}
		last := pos.After
		for _, v := range list.Vulnerabilities {
			if v.Name <= last || v.NamespaceName != ns {
				t.Fatalf("%s/%s listed after %q in %q", v.NamespaceName, v.Name, last, ns)
			}
			last = v.Name
		}
		if list.NextPage == "" {
			rest, err := fz.st.ClairVulnerabilityNames(ctx, ns, last, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) > 0 {
				t.Fatalf("no NextPage after %q, yet %q follows", last, rest[0])
			}
			return
		}
		var next vulnPage
		if err := pages.Decode(list.NextPage, &next); err != nil || next != (vulnPage{NS: ns, After: last}) || len(list.Vulnerabilities) != limit {
			t.Fatalf("NextPage %+v (%v) after %d of limit %d ending at %q", next, err, len(list.Vulnerabilities), limit, last)
		}
	})
}

// signJWT is a compact JWS of header and claims as given, signed with key
// by the HMAC the header names (HS256 when it names none of them).
func signJWT(key, header, claims []byte) string {
	msg := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	mac := hmac.New(jwtHash(header), key)
	mac.Write([]byte(msg))
	return msg + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// jwtHash is the hash of the HMAC a JWS header names; sha256 when it
// names no HMAC (then no token with it passes).
func jwtHash(header []byte) func() hash.Hash {
	var h struct {
		Alg string `json:"alg"`
	}
	json.Unmarshal(header, &h)
	switch h.Alg {
	case "HS384":
		return sha512.New384
	case "HS512":
		return sha512.New
	}
	return sha256.New
}

// tokenPasses says whether the Authorization value authz must pass a PSK
// authenticator (key, issuers) at now, worked out apart from Verify: a
// "Bearer " JWS signed by the HMAC its header names, with claims whose
// iss is allowed and whose exp and nbf, compared as the seconds they say,
// hold with 15 s of leeway. sure is false within a millisecond of a bound,
// where rounding may go either way.
func tokenPasses(key []byte, issuers []string, now time.Time, authz string) (valid, sure bool) {
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if !ok || len(parts) != 3 {
		return false, true
	}
	seg := make([][]byte, 3)
	for i, p := range parts {
		var err error
		if seg[i], err = base64.RawURLEncoding.DecodeString(p); err != nil {
			return false, true
		}
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string   `json:"iss"`
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
	}
	if json.Unmarshal(seg[0], &header) != nil || !slices.Contains([]string{"HS256", "HS384", "HS512"}, header.Alg) {
		return false, true
	}
	mac := hmac.New(jwtHash(seg[0]), key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(mac.Sum(nil), seg[2]) || json.Unmarshal(seg[1], &claims) != nil || !slices.Contains(issuers, claims.Iss) {
		return false, true
	}
	t := float64(now.UnixNano()) / 1e9
	valid, sure = true, true
	// exp: valid while t <= exp+15; nbf: once t >= nbf-15.
	for _, b := range []struct {
		claim *float64
		sign  float64
	}{{claims.Exp, 1}, {claims.Nbf, -1}} {
		if b.claim == nil {
			continue
		}
		margin := b.sign * (*b.claim + b.sign*15 - t)
		valid = valid && margin >= 0
		sure = sure && math.Abs(margin) > 1e-3
	}
	return valid, sure
}

// FuzzAuthorization sends fuzzed Authorization values to a server with
// PSK authentication: authz as it is, and "Bearer " with a JWS of the
// fuzzed header and claims signed with the key. Each answers 200 exactly
// when tokenPasses says so, else 401 with Clair's body and a Bearer
// challenge.
func FuzzAuthorization(f *testing.F) {
	key := []byte("a pre-shared key of some length")
	now := time.Unix(1_700_000_000, 0)
	issuers := []string{"quay"}
	fz := newFuzzServer(f, func(o *Options) {
		o.Auth = &Authenticator{Key: key, Issuers: issuers, Now: func() time.Time { return now }}
	})
	good := jwt(key, map[string]any{"iss": "quay", "exp": now.Unix() + 60})
	hs256 := `{"alg":"HS256","typ":"JWT"}`
	for _, s := range []struct{ authz, header, claims string }{
		{"Bearer " + good, hs256, `{"iss":"quay","exp":1700000060}`},
		{"", `{"alg":"HS512"}`, `{"iss":"quay","nbf":1699999990}`},
		{"Bearer abc", `{"alg":"HS384"}`, `{"iss":"mallory"}`},
		{"Bearer", hs256, `{"iss":"quay","exp":1e300}`},
		{"Bearer ", hs256, `{"iss":"quay","nbf":1e300}`},
		{"Basic " + good, `{"alg":"none"}`, `{"iss":"quay"}`},
		{"Bearer " + good[:len(good)-2] + "AA", hs256, `{"iss":"quay","exp":1699999900}`},
		{"Bearer  " + good + " ", hs256, `{"exp":1700000060}`},
		{"Bearer " + jwt([]byte("another key of the same length!"), map[string]any{"iss": "quay"}), hs256, `{"iss":"quay","exp":"soon"}`},
	} {
		f.Add(s.authz, []byte(s.header), []byte(s.claims))
	}
	f.Fuzz(func(t *testing.T, authz string, header, claims []byte) {
		for _, a := range []string{authz, "Bearer " + signJWT(key, header, claims)} {
			req := httptest.NewRequest("GET", "/v1/namespaces", nil)
			req.Header["Authorization"] = []string{a}
			rec := fz.serve(t, req, 200, 401)
			if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("401 without a Bearer challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
			if valid, sure := tokenPasses(key, issuers, now, a); sure && valid != (rec.Code == http.StatusOK) {
				t.Fatalf("Authorization %q answered %d %s, want it to pass: %v", a, rec.Code, rec.Body.Bytes(), valid)
			}
		}
	})
}
