package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/vigil-scanner/vigil/internal/store"
)

// Hostile or broken feed servers, on loopback: every refusal names what
// was wrong and leaves the stored data as it was.

// gzipBomb returns a gzip stream of prefix followed by n spaces: a
// document that stays valid JSON as far as it is read.
func gzipBomb(t *testing.T, prefix []byte, n int64) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(prefix)
	if _, err := io.CopyN(zw, spaces{}, n); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return b.Bytes()
}

type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestDownloadRefusals(t *testing.T) {
	good := secdb("v3.20", "main", 40)
	// A document that parses up to a huge run of white space inside it.
	bombDoc := gzipBomb(t, good[:len(good)-3], 8<<20)
	mux := http.NewServeMux()
	serve := func(path, ctype string, status int, body []byte) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if ctype != "" {
				w.Header().Set("Content-Type", ctype)
			}
			w.WriteHeader(status)
			w.Write(body)
		})
	}
	serve("/good.json", "application/json", 200, good)
	serve("/missing.json", "text/plain", 404, []byte("not found"))
	serve("/error.json", "", 500, good)
	serve("/redirected.json", "text/html; charset=utf-8", 200, []byte("<!doctype html><html>Login</html>"))
	serve("/empty.json", "application/json", 200, nil)
	serve("/shrunk.json", "application/json", 200, secdb("v3.20", "main", 10))
	serve("/bomb.json.gz", "application/gzip", 200, bombDoc)
	mux.HandleFunc("/big.json", func(w http.ResponseWriter, r *http.Request) {
		// Refused on its Content-Length, before any of it is read.
		w.Header().Set("Content-Length", fmt.Sprint(2<<20))
		w.Write(good)
	})
	mux.HandleFunc("/streamed.json", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: chunked, caught while streaming.
		w.Write(good[:len(good)-3])
		for range 64 {
			w.Write(bytes.Repeat([]byte(" "), 64<<10))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/cut.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(good)))
		w.Write(good[:len(good)/2])
		// The handler returns early: the client sees the body cut short.
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	st := openStore(t)
	ctx := context.Background()
	opt := DefaultOptions()
	opt.Client = srv.Client()
	opt.MaxDownloadSize = 1 << 20
	opt.MaxDocumentSize = 4 << 20
	res := Update(ctx, st, []string{"alpine"}, map[string][]string{"alpine-secdb": {srv.URL + "/good.json"}}, opt)
	if len(res) != 1 || res[0].Err != nil || res[0].Scope.Advisories != 40 {
		t.Fatalf("good document: %+v", res)
	}
	before := scopes(t, st)
	if before[0].Origin != srv.URL+"/good.json" {
		t.Errorf("origin = %q", before[0].Origin)
	}
	for path, want := range map[string]string{
		"/missing.json":    "HTTP 404 Not Found",
		"/error.json":      "HTTP 500 Internal Server Error",
		"/redirected.json": "served an HTML page, not a feed document",
		"/empty.json":      "empty document",
		"/shrunk.json":     "would fall from 40 to 10 advisories",
		"/bomb.json.gz":    "document larger than the 4194304-byte limit",
		"/big.json":        "2097152 bytes exceeds the 1048576-byte download limit",
		"/streamed.json":   "download larger than the 1048576-byte limit",
		"/cut.json":        "unexpected EOF",
	} {
		u := srv.URL + path
		res := Update(ctx, st, []string{"alpine-secdb"}, map[string][]string{"alpine-secdb": {u}}, opt)
		if len(res) != 1 {
			t.Fatalf("%s: %d results", path, len(res))
		}
		err := res[0].Err
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), u) {
			t.Errorf("%s: err = %v, want %q naming the URL", path, err, want)
		}
		if path == "/shrunk.json" && !errors.Is(err, store.ErrShrunk) {
			t.Errorf("%s: err = %v, want ErrShrunk", path, err)
		}
		if got := scopes(t, st); !reflect.DeepEqual(got, before) {
			t.Errorf("%s: stored scopes changed: %+v", path, got)
		}
	}
}

// TestDownloadCancel: a server that never finishes is abandoned when the
// context ends, and the stored data is kept.
func TestDownloadCancel(t *testing.T) {
	good := secdb("v3.21", "main", 5)
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(good[:len(good)-10])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	}))
	defer srv.Close()
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	opt := DefaultOptions()
	opt.Client = srv.Client()
	res := Update(ctx, st, []string{"alpine-secdb"}, map[string][]string{"alpine-secdb": {srv.URL + "/main.json"}}, opt)
	if len(res) != 1 || !errors.Is(res[0].Err, context.Canceled) {
		t.Errorf("results = %+v, want context.Canceled", res)
	}
	if got := scopes(t, st); len(got) != 0 {
		t.Errorf("stored scopes: %+v", got)
	}
}
