package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/storetest"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// TestTwoServersOnePostgres runs two `vigil serve` processes on one
// PostgreSQL database: both start their updater at once and the feed is
// fetched once; both are posted the same layers at once and one indexed
// copy of each is kept; each answers for the layers the other indexed.
func TestTwoServersOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	dsn := storetest.Postgres(t)
	ref := testdata.Path(t, "images", "debian12-layers.docker.tar")
	dir := t.TempDir()

	// The image's layers as plain tar files, and the demo tracker document.
	img, err := image.Open(context.Background(), ref, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var layers []string
	for i, l := range img.Layers {
		rc, err := l.Open()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("layer%d.tar", i))
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		f.Close()
		layers = append(layers, p)
	}
	img.Close()
	feed := []byte(`{"bash": {"CVE-2099-0003": {"description": "test", "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "5.2.15-2+deb12u1"}, "fixed_version": "5.2.15-2+deb12u1", "urgency": "low"}}}}}`)

	var feedHits, layerHits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/tracker.json":
			feedHits.Add(1)
			time.Sleep(300 * time.Millisecond) // hold the lock while the other instance tries
			w.Header().Set("Content-Type", "application/json")
			w.Write(feed)
		case strings.HasPrefix(r.URL.Path, "/layer"):
			if r.Header.Get("Authorization") != "Bearer layer-secret" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			layerHits.Add(1)
			http.ServeFile(w, r, filepath.Join(dir, filepath.Base(r.URL.Path)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	cfg := filepath.Join(dir, "vigil.yaml")
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes, shared: page tokens cross instances
	yaml := fmt.Sprintf("clair:\n  database:\n    options:\n      paginationkey: %s\n  updater:\n    interval: 1h\n    enabledupdaters: [debian-tracker]\n    urls:\n      debian-tracker: [%s/tracker.json]\n", key, srv.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var addrs []string
	for i := 0; i < 2; i++ {
		addr, health := freeAddr(t), freeAddr(t)
		cmd := exec.Command(bin, "serve", "--config", cfg, "--db", dsn, "--addr", addr, "--health-addr", health)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			if t.Failed() {
				t.Logf("server %d log:\n%s", i, logs.String())
			}
		})
		waitHealthy(t, "http://"+health+"/healthz")
		addrs = append(addrs, "http://"+addr)
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		db.QueryRow(`SELECT count(*) FROM feed_scope WHERE scope = 'debian-tracker'`).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the feed was never imported")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // let a second, wrongly unlocked, update show itself
	if n := feedHits.Load(); n != 1 {
		t.Errorf("two instances starting together fetched the feed %d times, want 1", n)
	}

	// Both servers are posted the same layers, parent first, at the same time.
	names := []string{"base", "packages", "purge"}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(names))
	for _, a := range addrs {
		wg.Add(1)
		go func(a string) {
			defer wg.Done()
			parent := ""
			for i, n := range names {
				body := fmt.Sprintf(`{"Layer":{"Name":%q,"Path":"%s/layer%d.tar","Headers":{"Authorization":"Bearer layer-secret"},"ParentName":%q,"Format":"Docker"}}`, n, srv.URL, i, parent)
				resp, err := http.Post(a+"/v1/layers", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("%s: post %s: %d %s", a, n, resp.StatusCode, b)
					return
				}
				parent = n
			}
		}(a)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM clair_layer`).Scan(&rows); err != nil || rows != len(names) {
		t.Errorf("clair_layer holds %d rows (%v), want %d", rows, err, len(names))
	}
	for _, a := range addrs {
		resp, err := http.Get(a + "/v1/layers/purge?features&vulnerabilities")
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Layer struct {
				NamespaceName string
				Features      []struct {
					Name            string
					Vulnerabilities []struct{ Name, FixedBy string }
				}
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		vulns := 0
		for _, f := range env.Layer.Features {
			for _, v := range f.Vulnerabilities {
				if f.Name != "bash" || v.Name != "CVE-2099-0003" || v.FixedBy != "5.2.15-2+deb12u1" {
					t.Errorf("%s: unexpected vulnerability %s %+v", a, f.Name, v)
				}
				vulns++
			}
		}
		if len(env.Layer.Features) != 93 || vulns != 1 || env.Layer.NamespaceName != "debian:12" {
			t.Errorf("%s: %d features, %d vulnerabilities, namespace %q; want 93, 1, debian:12", a, len(env.Layer.Features), vulns, env.Layer.NamespaceName)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became healthy", url)
}
