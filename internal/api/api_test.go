package api

import (
	"archive/tar"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/pagetoken"
	"github.com/vigil-scanner/vigil/internal/report"
)

// writeLayer writes a plain layer tar holding files (path → contents).
func writeLayer(t testing.TB, dir, name string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, c := range files {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(c))
	}
	tw.Close()
	if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

const osRelease = "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"
const dpkgStatus = "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n"

func TestPostLayerErrors(t *testing.T) {
	dir := t.TempDir()
	writeLayer(t, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	writeLayer(t, dir, "nos.tar", map[string]string{"var/lib/dpkg/status": dpkgStatus})
	os.WriteFile(filepath.Join(dir, "garbage.tar"), bytes.Repeat([]byte("x"), 2000), 0o644)
	os.WriteFile(filepath.Join(dir, "xz.tar"), []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, 0o644)
	blobs := newBlobServer(t, dir)
	_, ts := newServer(t, openStore(t), nil)
	auth := map[string]string{"Authorization": blobAuth}
	cases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"malformed JSON", `{"Layer":`, 400, "malformed JSON"},
		{"no Layer", `{}`, 400, "no Layer"},
		{"no name", `{"Layer":{"Path":"http://x/","Format":"Docker"}}`, 400, "Name"},
		{"no path", `{"Layer":{"Name":"a","Format":"Docker"}}`, 400, "Path"},
		{"no format", `{"Layer":{"Name":"a","Path":"http://x/"}}`, 400, "Format"},
		{"bad format", `{"Layer":{"Name":"a","Path":"http://x/","Format":"OCI"}}`, 400, "unsupported Format"},
		{"unknown parent", `{"Layer":{"Name":"a","Path":"` + blobs.URL + `/base.tar","Format":"Docker","ParentName":"nope","Headers":{"Authorization":"Bearer s3cret"}}}`, 400, "parent layer is unknown"},
		{"unreachable", `{"Layer":{"Name":"a","Path":"http://127.0.0.1:1/x.tar","Format":"Docker"}}`, 400, "could not find layer"},
		{"404 blob", `{"Layer":{"Name":"a","Path":"` + blobs.URL + `/missing.tar","Format":"Docker","Headers":{"Authorization":"Bearer s3cret"}}}`, 400, "could not find layer"},
		{"no auth header", `{"Layer":{"Name":"a","Path":"` + blobs.URL + `/base.tar","Format":"Docker"}}`, 400, "401"},
		{"local path refused", `{"Layer":{"Name":"a","Path":"/etc/passwd","Format":"Docker"}}`, 400, "local paths are not allowed"},
		{"not a tar", `{"Layer":{"Name":"a","Path":"` + blobs.URL + `/garbage.tar","Format":"Docker","Headers":{"Authorization":"Bearer s3cret"}}}`, 422, "unreadable"},
		{"xz", `{"Layer":{"Name":"a","Path":"` + blobs.URL + `/xz.tar","Format":"Docker","Headers":{"Authorization":"Bearer s3cret"}}}`, 422, "xz"},
		{"no OS", `{"Layer":{"Name":"a","Path":"` + blobs.URL + `/nos.tar","Format":"Docker","Headers":{"Authorization":"Bearer s3cret"}}}`, 422, "not supported"},
		{"oversized body", `{"Layer":{"Name":"` + strings.Repeat("a", maxBodySize) + `"}}`, 413, "larger than"},
	}
	for _, c := range cases {
		var e errorBody
		code := call(t, "POST", ts.URL+"/v1/layers", c.body, &e)
		if code != c.code || !strings.Contains(e.Error.Message, c.msg) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, code, e.Error.Message, c.code, c.msg)
		}
	}
	// Nothing was stored by the failures; a good layer then its child work.
	if code := call(t, "GET", ts.URL+"/v1/layers/a", nil, nil); code != 404 {
		t.Fatalf("failed posts stored layer a: %d", code)
	}
	for _, l := range []Layer{{Name: "a", Path: blobs.URL + "/base.tar", Format: "Docker", Headers: auth},
		{Name: "b", ParentName: "a", Path: blobs.URL + "/nos.tar", Format: "Docker", Headers: auth}} {
		if code := call(t, "POST", ts.URL+"/v1/layers", layerEnvelope{&l}, nil); code != 201 {
			t.Fatalf("post %s: %d", l.Name, code)
		}
	}
	var got layerEnvelope
	call(t, "GET", ts.URL+"/v1/layers/b?features", nil, &got)
	if f := got.Layer.Features; len(f) != 1 || f[0].Name != "zlib1g" || f[0].AddedBy != "b" || f[0].NamespaceName != "debian:12" {
		t.Fatalf("features of b = %+v", f)
	}
}

func TestACILayerAndLocalPaths(t *testing.T) {
	dir := t.TempDir()
	writeLayer(t, dir, "image.aci", map[string]string{"manifest": `{"acKind":"ImageManifest"}`, "rootfs/etc/os-release": osRelease, "rootfs/var/lib/dpkg/status": dpkgStatus})
	_, ts := newServer(t, openStore(t), func(o *Options) { o.Fetch.AllowLocalPaths = true })
	l := Layer{Name: "aci", Path: filepath.Join(dir, "image.aci"), Format: "ACI"}
	if code := call(t, "POST", ts.URL+"/v1/layers", layerEnvelope{&l}, nil); code != 201 {
		t.Fatalf("post: %d", code)
	}
	var got layerEnvelope
	call(t, "GET", ts.URL+"/v1/layers/aci?features", nil, &got)
	if f := got.Layer.Features; got.Layer.NamespaceName != "debian:12" || len(f) != 1 || f[0].Name != "zlib1g" {
		t.Fatalf("ACI layer = %+v", got.Layer)
	}
}

func TestVulnerabilityRoutesAndPagination(t *testing.T) {
	st := openStore(t)
	importTracker(t, st)
	_, ts := newServer(t, st, nil)
	_, other := newServer(t, st, nil) // same key, another instance
	ns := ts.URL + "/v1/namespaces/debian:12/vulnerabilities"

	var nss struct{ Namespaces []Namespace }
	call(t, "GET", ts.URL+"/v1/namespaces", nil, &nss)
	if len(nss.Namespaces) != 1 || nss.Namespaces[0] != (Namespace{"debian:12", "dpkg"}) {
		t.Fatalf("namespaces = %+v", nss)
	}
	post := vulnEnvelope{Vulnerability: &Vulnerability{Name: "CVE-2099-0042", Severity: "High", Description: "d", Link: "https://example/x",
		Metadata: map[string]any{"NVD": map[string]any{"CVSSv2": map[string]any{"Score": 7.5}}},
		FixedIn:  []Feature{{Name: "zlib", Version: "1:1.3-1"}, {Name: "bash", Version: "None"}}}}
	var created vulnEnvelope
	if code := call(t, "POST", ns, post, &created); code != 201 || len(created.Vulnerability.FixedIn) != 2 {
		t.Fatalf("post: %d %+v", code, created.Vulnerability)
	}
	for body, want := range map[string]string{
		`{"Vulnerability":{"Name":"X","Severity":"Bad"}}`:                                                "Severity",
		`{"Vulnerability":{"Name":"X","FixedIn":[{"Name":"zlib","Version":"not a version!"}]}}`:          "Version",
		`{"Vulnerability":{"Name":"X","NamespaceName":"ubuntu:22.04"}}`:                                  "NamespaceName",
		`{"Vulnerability":{"Severity":"Low"}}`:                                                           "Name",
		`{"Vulnerability":{"Name":"X","FixedIn":[{"Name":"zlib","Version":"1","VersionFormat":"zip"}]}}`: "VersionFormat",
	} {
		var e errorBody
		if code := call(t, "POST", ns, body, &e); code != 400 || !strings.Contains(e.Error.Message, want) {
			t.Errorf("post %s: %d %q", body, code, e.Error.Message)
		}
	}

	// Pages of 2 over 5 vulnerabilities (4 from the tracker that affect
	// something, or not: CVE-2099-1003 is not-affected everywhere), each
	// page from the other instance.
	var all []string
	url := ns + "?limit=2"
	for i := 0; i < 10; i++ {
		var page vulnEnvelope
		srv := ts.URL
		if i%2 == 1 {
			srv = other.URL
		}
		if code := call(t, "GET", strings.Replace(url, ts.URL, srv, 1), nil, &page); code != 200 {
			t.Fatalf("page %d: %d", i, code)
		}
		for _, v := range page.Vulnerabilities {
			all = append(all, v.Name)
		}
		if page.NextPage == "" {
			break
		}
		url = ns + "?limit=2&page=" + page.NextPage
	}
	if got := strings.Join(all, " "); got != "CVE-2023-45853 CVE-2023-4911 CVE-2099-0042 CVE-2099-1001 CVE-2099-1002" {
		t.Fatalf("listed %s", got)
	}
	// Tampered, foreign-key and expired tokens are 400; so is a bad limit.
	var first vulnEnvelope
	call(t, "GET", ns+"?limit=1", nil, &first)
	raw, _ := base64.RawURLEncoding.DecodeString(first.NextPage)
	raw[len(raw)-1] ^= 1
	otherKey, _ := pagetoken.New(bytes.Repeat([]byte{8}, 32), time.Hour)
	foreign, _ := otherKey.Encode(vulnPage{NS: "debian:12", After: "A"})
	expiring, _ := pagetoken.New(testKey, time.Second)
	expired, _ := expiring.Encode(vulnPage{NS: "debian:12", After: "A"})
	time.Sleep(1100 * time.Millisecond)
	for _, q := range []string{"?limit=1&page=" + base64.RawURLEncoding.EncodeToString(raw), "?limit=1&page=" + foreign,
		"?limit=1&page=" + expired, "?limit=x", "", "?limit=-1"} {
		var e errorBody
		if code := call(t, "GET", ns+q, nil, &e); code != 400 || e.Error.Message == "" {
			t.Errorf("GET %s: %d %q, want 400", q, code, e.Error.Message)
		}
	}
	if code := call(t, "GET", ts.URL+"/v1/namespaces/nope:1/vulnerabilities?limit=5", nil, nil); code != 404 {
		t.Errorf("unknown namespace: %d", code)
	}

	// One vulnerability, its fixes, changes through the right path.
	v1 := ns + "/CVE-2099-0042"
	var got vulnEnvelope
	call(t, "GET", v1+"?fixedIn", nil, &got)
	if got.Vulnerability.Severity != "High" || len(got.Vulnerability.FixedIn) != 2 || got.Vulnerability.Metadata["NVD"] == nil {
		t.Fatalf("get = %+v", got.Vulnerability)
	}
	if code := call(t, "PUT", v1, `{"Vulnerability":{"Severity":"Low","FixedIn":[{"Name":"a","Version":"1"}]}}`, nil); code != 400 {
		t.Errorf("PUT with FixedIn: %d", code)
	}
	if code := call(t, "PUT", v1, `{"Vulnerability":{"Name":"ignored","Severity":"Low","Description":"new"}}`, &got); code != 200 || got.Vulnerability.Severity != "Low" || got.Vulnerability.Name != "CVE-2099-0042" {
		t.Errorf("PUT: %d %+v", code, got.Vulnerability)
	}
	var fixes featureEnvelope
	call(t, "GET", v1+"/fixes", nil, &fixes)
	if len(fixes.Features) != 2 || fixes.Features[0].Name != "bash" || fixes.Features[0].Version != "None" {
		t.Fatalf("fixes = %+v", fixes.Features)
	}
	if code := call(t, "PUT", v1+"/fixes/zlib", `{"Feature":{"Name":"zlib","Version":"1:1.3.1-1"}}`, &fixes); code != 200 || fixes.Feature.Version != "1:1.3.1-1" {
		t.Errorf("PUT fix: %d %+v", code, fixes.Feature)
	}
	if code := call(t, "PUT", v1+"/fixes/zlib", `{"Feature":{"Name":"curl","Version":"1"}}`, nil); code != 400 {
		t.Errorf("PUT fix with another name: %d", code)
	}
	if code := call(t, "DELETE", v1+"/fixes/bash", nil, nil); code != 200 {
		t.Errorf("DELETE fix: %d", code)
	}
	if code := call(t, "DELETE", v1+"/fixes/bash", nil, nil); code != 404 {
		t.Errorf("DELETE fix again: %d", code)
	}
	call(t, "GET", v1+"/fixes", nil, &fixes)
	if len(fixes.Features) != 1 || fixes.Features[0].Version != "1:1.3.1-1" {
		t.Fatalf("fixes after changes = %+v", fixes.Features)
	}
	var e errorBody
	if code := call(t, "DELETE", ns+"/CVE-2099-1001", nil, &e); code != 400 || !strings.Contains(e.Error.Message, "feed data") {
		t.Errorf("DELETE of a feed vulnerability: %d %q", code, e.Error.Message)
	}
	if code := call(t, "DELETE", v1, nil, nil); code != 200 {
		t.Errorf("DELETE: %d", code)
	}
	for _, u := range []string{v1, v1 + "/fixes"} {
		if code := call(t, "GET", u, nil, nil); code != 404 {
			t.Errorf("GET %s after delete: %d", u, code)
		}
	}
	if code := call(t, "GET", ts.URL+"/v1/notifications/x?limit=1", nil, &e); code != 404 {
		t.Errorf("notifications without a notifier: %d", code)
	}
}

// jwt makes an HS256 token with the given claims.
func jwt(key []byte, claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	c, _ := json.Marshal(claims)
	p := base64.RawURLEncoding.EncodeToString(c)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h + "." + p))
	return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestAuthAndHealth(t *testing.T) {
	key := []byte("a pre-shared key of some length")
	st := openStore(t)
	s, ts := newServer(t, st, func(o *Options) { o.Auth = &Authenticator{Key: key, Issuers: []string{"quay"}} })
	now := time.Now().Unix()
	good := jwt(key, map[string]any{"iss": "quay", "exp": now + 60})
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + strings.Split(good, ".")[1] + "."
	for name, tok := range map[string]string{
		"none":       "",
		"garbage":    "Bearer abc",
		"other key":  "Bearer " + jwt([]byte("another key of the same length!"), map[string]any{"iss": "quay"}),
		"bad issuer": "Bearer " + jwt(key, map[string]any{"iss": "mallory"}),
		"expired":    "Bearer " + jwt(key, map[string]any{"iss": "quay", "exp": now - 60}),
		"not yet":    "Bearer " + jwt(key, map[string]any{"iss": "quay", "nbf": now + 60}),
		"alg none":   "Bearer " + none,
		"not bearer": "Basic " + good,
		"tampered":   "Bearer " + good[:len(good)-2] + "AA",
		"no iss":     "Bearer " + jwt(key, map[string]any{"exp": now + 60}),
	} {
		var e errorBody
		code := call(t, "GET", ts.URL+"/v1/namespaces", nil, &e, "Authorization", tok)
		if code != http.StatusUnauthorized || e.Error.Message == "" {
			t.Errorf("%s: %d %q, want 401", name, code, e.Error.Message)
		}
	}
	if code := call(t, "GET", ts.URL+"/v1/namespaces", nil, nil, "Authorization", "Bearer "+good); code != 200 {
		t.Errorf("valid token: %d", code)
	}
	hs := httptest.NewServer(s.HealthHandler())
	defer hs.Close()
	if code := call(t, "GET", hs.URL+"/healthz", nil, nil); code != 200 {
		t.Errorf("health: %d", code)
	}
	st.Close()
	if code := call(t, "GET", hs.URL+"/healthz", nil, nil); code != 503 {
		t.Errorf("health with the database closed: %d", code)
	}
}

func TestRequestIDMetricsAndLimits(t *testing.T) {
	dir := t.TempDir()
	writeLayer(t, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		http.ServeFile(w, r, filepath.Join(dir, "base.tar"))
	}))
	defer slow.Close()
	_, ts := newServer(t, openStore(t), func(o *Options) { o.IndexConcurrency = 1 })

	req, _ := http.NewRequest("GET", ts.URL+"/v1/namespaces", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "abc-123" || resp.Header.Get("Content-Type") != "application/json;charset=utf-8" {
		t.Errorf("headers = %v", resp.Header)
	}

	done := make(chan int)
	go func() {
		done <- call(t, "POST", ts.URL+"/v1/layers", layerEnvelope{&Layer{Name: "slow", Path: slow.URL + "/l.tar", Format: "Docker"}}, nil)
	}()
	<-started
	var e errorBody
	if code := call(t, "POST", ts.URL+"/v1/layers", layerEnvelope{&Layer{Name: "other", Path: slow.URL + "/l.tar", Format: "Docker"}}, &e); code != http.StatusTooManyRequests {
		t.Errorf("second indexing request: %d %q, want 429", code, e.Error.Message)
	}
	close(release)
	if code := <-done; code != 201 {
		t.Errorf("first indexing request: %d", code)
	}

	resp, err = http.Get(ts.URL + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_api_requests_total{code="429",route="POST /v1/layers"} 1`, `vigil_api_requests_total{code="201",route="POST /v1/layers"} 1`,
		`clair_api_response_duration_milliseconds_count{code="200",route="GET /v1/namespaces"} 1`, "vigil_api_indexing_rejected_total 1"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	_, ts := newServer(t, openStore(t), func(o *Options) { o.Timeout = 200 * time.Millisecond })
	var e struct {
		Error struct{ Message, Type string }
	}
	code := call(t, "POST", ts.URL+"/v1/layers", layerEnvelope{&Layer{Name: "h", Path: hang.URL + "/l.tar", Format: "Docker"}}, &e)
	if code != 503 || e.Error.Type != "Timeout" || !strings.Contains(e.Error.Message, "timeout window") {
		t.Fatalf("timeout: %d %+v", code, e)
	}
}

func TestImageAPI(t *testing.T) {
	dir := t.TempDir()
	base := writeLayer(t, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	pkgs := writeLayer(t, dir, "pkgs.tar", map[string]string{"var/lib/dpkg/status": dpkgStatus})
	digest := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		s := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(s[:])
	}
	blobs := newBlobServer(t, dir)
	st := openStore(t)
	importTracker(t, st)
	_, ts := newServer(t, st, nil)
	hdr := map[string][]string{"Authorization": {blobAuth}}
	m := Manifest{Hash: "sha256:" + strings.Repeat("ab", 32), Layers: []ManifestLayer{
		{Hash: digest(base), URI: blobs.URL + "/" + base, Headers: hdr},
		{Hash: digest(pkgs), URI: blobs.URL + "/" + pkgs, Headers: hdr}}}
	var rep index.Report
	if code := call(t, "POST", ts.URL+"/v2/index_report", m, &rep); code != 201 {
		t.Fatalf("post: %d", code)
	}
	if rep.Distribution == nil || rep.Distribution.Namespace != "debian:12" || len(rep.Packages) != 1 || rep.Packages[0].Layer != digest(pkgs) {
		t.Fatalf("report = %+v", rep)
	}
	if n := blobs.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	if code := call(t, "POST", ts.URL+"/v2/index_report", m, &rep); code != 200 || blobs.hits.Load() != 2 {
		t.Fatalf("re-post: %d, %d fetches", code, blobs.hits.Load())
	}
	// Another image sharing the base layer fetches only its new layer.
	m2 := Manifest{Hash: "sha256:" + strings.Repeat("cd", 32), Layers: []ManifestLayer{m.Layers[0]}}
	if code := call(t, "POST", ts.URL+"/v2/index_report", m2, nil); code != 201 || blobs.hits.Load() != 2 {
		t.Fatalf("shared layer: %d, %d fetches", code, blobs.hits.Load())
	}
	var vr report.Scan
	if code := call(t, "GET", ts.URL+"/v2/vulnerability_report/"+m.Hash, nil, &vr); code != 200 {
		t.Fatalf("vulnerability report: %d", code)
	}
	if len(vr.Vulnerabilities) != 1 || vr.Vulnerabilities[0].ID != "CVE-2023-45853" || vr.Vulnerabilities[0].Layer != digest(pkgs) {
		t.Fatalf("vulnerabilities = %+v", vr.Vulnerabilities)
	}
	if code := call(t, "GET", ts.URL+"/v2/index_report/"+m.Hash, nil, &rep); code != 200 || len(rep.Packages) != 1 {
		t.Fatalf("get index report: %d", code)
	}
	for name, body := range map[string]any{
		"unknown manifest": nil,
		"bad digest":       Manifest{Hash: "sha256:xyz", Layers: m.Layers},
		"no layers":        Manifest{Hash: "sha256:" + strings.Repeat("ef", 32)},
		"wrong content":    Manifest{Hash: "sha256:" + strings.Repeat("01", 32), Layers: []ManifestLayer{{Hash: "sha256:" + strings.Repeat("02", 32), URI: blobs.URL + "/" + base, Headers: hdr}}},
	} {
		var e errorBody
		var code int
		if body == nil {
			code = call(t, "GET", ts.URL+"/v2/vulnerability_report/sha256:"+strings.Repeat("99", 32), nil, &e)
		} else {
			code = call(t, "POST", ts.URL+"/v2/index_report", body, &e)
		}
		want := map[string]int{"unknown manifest": 404}[name]
		if want == 0 {
			want = 400
		}
		if code != want || e.Error.Message == "" {
			t.Errorf("%s: %d %q, want %d", name, code, e.Error.Message, want)
		}
	}
}
