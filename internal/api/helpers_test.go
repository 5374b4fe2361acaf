package api

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigil-scanner/vigil/internal/pagetoken"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/storetest"
	"github.com/vigil-scanner/vigil/internal/update"
)

// testKey is the pagination key of test servers.
var testKey = bytes.Repeat([]byte{7}, pagetoken.KeySize)

// newServer serves a new API over st on 127.0.0.1.
func newServer(t testing.TB, st *store.Store, mod func(*Options)) (*Server, *httptest.Server) {
	t.Helper()
	pages, err := pagetoken.New(testKey, pagetoken.DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Store: st, Pages: pages}
	if mod != nil {
		mod(&opt)
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), storetest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// blobServer serves the files of dir, requiring "Authorization: Bearer
// s3cret", and counts the requests it answers.
type blobServer struct {
	*httptest.Server
	hits atomic.Int64
}

const blobAuth = "Bearer s3cret"

func newBlobServer(t *testing.T, dir string) *blobServer {
	t.Helper()
	b := &blobServer{}
	files := http.FileServer(http.Dir(dir))
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if r.Header.Get("Authorization") != blobAuth {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// dockerSave is the content of a docker-save tarball, extracted.
type dockerSave struct {
	dir     string   // holds the layer blobs
	blobs   []string // layer blob file names, base first
	diffIDs []string
	imageID string
}

func extractDockerSave(t *testing.T, path string) dockerSave {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ds := dockerSave{dir: t.TempDir()}
	meta := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(h.Name, ".tar.gz") || strings.HasSuffix(h.Name, ".tar") {
			out, err := os.Create(filepath.Join(ds.dir, filepath.Base(h.Name)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
			continue
		}
		meta[h.Name], _ = io.ReadAll(tr)
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(meta["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v", err)
	}
	ds.blobs, ds.imageID = manifest[0].Layers, manifest[0].Config
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(meta[manifest[0].Config], &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	ds.diffIDs = cfg.RootFS.DiffIDs
	if len(ds.diffIDs) != len(ds.blobs) {
		t.Fatalf("%d diff IDs for %d layers", len(ds.diffIDs), len(ds.blobs))
	}
	return ds
}

// trackerDoc is a Debian security tracker document (upstream format) with
// entries for packages of the debian12-layers image: a fix newer than the
// installed openssl (affected), an old glibc fix (not affected), open
// issues in expat (unimportant) and zlib, and a not-affected tar entry.
const trackerDoc = `{
  "openssl": {"CVE-2099-1001": {"description": "test: openssl issue fixed after the image was built", "scope": "remote",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.21-1~deb12u1"}, "fixed_version": "3.0.21-1~deb12u1", "urgency": "high"}}}},
  "glibc": {"CVE-2023-4911": {"description": "A buffer overflow in the GNU C Library's dynamic loader ld.so (Looney Tunables).", "scope": "local",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "2.36-9+deb12u14"}, "fixed_version": "2.36-9+deb12u3", "urgency": "high"}}}},
  "expat": {"CVE-2099-1002": {"description": "test: open expat issue", "scope": "remote",
    "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "2.5.0-1+deb12u2"}, "urgency": "unimportant"}}}},
  "zlib": {"CVE-2023-45853": {"description": "MiniZip in zlib through 1.3 has an integer overflow.", "scope": "remote",
    "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "1:1.2.13.dfsg-1"}, "urgency": "low"}}}},
  "tar": {"CVE-2099-1003": {"description": "test: never affected", "scope": "local",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "1.34+dfsg-1.2+deb12u1"}, "fixed_version": "0", "urgency": "not yet assigned"}}}}
}`

func importTracker(t testing.TB, st *store.Store) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tracker.json")
	if err := os.WriteFile(p, []byte(trackerDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := update.ImportFile(context.Background(), st, "debian", p, update.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
}

// call sends a request with an optional JSON body and decodes the JSON
// answer into out (when non-nil), returning the status.
func call(t *testing.T, method, url string, body any, out any, header ...string) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %q: %v", method, url, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}
