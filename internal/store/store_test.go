package store

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/storetest"
)

// open opens dsn, closing it when t ends.
func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func adv(id, pkg, fixed string) model.Advisory {
	return model.Advisory{Source: "debian-tracker", ID: id, Namespace: "debian:12", Package: pkg, SourcePackage: true,
		VersionFormat: model.KindDpkg, State: model.StateFixed, FixedVersion: fixed, Severity: model.SeverityHigh,
		Aliases: []string{"DSA-1"}, Arch: []string{"amd64", "arm64"}}
}

func fill(advs ...model.Advisory) func(func(model.Advisory) error) (string, error) {
	return func(put func(model.Advisory) error) (string, error) {
		for _, a := range advs {
			if err := put(a); err != nil {
				return "", err
			}
		}
		return "debian-tracker", nil
	}
}

func TestReplaceScopeRoundTripAndAtomicity(t *testing.T) {
	storetest.Dialects(t, testReplaceScopeRoundTripAndAtomicity)
}

func testReplaceScopeRoundTripAndAtomicity(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	sc := Scope{Scope: "debian-tracker", Source: "debian-tracker", Origin: "test", Digest: "sha256:x"}
	got1, err := s.Import(ctx, sc, ImportOptions{}, fill(adv("CVE-1", "openssl", "3.0.1-1"), adv("CVE-1", "curl", "7-1"), adv("CVE-2", "openssl", "3.0.2-1")))
	if err != nil || got1.Advisories != 3 || got1.Scope != "debian-tracker" {
		t.Fatalf("import: %+v err=%v", got1, err)
	}
	got, err := s.Advisories(ctx, []string{"debian:12"}, []string{"openssl"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "CVE-1" || got[0].FixedVersion != "3.0.1-1" || got[0].Aliases[0] != "DSA-1" || len(got[0].Arch) != 2 || !got[0].SourcePackage {
		t.Fatalf("round trip: %+v", got)
	}

	// A failing import leaves the previous data.
	boom := errors.New("truncated document")
	_, err = s.Import(ctx, sc, ImportOptions{}, func(put func(model.Advisory) error) (string, error) {
		if err := put(adv("CVE-9", "openssl", "9")); err != nil {
			return "", err
		}
		return "", boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want the fill error, got %v", err)
	}
	got, _ = s.Advisories(ctx, []string{"debian:12"}, []string{"openssl", "curl"})
	if len(got) != 3 {
		t.Fatalf("old data not intact after failed import: %d advisories", len(got))
	}

	// An empty document never replaces a non-empty scope; a big shrink is refused.
	if _, err := s.Import(ctx, sc, ImportOptions{}, fill()); !errors.Is(err, ErrShrunk) {
		t.Fatalf("empty import: want ErrShrunk, got %v", err)
	}
	if _, err := s.Import(ctx, sc, ImportOptions{MaxShrink: 0.5}, fill(adv("CVE-1", "openssl", "1"))); !errors.Is(err, ErrShrunk) {
		t.Fatalf("shrunken import: want ErrShrunk, got %v", err)
	}
	scopes, err := s.Scopes(ctx)
	if err != nil || len(scopes) != 1 || scopes[0].Advisories != 3 {
		t.Fatalf("scopes: %+v %v", scopes, err)
	}
	// A withdrawal empties the scope.
	if sc, err := s.Import(ctx, sc, ImportOptions{MaxShrink: 0.5, Withdraw: true}, fill()); err != nil || sc.Advisories != 0 {
		t.Fatalf("withdrawal: %+v %v", sc, err)
	}
	if got, _ = s.Advisories(ctx, []string{"debian:12"}, []string{"openssl", "curl"}); len(got) != 0 {
		t.Fatalf("%d advisories after the withdrawal", len(got))
	}
	// An invalid advisory fails the import with a message naming it.
	if _, err := s.Import(ctx, sc, ImportOptions{}, fill(model.Advisory{ID: "CVE-3", Namespace: "debian:12", Package: "x", VersionFormat: "dpkg", State: model.StateFixed})); err == nil {
		t.Fatal("fixed advisory without a version was accepted")
	}
}

func TestLayerCache(t *testing.T) { storetest.Dialects(t, testLayerCache) }

func testLayerCache(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	if _, ok, err := s.LayerIndex(ctx, "sha256:a", "v1"); ok || err != nil {
		t.Fatalf("empty cache: ok=%v err=%v", ok, err)
	}
	if err := s.PutLayerIndex(ctx, "sha256:a", "v1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLayerIndex(ctx, "sha256:a", "v1", []byte("two")); err != nil {
		t.Fatal(err)
	}
	b, ok, err := s.LayerIndex(ctx, "sha256:a", "v1")
	if !ok || err != nil || string(b) != "one" {
		t.Fatalf("got %q %v %v", b, ok, err)
	}
	if _, ok, _ := s.LayerIndex(ctx, "sha256:a", "v2"); ok {
		t.Fatal("another indexer version must miss")
	}
}

func TestConcurrentOpenAndWrite(t *testing.T) { storetest.Dialects(t, testConcurrentOpenAndWrite) }

// testConcurrentOpenAndWrite opens one new database from eight handles at
// once, each importing the same scope and caching the same layer.
func testConcurrentOpenAndWrite(t *testing.T, path string) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := Open(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			sc := Scope{Scope: "s", Source: "x"}
			if _, err := s.Import(ctx, sc, ImportOptions{}, fill(adv("CVE-1", "p", "1"))); err != nil {
				errs <- err
			}
			errs <- s.PutLayerIndex(ctx, "sha256:l", "v", []byte{byte(i)})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
