package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-scanner/vigil/internal/report"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// loadImage is a docker-save image prepared for the load test: its
// layers' Clair names (OCI chain IDs: unique per layer tree, so a base
// layer shared by two images is one name) and its v2 manifest.
type loadImage struct {
	name     string
	ds       dockerSave
	chain    []string // layer names, base first
	manifest Manifest
}

func chainIDs(diffIDs []string) []string {
	ids := []string{diffIDs[0]}
	for _, d := range diffIDs[1:] {
		s := sha256.Sum256([]byte(ids[len(ids)-1] + " " + d))
		ids = append(ids, "sha256:"+hex.EncodeToString(s[:]))
	}
	return ids
}

// loadStats collects request latencies and statuses.
type loadStats struct {
	mu        sync.Mutex
	latencies []time.Duration
	codes     map[int]int
	retries   atomic.Int64 // 429s retried
}

func (s *loadStats) add(d time.Duration, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencies = append(s.latencies, d)
	s.codes[code]++
}

func (s *loadStats) log(t *testing.T, what string, wall time.Duration) {
	slices.Sort(s.latencies)
	pct := func(p float64) time.Duration { return s.latencies[int(p*float64(len(s.latencies)-1))] }
	t.Logf("%s: %d requests in %s (%.1f/s), p50 %s, p99 %s, max %s, statuses %v, 429s retried %d", what, len(s.latencies), wall.Round(time.Millisecond),
		float64(len(s.latencies))/wall.Seconds(), pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond),
		s.latencies[len(s.latencies)-1].Round(time.Microsecond), s.codes, s.retries.Load())
}

// TestLoad posts the layers of two real images that share their base
// layer (Clair v1 chains, parent first, and v2 manifests) from 50 clients
// at once, 220 posts in all, with the indexing limit at 2; then reads
// 2,000 layer and vulnerability reports, 50 at a time. No request may
// answer 5xx; 429s are retried with backoff until they succeed; every
// layer is fetched once however many posts race for it. Latencies and
// throughput are logged, not asserted.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	const (
		clients  = 50
		v1Posts  = 200
		v2Posts  = 20
		reads    = 2000
		maxTries = 500 // per request, 429s included
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var images []*loadImage
	blobFiles := map[string]string{} // blob file name → path on disk
	for _, name := range []string{"debian12-layers", "debian12-minbase"} {
		ds := extractDockerSave(t, testdata.Path(t, "images", name+".docker.tar"))
		img := &loadImage{name: name, ds: ds, chain: chainIDs(ds.diffIDs)}
		h := sha256.Sum256([]byte(name))
		img.manifest.Hash = "sha256:" + hex.EncodeToString(h[:])
		for _, b := range ds.blobs {
			blobFiles[b] = filepath.Join(ds.dir, b)
			img.manifest.Layers = append(img.manifest.Layers, ManifestLayer{Hash: "sha256:" + strings.TrimSuffix(b, ".tar.gz"), Headers: map[string][]string{"Authorization": {blobAuth}}})
		}
		images = append(images, img)
	}
	if images[0].chain[0] != images[1].chain[0] {
		t.Fatalf("the two images were expected to share their base layer")
	}

	// The file server counts fetches by path: /v1/<layer name>/<blob> for
	// Clair layers, /v2/<blob> for manifests' layers.
	var fetchMu sync.Mutex
	fetches := map[string]int{}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != blobAuth {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fetchMu.Lock()
		fetches[r.URL.Path]++
		fetchMu.Unlock()
		p, ok := blobFiles[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, p)
	}))
	defer files.Close()
	for _, img := range images {
		for i, b := range img.ds.blobs {
			img.manifest.Layers[i].URI = files.URL + "/v2/" + b
		}
	}

	st := openStore(t)
	importTracker(t, st)
	_, ts := newServer(t, st, func(o *Options) { o.IndexConcurrency = 2 })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()

	// do sends one request, retrying 429s with jittered exponential
	// backoff, and returns the final status and body.
	do := func(stats *loadStats, method, url string, body []byte) (int, []byte) {
		backoff := 5 * time.Millisecond
		for try := 1; ; try++ {
			req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return 0, nil
			}
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", method, url, err)
				return 0, nil
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Errorf("%s %s: reading the answer: %v", method, url, err)
				return 0, nil
			}
			stats.add(time.Since(start), resp.StatusCode)
			if resp.StatusCode != http.StatusTooManyRequests || try == maxTries {
				return resp.StatusCode, data
			}
			stats.retries.Add(1)
			select {
			case <-time.After(backoff/2 + rand.N(backoff/2+1)):
			case <-ctx.Done():
				return 0, nil
			}
			backoff = min(2*backoff, 200*time.Millisecond)
		}
	}

	// Posts: each job walks one image's chain parent first (a Clair v1
	// client) or posts one manifest; 50 clients take jobs at once.
	type job struct {
		img *loadImage
		v2  bool
	}
	var jobs []job
	for posts := 0; posts < v1Posts; {
		img := images[len(jobs)%2]
		if posts+len(img.chain) > v1Posts {
			img = images[1]
		}
		jobs = append(jobs, job{img: img})
		posts += len(img.chain)
	}
	for i := range v2Posts {
		jobs = append(jobs, job{img: images[i%2], v2: true})
	}
	rand.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	queue := make(chan job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	postStats := &loadStats{codes: map[int]int{}}
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if j.v2 {
					b, _ := json.Marshal(j.img.manifest)
					if code, data := do(postStats, "POST", ts.URL+"/v2/index_report", b); code != 201 && code != 200 {
						t.Errorf("post manifest of %s: %d %s", j.img.name, code, data)
						return
					}
					continue
				}
				parent := ""
				for i, name := range j.img.chain {
					b, _ := json.Marshal(layerEnvelope{&Layer{Name: name, ParentName: parent, Format: "Docker",
						Path:    files.URL + "/v1/" + name + "/" + j.img.ds.blobs[i],
						Headers: map[string]string{"Authorization": blobAuth}}})
					if code, data := do(postStats, "POST", ts.URL+"/v1/layers", b); code != 201 {
						t.Errorf("post layer %d of %s: %d %s", i, j.img.name, code, data)
						return
					}
					parent = name
				}
			}
		}()
	}
	wg.Wait()
	postWall := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	postStats.log(t, "posts", postWall)
	if n := len(postStats.latencies) - int(postStats.retries.Load()); n != v1Posts+v2Posts {
		t.Fatalf("%d posts completed, want %d", n, v1Posts+v2Posts)
	}

	// Every layer was fetched exactly once: three Clair layers (the base
	// is one name in both images) and three blobs for the manifests.
	want := map[string]int{}
	for _, img := range images {
		for i, name := range img.chain {
			want["/v1/"+name+"/"+img.ds.blobs[i]] = 1
			want["/v2/"+img.ds.blobs[i]] = 1
		}
	}
	if len(want) != 6 || fmt.Sprint(fetches) != fmt.Sprint(want) {
		t.Fatalf("fetches by path = %v, want each of %d once", fetches, len(want))
	}
	t.Logf("fetches by path: %v", fetches)

	// Reads: layer views with vulnerabilities and v2 vulnerability
	// reports, round robin; each kind must answer the same every time.
	var urls []string
	for _, img := range images {
		urls = append(urls, ts.URL+"/v1/layers/"+img.chain[len(img.chain)-1]+"?features&vulnerabilities",
			ts.URL+"/v2/vulnerability_report/"+img.manifest.Hash)
	}
	first := make([]atomic.Pointer[string], len(urls))
	readStats := &loadStats{codes: map[int]int{}}
	next := atomic.Int64{}
	start = time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= reads || ctx.Err() != nil {
					return
				}
				u := int(i) % len(urls)
				code, data := do(readStats, "GET", urls[u], nil)
				if code != 200 {
					t.Errorf("GET %s: %d %s", urls[u], code, data)
					return
				}
				sum := summary(t, urls[u], data)
				if prev := first[u].Load(); prev == nil {
					first[u].CompareAndSwap(nil, &sum)
				} else if *prev != sum {
					t.Errorf("GET %s answered %s, earlier %s", urls[u], sum, *prev)
					return
				}
			}
		}()
	}
	wg.Wait()
	readWall := time.Since(start)
	readStats.log(t, "reads", readWall)
	if len(readStats.latencies) != reads {
		t.Fatalf("%d reads completed, want %d", len(readStats.latencies), reads)
	}
	for u := range urls {
		t.Logf("%s: %s", strings.TrimPrefix(urls[u], ts.URL), *first[u].Load())
	}
	for _, s := range []*loadStats{postStats, readStats} {
		for code, n := range s.codes {
			if code >= 500 {
				t.Errorf("%d answers with status %d", n, code)
			}
		}
	}
}

// summary condenses a layer view or vulnerability report into counts
// (features or packages, vulnerabilities), failing t when the view has
// no packages or the image's zlib finding is missing.
func summary(t *testing.T, url string, data []byte) string {
	t.Helper()
	var pkgs, vulns int
	var zlib bool
	if strings.Contains(url, "/v1/") {
		var env layerEnvelope
		if err := json.Unmarshal(data, &env); err != nil || env.Layer == nil {
			t.Errorf("GET %s: %v", url, err)
			return ""
		}
		pkgs = len(env.Layer.Features)
		for _, f := range env.Layer.Features {
			vulns += len(f.Vulnerabilities)
			for _, v := range f.Vulnerabilities {
				zlib = zlib || v.Name == "CVE-2023-45853"
			}
		}
	} else {
		var rep report.Scan
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Errorf("GET %s: %v", url, err)
			return ""
		}
		pkgs, vulns = len(rep.Packages), len(rep.Vulnerabilities)
		for _, v := range rep.Vulnerabilities {
			zlib = zlib || v.ID == "CVE-2023-45853"
		}
	}
	if pkgs == 0 || !zlib {
		t.Errorf("GET %s: %d packages, zlib finding %v", url, pkgs, zlib)
	}
	return fmt.Sprintf("%d packages, %d vulnerabilities", pkgs, vulns)
}
