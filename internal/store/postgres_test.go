package store

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/storetest"
)

// TestTwoHandlesPostgres runs two Store handles ("instances") on one
// PostgreSQL database: concurrent imports of one scope with different
// documents leave exactly one document's advisories, and concurrent caching
// of the same layers keeps one row each.
func TestTwoHandlesPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	testTwoHandles(t, dsn)
}

// TestTwoHandlesSQLite is the same on one SQLite file.
func TestTwoHandlesSQLite(t *testing.T) { testTwoHandles(t, storetest.SQLite(t)) }

func testTwoHandles(t *testing.T, dsn string) {
	ctx := context.Background()
	a, b := open(t, dsn), open(t, dsn)
	doc := func(tag string, n int) []model.Advisory {
		var out []model.Advisory
		for i := range n {
			out = append(out, adv(fmt.Sprintf("CVE-%d", i), "pkg"+tag, "1."+tag))
		}
		return out
	}
	sc := Scope{Source: "debian-tracker", Origin: "test"}
	const rounds = 5
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for i, h := range []*Store{a, b} {
		tag := string(rune('a' + i))
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range rounds {
				_, err := h.Import(ctx, sc, ImportOptions{MaxShrink: 0.5}, fill(doc(tag, 50)...))
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			for j := range rounds {
				errs <- h.PutLayerIndex(ctx, fmt.Sprintf("sha256:%d", j), "v1", []byte(tag))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got, err := a.Advisories(ctx, []string{"debian:12"}, []string{"pkga", "pkgb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("%d advisories after concurrent imports, want one document's 50", len(got))
	}
	for _, g := range got {
		if g.Package != got[0].Package {
			t.Fatalf("advisories of two documents mixed: %s and %s", g.Package, got[0].Package)
		}
	}
	scopes, err := b.Scopes(ctx)
	if err != nil || len(scopes) != 1 || scopes[0].Advisories != 50 {
		t.Fatalf("scopes: %+v %v (provisional scopes must not remain)", scopes, err)
	}
	for j := range rounds {
		res, ok, err := b.LayerIndex(ctx, fmt.Sprintf("sha256:%d", j), "v1")
		if err != nil || !ok || (string(res) != "a" && string(res) != "b") {
			t.Fatalf("layer %d: %q %v %v", j, res, ok, err)
		}
	}
	var n int
	if err := a.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM layer_index`).Scan(&n); err != nil || n != rounds {
		t.Fatalf("%d layer rows, want %d (%v)", n, rounds, err)
	}
}
