package api

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// assertNotStored fails t when layer name is indexed.
func assertNotStored(t *testing.T, api, name string) {
	t.Helper()
	if code := call(t, "GET", api+"/v1/layers/"+name, nil, nil); code != http.StatusNotFound {
		t.Errorf("layer %q: GET answered %d, want 404 (nothing stored)", name, code)
	}
}

// postRaw posts body with a content type and returns the status and
// Clair error message.
func postRaw(t *testing.T, url, contentType string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, errorMessage(t, resp)
}

// errorMessage is the Clair error message of resp ("" on success); it
// fails t when an error status lacks Clair's error body.
func errorMessage(t *testing.T, resp *http.Response) string {
	t.Helper()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode < 400 {
		return ""
	}
	var e errorBody
	if err := json.Unmarshal(data, &e); err != nil || e.Error.Message == "" {
		t.Errorf("%s: status %d without Clair's error body: %q", resp.Request.URL.Path, resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json;charset=utf-8" {
		t.Errorf("%s: error with Content-Type %q", resp.Request.URL.Path, ct)
	}
	return e.Error.Message
}

// TestAbuseRequestBodies: oversized, malformed, deeply nested and
// header-stuffed bodies answer 4xx with Clair's error body and store
// nothing; unknown fields and any Content-Type are accepted, as Clair.
func TestAbuseRequestBodies(t *testing.T) {
	dir := t.TempDir()
	writeLayer(t, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	blobs := newBlobServer(t, dir)
	_, ts := newServer(t, openStore(t), nil)
	layerURL := blobs.URL + "/base.tar"
	good := func(name string) string {
		return `{"Layer":{"Name":"` + name + `","Path":"` + layerURL + `","Format":"Docker","Headers":{"Authorization":"` + blobAuth + `"}}}`
	}

	// A 100,000-entry Headers map fits in 1 MiB; it is refused by count
	// before any download.
	var many strings.Builder
	many.WriteString(`{"Layer":{"Name":"many","Path":"` + layerURL + `","Format":"Docker","Headers":{`)
	for i := range 100_000 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `"%s":""`, strconv.FormatInt(int64(i), 36))
	}
	many.WriteString(`}}}`)
	if many.Len() > maxBodySize {
		t.Fatalf("the headers body is %d bytes, over the cap it must stay under", many.Len())
	}
	// Oversized: a valid layer padded with a huge header value.
	huge := `{"Layer":{"Name":"huge","Path":"` + layerURL + `","Format":"Docker","Headers":{"X-Pad":"` + strings.Repeat("a", maxBodySize) + `"}}}`
	nested := `{"Layer":{"Name":"deep","Path":"` + layerURL + `","Format":"Docker","Headers":{"a":` + strings.Repeat("[", 300_000) + strings.Repeat("]", 300_000) + `}}}`

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("layer", "layer.json")
	fw.Write([]byte(good("multipart")))
	mw.Close()

	cases := []struct {
		name, layer, contentType, body string
		code                           int
		msg                            string
	}{
		{"oversized", "huge", "application/json", huge, 413, "larger than 1048576 bytes"},
		{"truncated", "t", "application/json", good("t")[:40], 400, "malformed JSON"},
		{"not an object", "", "application/json", `["Layer"]`, 400, "malformed JSON"},
		{"wrong type", "w", "application/json", `{"Layer":{"Name":7}}`, 400, "malformed JSON"},
		{"trailing data", "td", "application/json", good("td") + `{"Layer":{}}`, 400, "data after the JSON value"},
		{"empty body", "", "application/json", ``, 400, "malformed JSON"},
		{"nested 300k deep", "deep", "application/json", nested, 400, "malformed JSON"},
		{"100k headers", "many", "application/json", many.String(), 400, "100000 headers, more than the 32 allowed"},
		{"header name", "hn", "application/json", strings.Replace(good("hn"), `"Authorization"`, `"Bad Name"`, 1), 400, `header name "Bad Name"`},
		{"header injection", "hi", "application/json", strings.Replace(good("hi"), blobAuth, blobAuth+`\r\nX-Injected: 1`, 1), 400, "control characters"},
		{"multipart", "multipart", mw.FormDataContentType(), form.String(), 400, "malformed JSON"},
		{"unknown fields", "unknown", "application/json", `{"Extra":[1,2],"Layer":{"Bogus":{"x":1},"Name":"unknown","Path":"` + layerURL + `","Format":"Docker","Headers":{"Authorization":"` + blobAuth + `"}}}`, 201, ""},
		{"text/plain", "plain", "text/plain", good("plain"), 201, ""},
		{"curl -d", "form", "application/x-www-form-urlencoded", good("form"), 201, ""},
	}
	for _, c := range cases {
		before := blobs.hits.Load()
		code, msg := postRaw(t, ts.URL+"/v1/layers", c.contentType, []byte(c.body))
		if code != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, code, msg, c.code, c.msg)
		}
		if c.code >= 400 {
			if n := blobs.hits.Load() - before; n != 0 {
				t.Errorf("%s: refused request fetched the layer %d times", c.name, n)
			}
			if c.layer != "" {
				assertNotStored(t, ts.URL, c.layer)
			}
		} else if code := call(t, "GET", ts.URL+"/v1/layers/"+c.layer, nil, nil); code != 200 {
			t.Errorf("%s: accepted layer not stored: GET %d", c.name, code)
		}
	}

	// The image API and the vulnerability routes share the limits.
	for _, c := range []struct{ route, body string }{
		{"/v2/index_report", `{"hash":"sha256:` + strings.Repeat("ab", 32) + `","layers":[{"hash":"sha256:` + strings.Repeat("cd", 32) + `","uri":"` + layerURL + `","headers":{"X-Pad":["` + strings.Repeat("a", maxBodySize) + `"]}}]}`},
		{"/v1/namespaces/debian:12/vulnerabilities", `{"Vulnerability":{"Name":"CVE-1","Description":"` + strings.Repeat("a", maxBodySize) + `"}}`},
	} {
		if code, msg := postRaw(t, ts.URL+c.route, "application/json", []byte(c.body)); code != 413 || !strings.Contains(msg, "larger than") {
			t.Errorf("oversized %s: %d %q, want 413", c.route, code, msg)
		}
	}
	if code := call(t, "GET", ts.URL+"/v2/index_report/sha256:"+strings.Repeat("ab", 32), nil, nil); code != 404 {
		t.Errorf("oversized manifest stored: GET %d", code)
	}
	if code := call(t, "GET", ts.URL+"/v1/namespaces/debian:12/vulnerabilities/CVE-1", nil, nil); code != 404 {
		t.Errorf("oversized vulnerability stored: GET %d", code)
	}
	manyV2 := `{"hash":"sha256:` + strings.Repeat("ef", 32) + `","layers":[{"hash":"sha256:` + strings.Repeat("cd", 32) + `","uri":"` + layerURL + `","headers":{"X-A":["1\n2"]}}]}`
	if code, msg := postRaw(t, ts.URL+"/v2/index_report", "application/json", []byte(manyV2)); code != 400 || !strings.Contains(msg, "control characters") {
		t.Errorf("manifest header injection: %d %q, want 400", code, msg)
	}
}

// serveLoopback runs s.Serve on 127.0.0.1 with l's timeouts and returns
// the main listener's address; the server stops with the test.
func serveLoopback(t *testing.T, s *Server, l Listen) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	l.Addr, l.HealthAddr = "127.0.0.1:0", "127.0.0.1:0"
	l.Ready = func(a, _ net.Addr) { addr <- a.String() }
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return ""
}

// dribble writes b one byte at a time, every interval, until done or
// a write fails; it returns how many bytes were written.
func dribble(conn net.Conn, b []byte, interval time.Duration) int {
	for i := range b {
		if _, err := conn.Write(b[i : i+1]); err != nil {
			return i
		}
		time.Sleep(interval)
	}
	return len(b)
}

// TestAbuseSlowClients: a client dribbling its headers is cut off by
// ReadHeaderTimeout, one dribbling its body answers 408 (ReadTimeout),
// and an idle kept-alive connection is closed (IdleTimeout).
func TestAbuseSlowClients(t *testing.T) {
	s, _ := newServer(t, openStore(t), nil)
	addr := serveLoopback(t, s, Listen{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		// Bounds every wait below: a server that never cuts fails here.
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		return conn
	}

	t.Run("headers", func(t *testing.T) {
		conn := dial()
		// 200 bytes at 20 ms each take 4 s, far past the 300 ms allowed.
		head := []byte("GET /v1/namespaces HTTP/1.1\r\nHost: vigil\r\nX-Pad: " + strings.Repeat("p", 150) + "\r\n\r\n")
		// net/http answers 400 and closes, or just closes.
		closed := make(chan error, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode/100 != 4 || !resp.Close {
					err = fmt.Errorf("answered %s", resp.Status)
				} else if _, err = conn.Read(make([]byte, 1)); err == nil {
					err = fmt.Errorf("connection left open after the %s", resp.Status)
				} else if err == io.EOF {
					err = nil
				}
			} else if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				err = nil
			}
			closed <- err
		}()
		sent := make(chan int, 1)
		stop := make(chan struct{})
		go func() {
			n := 0
			for n < len(head) {
				select {
				case <-stop:
					sent <- n
					return
				default:
				}
				if _, err := conn.Write(head[n : n+1]); err != nil {
					break
				}
				n++
				time.Sleep(20 * time.Millisecond)
			}
			sent <- n
		}()
		err := <-closed
		close(stop)
		n := <-sent
		if err != nil {
			t.Fatalf("dribbled headers: %v", err)
		}
		if n >= len(head) {
			t.Fatalf("all %d header bytes were sent before the server cut the connection", n)
		}
		t.Logf("connection cut after %d of %d header bytes", n, len(head))
	})

	t.Run("body", func(t *testing.T) {
		conn := dial()
		body := []byte(`{"Layer":{"Name":"slow","Path":"http://127.0.0.1:1/x","Format":"Docker","Headers":{"X-Pad":"` + strings.Repeat("p", 200) + `"}}}`)
		fmt.Fprintf(conn, "POST /v1/layers HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		sent := make(chan int, 1)
		go func() { sent <- dribble(conn, body, 20*time.Millisecond) }()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no response to a dribbled body: %v", err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var e errorBody
		if resp.StatusCode != http.StatusRequestTimeout || json.Unmarshal(data, &e) != nil || !strings.Contains(e.Error.Message, "not received in time") {
			t.Fatalf("dribbled body: %d %q, want 408 with Clair's error body", resp.StatusCode, data)
		}
		conn.Close()
		if n := <-sent; n >= len(body) {
			t.Fatalf("the whole body was sent (%d bytes) before the 408", n)
		}
	})
	assertNotStored(t, "http://"+addr, "slow")

	t.Run("idle", func(t *testing.T) {
		conn := dial()
		fmt.Fprintf(conn, "GET /v1/namespaces HTTP/1.1\r\nHost: vigil\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("first request: %d, close %v", resp.StatusCode, resp.Close)
		}
		// Stay idle: the server must close the connection.
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection: read %v, want EOF from the server closing it", err)
		}
	})
}

// holdServer serves base.tar from dir once released, counting requests
// by path and reporting each start.
type holdServer struct {
	*httptest.Server
	started chan string
	release chan struct{}
	mu      sync.Mutex
	hits    map[string]int
}

func newHoldServer(t *testing.T, dir string) *holdServer {
	h := &holdServer{started: make(chan string, 100), release: make(chan struct{}), hits: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits[r.URL.Path]++
		h.mu.Unlock()
		h.started <- r.URL.Path
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, "base.tar"))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *holdServer) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

// TestAbuseIndexLimit: beyond Options.IndexConcurrency, posts answer 429
// at once (they do not queue), posts of a layer being indexed wait for it
// without taking a slot, and the slots free up afterwards.
func TestAbuseIndexLimit(t *testing.T) {
	dir := t.TempDir()
	writeLayer(t, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	hold := newHoldServer(t, dir)
	s, ts := newServer(t, openStore(t), func(o *Options) { o.IndexConcurrency = 2 })
	post := func(name string) (int, string) {
		b := []byte(`{"Layer":{"Name":"` + name + `","Path":"` + hold.URL + "/" + name + `","Format":"Docker"}}`)
		return postRaw(t, ts.URL+"/v1/layers", "application/json", b)
	}
	type result struct {
		name string
		code int
	}
	results := make(chan result, 10)
	for _, name := range []string{"a", "b"} {
		go func() { c, _ := post(name); results <- result{name, c} }()
	}
	<-hold.started
	<-hold.started
	// Three more posts of "a" join its indexing and take no slot.
	for range 3 {
		go func() { c, _ := post("a"); results <- result{"a", c} }()
	}
	// Both slots are taken: twelve posts of other layers, at once.
	var wg sync.WaitGroup
	var rejected atomic.Int64
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, msg := post("other" + strconv.Itoa(i))
			if code == http.StatusTooManyRequests && strings.Contains(msg, "2 indexing requests are already running") {
				rejected.Add(1)
			} else {
				t.Errorf("post while full: %d %q, want 429", code, msg)
			}
		}()
	}
	wg.Wait()
	if n := rejected.Load(); n != 12 {
		t.Fatalf("%d of 12 posts beyond the limit answered 429", n)
	}
	if len(s.slots) != 2 {
		t.Fatalf("%d slots taken, want 2", len(s.slots))
	}
	close(hold.release)
	for range 5 {
		if r := <-results; r.code != 201 {
			t.Errorf("post %s: %d, want 201", r.name, r.code)
		}
	}
	if n := hold.count("/a"); n != 1 {
		t.Errorf("layer a fetched %d times by 4 concurrent posts, want 1", n)
	}
	// The limit freed up: the rejected layers index now, two at a time.
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				code, msg := post("other" + strconv.Itoa(i))
				if code == 201 {
					return
				}
				if code != http.StatusTooManyRequests {
					t.Errorf("post other%d after release: %d %q", i, code, msg)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if len(s.slots) != 0 {
		t.Fatalf("%d slots still taken after every request ended", len(s.slots))
	}
	for i := range 12 {
		if code := call(t, "GET", ts.URL+"/v1/layers/other"+strconv.Itoa(i), nil, nil); code != 200 {
			t.Errorf("other%d not stored: %d", i, code)
		}
	}
}

// TestSharedIndexingSurvivesHangup: a client hanging up while another
// waits on the same layer's indexing does not fail the other.
func TestSharedIndexingSurvivesHangup(t *testing.T) {
	dir := t.TempDir()
	writeLayer(t, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	hold := newHoldServer(t, dir)
	_, ts := newServer(t, openStore(t), nil)
	body := `{"Layer":{"Name":"shared","Path":"` + hold.URL + `/shared","Format":"Docker"}}`
	ctx, hangUp := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/layers", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	<-hold.started
	second := make(chan int, 1)
	go func() { second <- call(t, "POST", ts.URL+"/v1/layers", body, nil) }()
	hangUp()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first client: %v, want its own cancellation", err)
	}
	// Release the download only once the server has seen the hang-up.
	waitFor(t, "the server ends the first request", func() bool {
		return metric(t, ts.URL, `vigil_api_requests_total{code="503",route="POST /v1/layers"} 1`)
	})
	close(hold.release)
	if code := <-second; code != 201 {
		t.Fatalf("second client got %d after the first hung up, want 201", code)
	}
	if n := hold.count("/shared"); n != 1 {
		t.Fatalf("layer fetched %d times, want 1", n)
	}
	if code := call(t, "GET", ts.URL+"/v1/layers/shared", nil, nil); code != 200 {
		t.Fatalf("layer not stored: %d", code)
	}
}

// waitFor polls cond for up to 10 s, failing t if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

// metric reports whether the server's metrics hold line.
func metric(t *testing.T, api, line string) bool {
	t.Helper()
	resp, err := http.Get(api + "/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return bytes.Contains(b, []byte("\n"+line+"\n"))
}

// gzipBomb is a gzip'd tar whose one file holds members × 64 MiB of
// zeros: about 64 KiB compressed per member.
func gzipBomb(t *testing.T, members int) []byte {
	t.Helper()
	var zeros bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zeros, gzip.BestCompression)
	chunk := make([]byte, 1<<20)
	for range 64 {
		zw.Write(chunk)
	}
	zw.Close()
	var out bytes.Buffer
	zw = gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: int64(members) << 26, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	zw.Close()
	// Concatenated gzip members are one stream to a gzip reader.
	for range members {
		out.Write(zeros.Bytes())
	}
	return out.Bytes()
}

// zstdBomb is a zstd'd tar of one file of 96 MiB of zeros.
func zstdBomb(t *testing.T) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := zstd.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: 96 << 20, Typeflag: tar.TypeReg})
	chunk := make([]byte, 1<<20)
	for range 96 {
		tw.Write(chunk)
	}
	tw.Close()
	zw.Close()
	return out.Bytes()
}

// TestAbuseLayerSources: layer paths that redirect forever, never finish,
// fail upstream, use other schemes or local paths, or serve bombs and
// truncated streams answer 400 or 422 with Clair's body, bounded, and
// store nothing.
func TestAbuseLayerSources(t *testing.T) {
	dir := t.TempDir()
	writeLayer(t, dir, "base.tar", map[string]string{"etc/os-release": osRelease})
	raw, err := os.ReadFile(filepath.Join(dir, "base.tar"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	bomb := gzipBomb(t, 256) // 16 GiB from about 16 MiB
	files := map[string][]byte{
		"/bomb.tar.gz":       bomb,
		"/bomb.tar.zst":      zstdBomb(t),
		"/cut-trailer.tgz":   gz.Bytes()[:gz.Len()-6],
		"/cut-half.tgz":      gz.Bytes()[:gz.Len()/2],
		"/stall-after-4-KiB": append([]byte{}, gz.Bytes()...),
	}
	var redirects atomic.Int64
	var served sync.Map // path → *atomic.Int64 bytes written
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/loop/"):
			redirects.Add(1)
			n, _ := strconv.Atoi(strings.TrimPrefix(p, "/loop/"))
			http.Redirect(w, r, "/loop/"+strconv.Itoa(n+1), http.StatusFound)
			return
		case p == "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
			return
		case p == "/hang":
			<-r.Context().Done()
			return
		case p == "/404":
			http.NotFound(w, r)
			return
		case p == "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case p == "/stall-after-4-KiB":
			w.Header().Set("Content-Length", strconv.Itoa(64<<10))
			w.Write(bytes.Repeat([]byte{0}, 4<<10))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		b, ok := files[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		c, _ := served.LoadOrStore(p, new(atomic.Int64))
		for off := 0; off < len(b); off += 64 << 10 {
			n, err := w.Write(b[off:min(off+64<<10, len(b))])
			c.(*atomic.Int64).Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer up.Close()
	_, ts := newServer(t, openStore(t), func(o *Options) { o.Fetch.Timeout = 500 * time.Millisecond })

	cases := []struct {
		name, path string
		code       int
		msg        []string
	}{
		{"endless redirects", up.URL + "/loop/0", 400, []string{"could not find layer", "more than 5 redirects"}},
		{"redirect to file://", up.URL + "/to-file", 400, []string{"could not find layer", `unsupported protocol scheme "file"`}},
		{"no answer", up.URL + "/hang", 400, []string{"could not find layer", "/hang: download not finished within the fetch timeout (api.fetchtimeout) of 500ms"}},
		{"stalled body", up.URL + "/stall-after-4-KiB", 400, []string{"could not find layer", "/stall-after-4-KiB: download not finished within the fetch timeout"}},
		{"404", up.URL + "/404", 400, []string{"could not find layer", "404 Not Found"}},
		{"500", up.URL + "/500", 400, []string{"could not find layer", "500 Internal Server Error"}},
		{"file://", "file:///etc/passwd", 400, []string{"local paths are not allowed"}},
		{"local path", "/etc/passwd", 400, []string{"local paths are not allowed"}},
		{"relative path", "layer.tar", 400, []string{"local paths are not allowed"}},
		{"ftp", "ftp://127.0.0.1/layer.tar", 400, []string{`scheme "ftp" is not supported`}},
		{"gopher", "gopher://127.0.0.1:70/1", 400, []string{`scheme "gopher" is not supported`}},
		{"data", "data:application/x-tar;base64,AAAA", 400, []string{`scheme "data" is not supported`}},
		{"http without host", "http:///layer.tar", 400, []string{"has no host"}},
		{"gzip bomb", up.URL + "/bomb.tar.gz", 422, []string{"expands more than 200 times"}},
		{"zstd bomb", up.URL + "/bomb.tar.zst", 422, []string{"expands more than 200 times"}},
		{"gzip cut in its trailer", up.URL + "/cut-trailer.tgz", 422, []string{"layer unreadable", "unexpected EOF"}},
		{"gzip cut in half", up.URL + "/cut-half.tgz", 422, []string{"layer unreadable", "unexpected EOF"}},
	}
	for i, c := range cases {
		name := "src" + strconv.Itoa(i)
		body := layerEnvelope{&Layer{Name: name, Path: c.path, Format: "Docker"}}
		var e errorBody
		code := call(t, "POST", ts.URL+"/v1/layers", body, &e)
		ok := code == c.code
		for _, m := range c.msg {
			ok = ok && strings.Contains(e.Error.Message, m)
		}
		if !ok {
			t.Errorf("%s: %d %q, want %d with %q", c.name, code, e.Error.Message, c.code, c.msg)
		}
		assertNotStored(t, ts.URL, name)
	}
	if n := redirects.Load(); n != maxRedirects+1 {
		t.Errorf("endless redirects: %d requests, want %d", n, maxRedirects+1)
	}
	// The bomb was refused after reading a little of it: far less than
	// its 16 MiB went out (the rest of what was sent sits in socket
	// buffers), so at most about 64 MiB were decompressed.
	if c, ok := served.Load("/bomb.tar.gz"); !ok || c.(*atomic.Int64).Load() > int64(len(bomb))/2 {
		t.Errorf("gzip bomb: the server sent %v of %d bytes before the refusal", c, len(bomb))
	}

	// The image API refuses the same sources.
	for _, p := range []string{up.URL + "/bomb.tar.gz", "ftp://127.0.0.1/layer.tar", up.URL + "/404"} {
		m := Manifest{Hash: "sha256:" + strings.Repeat("ab", 32), Layers: []ManifestLayer{{Hash: "sha256:" + strings.Repeat("cd", 32), URI: p}}}
		var e errorBody
		if code := call(t, "POST", ts.URL+"/v2/index_report", m, &e); code/100 != 4 || e.Error.Message == "" {
			t.Errorf("manifest with layer %s: %d %q, want 4xx", p, code, e.Error.Message)
		}
		if code := call(t, "GET", ts.URL+"/v2/index_report/"+m.Hash, nil, nil); code != 404 {
			t.Errorf("manifest with layer %s stored: GET %d", p, code)
		}
	}
}
