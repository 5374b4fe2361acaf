package crashtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vigil-scanner/vigil/internal/store"
)

// vigil is the command built once for all tests.
var vigil string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	vigil = filepath.Join(dir, "vigil")
	build := exec.Command("go", "build", "-o", vigil, "github.com/vigil-scanner/vigil/cmd/vigil")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building vigil:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs vigil to completion and returns its stdout, failing t on a
// non-zero exit.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(args...)
	if err != nil {
		t.Fatalf("vigil %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func runErr(args ...string) (string, string, error) {
	cmd := exec.Command(vigil, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// secdb is a real-format Alpine secdb document for v3.17/main: package
// pkgI is fixed in 1.I-r0 by CVE-2024-I, and by CVE-2023-I too when extra
// is set (so the document is different but covers the same packages).
func secdb(n int, extra bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"apkurl":"{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk","archs":["x86_64"],"reponame":"main","urlprefix":"https://dl-cdn.alpinelinux.org/alpine","distroversion":"v3.17","packages":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		ids := fmt.Sprintf(`"CVE-2024-%06d"`, i)
		if extra {
			ids += fmt.Sprintf(`,"CVE-2023-%06d"`, i)
		}
		fmt.Fprintf(&b, "\n"+`{"pkg":{"name":"pkg%d","secfixes":{"1.%d-r0":[%s]}}}`, i, i+1, ids)
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

// installed lists pkg0..pkgN-1 at 1.0-r0, each below its fixed version.
func installed(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "P:pkg%d\nV:1.0-r0\nA:x86_64\no:pkg%d\n\n", i, i)
	}
	return b.String()
}

// layer is the tar of one layer: small files, then zero-filled files of
// the given sizes.
func layer(files map[string]string, fill ...int64) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Size: int64(len(files[n])), Mode: 0o644, Typeflag: tar.TypeReg})
		io.WriteString(tw, files[n])
	}
	for i, size := range fill {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/blob%d", i), Size: size, Mode: 0o644, Typeflag: tar.TypeReg})
		io.CopyN(tw, zeros{}, size)
	}
	tw.Close()
	return b.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// dockerArchive writes a docker-save tarball of the given layer tars.
func dockerArchive(t *testing.T, layers ...[]byte) string {
	t.Helper()
	var diffIDs, names []string
	for i, l := range layers {
		sum := sha256.Sum256(l)
		diffIDs = append(diffIDs, `"sha256:`+hex.EncodeToString(sum[:])+`"`)
		names = append(names, fmt.Sprintf(`"l%d/layer.tar"`, i))
	}
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[` + strings.Join(diffIDs, ",") + `]}}`
	p := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(body)), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add("manifest.json", []byte(`[{"Config":"config.json","RepoTags":["crash:1"],"Layers":[`+strings.Join(names, ",")+`]}]`))
	add("config.json", []byte(cfg))
	for i, l := range layers {
		add(fmt.Sprintf("l%d/layer.tar", i), l)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func alpineBase(n int) []byte {
	return layer(map[string]string{
		"etc/os-release":       "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.17.3\n",
		"etc/alpine-release":   "3.17.3\n",
		"lib/apk/db/installed": installed(n),
	})
}

// findings scans img and returns its findings as sorted "ID package" lines.
func findings(t *testing.T, db, img string) []string {
	t.Helper()
	return parseFindings(t, run(t, "--db", db, "scan", "--format", "json", img))
}

func parseFindings(t *testing.T, out string) []string {
	t.Helper()
	var r struct {
		Vulnerabilities []struct {
			ID      string `json:"id"`
			Package string `json:"package"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("scan output: %v", err)
	}
	var got []string
	for _, v := range r.Vulnerabilities {
		got = append(got, v.ID+" "+v.Package)
	}
	slices.Sort(got)
	return got
}

// waitFor polls cond (a cheap read of the database) until it holds or the
// bounded number of tries runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

func walSize(db string) int64 {
	st, err := os.Stat(db + "-wal")
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestKillDuringFeedImport kills `vigil db update` with SIGKILL while it
// streams a large document from a slow server into the scope it replaces:
// the previous data stays intact (status and findings), and the next update
// completes.
func TestKillDuringFeedImport(t *testing.T) {
	const pkgs = 40
	n := 30000
	if testing.Short() {
		n = 10000
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "vigil.db")
	small := filepath.Join(dir, "main.json")
	if err := os.WriteFile(small, secdb(pkgs, false), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "--db", db, "db", "import", small)
	img := dockerArchive(t, alpineBase(pkgs))
	status0 := run(t, "--db", db, "db", "status")
	found0 := findings(t, db, img)
	if len(found0) != pkgs {
		t.Fatalf("baseline findings: %d, want %d", len(found0), pkgs)
	}

	big := secdb(n, true)
	half := len(big) / 2
	served := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("slow") == "" {
			w.Write(big)
			return
		}
		// Half the document, then nothing until the client goes away.
		w.Write(big[:half])
		w.(http.Flusher).Flush()
		once.Do(func() { close(served) })
		<-r.Context().Done()
	}))
	defer srv.Close()

	wal0 := walSize(db)
	cmd := exec.Command(vigil, "--db", db, "db", "update", "--source", "alpine", "--url", "alpine-secdb="+srv.URL+"/main.json?slow=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-served
	// The import transaction is writing once the WAL grows.
	waitFor(t, "the import to write", func() bool { return walSize(db) > wal0+1<<20 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("update was not killed (err %v): %s", err, stderr.String())
	}
	t.Logf("killed after %d of %d bytes served, WAL %d KiB", half, len(big), walSize(db)>>10)

	if got := run(t, "--db", db, "db", "status"); got != status0 {
		t.Errorf("status after the kill:\n%s\nwant:\n%s", got, status0)
	}
	if got := findings(t, db, img); !slices.Equal(got, found0) {
		t.Errorf("findings after the kill: %d, want %d identical", len(got), len(found0))
	}
	checkIntegrity(t, db)

	// The next run finishes the work.
	run(t, "--db", db, "db", "update", "--source", "alpine", "--url", "alpine-secdb="+srv.URL+"/main.json")
	st := run(t, "--db", db, "db", "status")
	if !strings.Contains(st, fmt.Sprintf("alpine-secdb/v3.17/main  alpine-secdb  %d ", 2*n)) {
		t.Errorf("status after the update:\n%s", st)
	}
	if got := findings(t, db, img); len(got) != 2*pkgs {
		t.Errorf("findings after the update: %d, want %d", len(got), 2*pkgs)
	}
}

// checkIntegrity runs SQLite's own check on the database.
func checkIntegrity(t *testing.T, db string) {
	t.Helper()
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var res string
	if err := st.DB().QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check: %q, %v", res, err)
	}
	var orphans int
	if err := st.DB().QueryRow(`SELECT count(*) FROM vulnerability WHERE scope NOT IN (SELECT scope FROM feed_scope)`).Scan(&orphans); err != nil || orphans != 0 {
		t.Errorf("%d advisories outside any scope (%v)", orphans, err)
	}
}

// TestKillDuringIndexing kills `vigil scan` with SIGKILL while it reads an
// image from a registry on 127.0.0.1 whose second layer stalls half-way,
// once the first layer's result is cached: the next scan uses that cached
// layer, reads the rest, and reports the same findings as a clean scan.
func TestKillDuringIndexing(t *testing.T) {
	const pkgs = 30
	dir := t.TempDir()
	db := filepath.Join(dir, "vigil.db")
	doc := filepath.Join(dir, "main.json")
	if err := os.WriteFile(doc, secdb(pkgs, false), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "--db", db, "db", "import", doc)
	ref, stall := stallingRegistry(t, alpineBase(pkgs), layer(nil, 8<<20))

	countLayers := func() int {
		st, err := store.Open(context.Background(), db)
		if err != nil {
			return 0
		}
		defer st.Close()
		var n int
		st.DB().QueryRow(`SELECT count(*) FROM layer_index`).Scan(&n)
		return n
	}
	cmd := exec.Command(vigil, "--db", db, "scan", "--insecure", "--format", "json", ref)
	// Enough workers that the stalled layer cannot hold up the first.
	cmd.Env = append(os.Environ(), "GOMAXPROCS=4")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-stall.reached
	waitFor(t, "a first cached layer", func() bool { return countLayers() >= 1 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the scan ended before it was killed: %s", stderr.String())
	}
	if cached := countLayers(); cached != 1 {
		t.Fatalf("killed with %d layers cached, want the first one only", cached)
	}
	checkIntegrity(t, db)

	stall.off()
	out, errOut, err := runErr("--db", db, "--log-level", "info", "scan", "--insecure", "--format", "json", ref)
	if err != nil {
		t.Fatalf("scan after the kill: %v\n%s", err, errOut)
	}
	if want := "layers_read=1 layers_cached=1"; !strings.Contains(errOut, want) {
		t.Errorf("log %q lacks %q", errOut, want)
	}
	got := parseFindings(t, out)
	clean := filepath.Join(dir, "clean.db")
	run(t, "--db", clean, "db", "import", doc)
	if want := findings(t, clean, dockerArchive(t, alpineBase(pkgs))); !slices.Equal(got, want) || len(got) != pkgs {
		t.Errorf("findings after the kill: %d, want the %d of a clean scan", len(got), len(want))
	}
}

// stall controls the last layer's blob in a stallingRegistry.
type stall struct {
	reached chan struct{} // closed once half the blob has been sent
	once    sync.Once
	mu      sync.Mutex
	on      bool
}

func (s *stall) off() { s.mu.Lock(); s.on = false; s.mu.Unlock() }

func (s *stall) active() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.on }

// stallingRegistry pushes an image of the given layer tars (gzipped) to an
// in-process registry on 127.0.0.1 and returns its reference. While the
// stall is on, a GET of the last layer's blob sends half of it and then
// nothing until the client goes away.
func stallingRegistry(t *testing.T, layers ...[]byte) (string, *stall) {
	t.Helper()
	img := empty.Image
	var last v1.Layer
	for _, l := range layers {
		lr, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, lr); err != nil {
			t.Fatal(err)
		}
		last = lr
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	digest, err := last.Digest()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := last.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	s := &stall{reached: make(chan struct{}), on: true}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+digest.String()) || !s.active() {
			reg.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		w.Write(blob[:len(blob)/2])
		w.(http.Flusher).Flush()
		s.once.Do(func() { close(s.reached) })
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/crash/app:1"
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	return "registry:" + ref, s
}

// TestConcurrentScansAndUpdate runs 8 scans and one update at once on one
// new SQLite database: all succeed with identical findings.
func TestConcurrentScansAndUpdate(t *testing.T) {
	const pkgs = 25
	dir := t.TempDir()
	db := filepath.Join(dir, "vigil.db")
	docBytes := secdb(pkgs, false)
	doc := filepath.Join(dir, "main.json")
	if err := os.WriteFile(doc, docBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "--db", db, "db", "import", doc)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(docBytes) // the same data: findings must not change
	}))
	defer srv.Close()
	img := dockerArchive(t, alpineBase(pkgs), layer(map[string]string{"etc/motd": "hi\n"}))

	var wg sync.WaitGroup
	outs := make([]string, 8)
	errs := make([]error, 9)
	stderrs := make([]string, 9)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], stderrs[i], errs[i] = runErr("--db", db, "scan", "--format", "json", img)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, stderrs[8], errs[8] = runErr("--db", db, "db", "update", "--source", "alpine", "--url", "alpine-secdb="+srv.URL+"/main.json")
	}()
	wg.Wait()
	var first []string
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v\n%s", i, err, stderrs[i])
			continue
		}
		if i == 8 {
			continue
		}
		got := parseFindings(t, outs[i])
		if first == nil {
			first = got
		}
		if len(got) != pkgs || !slices.Equal(got, first) {
			t.Errorf("scan %d: %d findings, differing from the first scan's %d", i, len(got), len(first))
		}
	}
	checkIntegrity(t, db)
}
