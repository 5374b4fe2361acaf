package updater

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/storetest"
)

// trackerDoc is a Debian security tracker document (the real JSON format)
// with one fixed CVE of openssl in bookworm.
const trackerDoc = `{
  "openssl": {
    "CVE-2024-0727": {
      "description": "Processing a maliciously formatted PKCS12 file may lead OpenSSL to crash.",
      "scope": "local",
      "releases": {
        "bookworm": {
          "status": "resolved",
          "repositories": {"bookworm": "3.0.13-1~deb12u1"},
          "fixed_version": "3.0.13-1~deb12u1",
          "urgency": "not yet assigned"
        }
      }
    }
  }
}`

// feedServer serves trackerDoc, failing the first fails requests with 500;
// fetches counts requests.
type feedServer struct {
	*httptest.Server
	fetches atomic.Int64
	fails   atomic.Int64
}

func newFeedServer(t *testing.T, fails int) *feedServer {
	fs := &feedServer{}
	fs.fails.Store(int64(fails))
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.fetches.Add(1)
		if fs.fails.Add(-1) >= 0 {
			http.Error(w, "upstream down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, trackerDoc)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *feedServer) urls() map[string][]string {
	return map[string][]string{"debian-tracker": {fs.URL + "/tracker/data/json"}}
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestTwoInstancesFetchOnce(t *testing.T) { storetest.Dialects(t, testTwoInstancesFetchOnce) }

// testTwoInstancesFetchOnce triggers two instances (two Store handles on
// one database) at once: the feed is fetched once, and once more for a
// trigger after that update.
func testTwoInstancesFetchOnce(t *testing.T, dsn string) {
	ctx := context.Background()
	fs := newFeedServer(t, 0)
	var us []*Updater
	for i := range 2 {
		u, err := New(openStore(t, dsn), Config{Sources: []string{"debian-tracker"}, URLs: fs.urls(), Owner: fmt.Sprint("instance-", i)})
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	for round := int64(1); round <= 3; round++ {
		since := time.Now()
		runs := make([][]FeedRun, len(us))
		var wg sync.WaitGroup
		for i, u := range us {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runs[i] = u.Update(ctx, since)
			}()
		}
		wg.Wait()
		if got := fs.fetches.Load(); got != round {
			t.Fatalf("round %d: %d fetches in all, want %d", round, got, round)
		}
		var updated int
		for _, rs := range runs {
			if len(rs) != 1 {
				t.Fatalf("runs: %+v", rs)
			}
			switch rs[0].Outcome {
			case Updated:
				updated++
			case Busy, Fresh:
			default:
				t.Fatalf("round %d: %+v", round, rs[0])
			}
		}
		if updated != 1 {
			t.Fatalf("round %d: %d instances updated", round, updated)
		}
	}
}

func TestBackoffKeepsLastSuccess(t *testing.T) {
	ctx := context.Background()
	fs := newFeedServer(t, 2)
	st := openStore(t, storetest.SQLite(t))
	now := time.Unix(1_700_000_000, 0)
	u, err := New(st, Config{Interval: time.Hour, Sources: []string{"debian-tracker"}, URLs: fs.urls(),
		MinBackoff: time.Minute, MaxBackoff: 10 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	step := func(advance time.Duration, want Outcome, fetches int64) {
		t.Helper()
		now = now.Add(advance)
		runs := u.Due(ctx)
		if len(runs) != 1 || runs[0].Outcome != want || fs.fetches.Load() != fetches {
			t.Fatalf("at +%v: %+v, %d fetches; want %s after %d fetches", advance, runs, fs.fetches.Load(), want, fetches)
		}
	}
	step(0, Failed, 1)
	if s, err := st.UpdaterState(ctx, "debian-tracker"); err != nil || !s.LastSuccess.IsZero() || s.LastError == "" {
		t.Fatalf("a failure advanced the last success: %+v %v", s, err)
	}
	step(59*time.Second, BackingOff, 1)
	step(time.Second, Failed, 2)         // 1 minute after the first failure
	step(119*time.Second, BackingOff, 2) // the delay doubled to 2 minutes
	step(time.Second, Updated, 3)        // 2 minutes after the second failure
	step(59*time.Minute, Fresh, 3)       // within the interval
	step(time.Minute, Updated, 4)        // the interval has passed
	s, err := st.UpdaterState(ctx, "debian-tracker")
	if err != nil || !s.LastSuccess.Equal(now) || s.LastError != "" {
		t.Fatalf("state: %+v %v", s, err)
	}
}

func TestRunOnTrigger(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := newFeedServer(t, 0)
	done := make(chan []string, 1)
	u, err := New(openStore(t, storetest.SQLite(t)), Config{Sources: []string{"debian-tracker"}, URLs: fs.urls(),
		AfterUpdate: func(_ context.Context, feeds []string) { done <- feeds }})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- u.Run(ctx) }()
	u.Trigger()
	if feeds := <-done; len(feeds) != 1 || feeds[0] != "debian-tracker" {
		t.Fatalf("updated %v", feeds)
	}
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
	if fs.fetches.Load() != 1 {
		t.Fatalf("%d fetches", fs.fetches.Load())
	}
}

func TestConfigErrors(t *testing.T) {
	st := openStore(t, storetest.SQLite(t))
	for _, cfg := range []Config{
		{Sources: []string{"debain"}},
		{URLs: map[string][]string{"nvd": {"http://127.0.0.1/"}}},
		{Interval: -time.Second},
	} {
		if _, err := New(st, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	u, err := New(st, Config{Sources: []string{"debian"}})
	if err != nil || len(u.Feeds()) != 2 {
		t.Fatalf("debian selects %v (%v)", u.Feeds(), err)
	}
}
