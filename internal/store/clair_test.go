package store

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/storetest"
)

func TestClairLayers(t *testing.T) { storetest.Dialects(t, testClairLayers) }

func testClairLayers(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	if _, err := s.PutClairLayer(ctx, ClairLayer{Name: "b", Parent: "a", Indexer: "v1", Result: []byte("{}")}); !errors.Is(err, ErrParentUnknown) {
		t.Fatalf("unknown parent: err = %v", err)
	}
	// Concurrent posts of one layer keep one copy.
	var wg sync.WaitGroup
	created := make([]bool, 8)
	for i := range created {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			created[i], err = s.PutClairLayer(ctx, ClairLayer{Name: "a", Indexer: "v1", Result: []byte(`{"n":1}`)})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d of 8 concurrent posts created the layer, want 1", n)
	}
	for _, l := range []ClairLayer{{Name: "b", Parent: "a"}, {Name: "c", Parent: "b"}, {Name: "x", Parent: "a"}} {
		l.Indexer, l.Result = "v1", []byte(`{"n":2}`)
		if ok, err := s.PutClairLayer(ctx, l); err != nil || !ok {
			t.Fatalf("put %s: %v %v", l.Name, ok, err)
		}
	}
	chain, err := s.ClairAncestry(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 3 || chain[0].Name != "a" || chain[1].Name != "b" || chain[2].Name != "c" || chain[2].Parent != "b" || chain[0].Parent != "" {
		t.Fatalf("ancestry of c = %+v", chain)
	}
	// A newer indexer version replaces the result; the same one does not.
	if ok, _ := s.PutClairLayer(ctx, ClairLayer{Name: "a", Indexer: "v1", Result: []byte(`{"n":3}`)}); ok {
		t.Fatal("same indexer re-put reported created")
	}
	if ok, err := s.PutClairLayer(ctx, ClairLayer{Name: "a", Indexer: "v2", Result: []byte(`{"n":4}`)}); err != nil || !ok {
		t.Fatalf("new indexer re-put: %v %v", ok, err)
	}
	if l, _ := s.ClairLayer(ctx, "a"); string(l.Result) != `{"n":4}` || l.Indexer != "v2" {
		t.Fatalf("a = %+v", l)
	}
	if err := s.DeleteClairLayer(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"a": true, "b": false, "c": false, "x": true} {
		_, err := s.ClairLayer(ctx, name)
		if got := err == nil; got != want || (!got && !errors.Is(err, ErrNotFound)) {
			t.Errorf("after deleting b: layer %s present=%v (err %v), want %v", name, got, err, want)
		}
	}
	if err := s.DeleteClairLayer(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestClairVulnerabilities(t *testing.T) { storetest.Dialects(t, testClairVulnerabilities) }

func testClairVulnerabilities(t *testing.T, dsn string) {
	ctx := context.Background()
	s := open(t, dsn)
	sc := Scope{Source: "debian-tracker", Origin: "test"}
	unfixed := adv("CVE-3", "zlib", "")
	unfixed.State, unfixed.Severity = model.StateUnfixed, model.SeverityLow
	na := adv("CVE-4", "zlib", "")
	na.State = model.StateNotAffected
	if _, err := s.Import(ctx, sc, ImportOptions{}, fill(adv("CVE-1", "openssl", "3.0.1-1"), unfixed, na)); err != nil {
		t.Fatal(err)
	}
	v := ClairVulnerability{Namespace: "debian:12", Name: "CVE-2", Description: "d", Link: "l", Severity: model.SeverityMedium, Metadata: `{"k":1}`,
		FixedIn: []ClairFix{{Package: "curl", VersionFormat: "dpkg", State: model.StateFixed, FixedVersion: "7.88-1"}}}
	if created, err := s.PutClairVulnerability(ctx, v, true); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	// Also an API record over a feed one, and an invalid fix, refused whole.
	bad := ClairVulnerability{Namespace: "debian:12", Name: "CVE-1", Severity: model.SeverityCritical,
		FixedIn: []ClairFix{{Package: "x", VersionFormat: "dpkg", State: model.StateFixed}}}
	if _, err := s.PutClairVulnerability(ctx, bad, true); err == nil {
		t.Fatal("fixed without version accepted")
	}
	names, err := s.ClairVulnerabilityNames(ctx, "debian:12", "", 10)
	if err != nil || len(names) != 3 || names[0] != "CVE-1" || names[2] != "CVE-3" {
		t.Fatalf("names = %v, %v (want CVE-1..3: the failed put left nothing, CVE-4 is not-affected)", names, err)
	}
	if names, _ := s.ClairVulnerabilityNames(ctx, "debian:12", "CVE-1", 1); len(names) != 1 || names[0] != "CVE-2" {
		t.Fatalf("page after CVE-1 = %v", names)
	}
	vs, err := s.ClairVulnerabilities(ctx, "debian:12", []string{"CVE-1", "CVE-2", "CVE-3", "CVE-9"})
	if err != nil || len(vs) != 3 {
		t.Fatalf("vulnerabilities = %+v, %v", vs, err)
	}
	if vs[0].API || vs[0].Severity != model.SeverityHigh || len(vs[0].FixedIn) != 1 || vs[0].FixedIn[0].FixedVersion != "3.0.1-1" {
		t.Errorf("CVE-1 = %+v", vs[0])
	}
	if !vs[1].API || vs[1].Metadata != `{"k":1}` || vs[1].Severity != model.SeverityMedium || len(vs[1].FixedIn) != 1 {
		t.Errorf("CVE-2 = %+v", vs[1])
	}
	// The API record is matched like any advisory.
	advs, err := s.Advisories(ctx, []string{"debian:12"}, []string{"curl"})
	if err != nil || len(advs) != 1 || advs[0].Source != "api" || !advs[0].SourcePackage || advs[0].Severity != model.SeverityMedium {
		t.Fatalf("advisories = %+v, %v", advs, err)
	}
	if err := s.PutClairFix(ctx, "debian:12", "CVE-2", ClairFix{Package: "curl", VersionFormat: "dpkg", State: model.StateUnfixed}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutClairFix(ctx, "debian:12", "CVE-1", ClairFix{Package: "a", VersionFormat: "dpkg", State: model.StateUnfixed}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fix of a feed vulnerability: %v", err)
	}
	v.Severity, v.FixedIn = model.SeverityHigh, nil
	if created, err := s.PutClairVulnerability(ctx, v, false); err != nil || created {
		t.Fatal(created, err)
	}
	advs, _ = s.Advisories(ctx, []string{"debian:12"}, []string{"curl"})
	if len(advs) != 1 || advs[0].State != model.StateUnfixed || advs[0].Severity != model.SeverityHigh {
		t.Fatalf("after fix and update: %+v", advs)
	}
	if err := s.DeleteClairFix(ctx, "debian:12", "CVE-2", "curl"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClairFix(ctx, "debian:12", "CVE-2", "curl"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if vs, _ := s.ClairVulnerabilities(ctx, "debian:12", []string{"CVE-2"}); len(vs) != 1 || len(vs[0].FixedIn) != 0 {
		t.Fatalf("fixless API vulnerability = %+v", vs)
	}
	nss, err := s.ClairNamespaces(ctx)
	if err != nil || len(nss) != 1 || nss[0] != (ClairNamespace{"debian:12", "dpkg"}) {
		t.Fatalf("namespaces = %+v, %v", nss, err)
	}
	if err := s.DeleteClairVulnerability(ctx, "debian:12", "CVE-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClairVulnerability(ctx, "debian:12", "CVE-2"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if vs, _ := s.ClairVulnerabilities(ctx, "debian:12", []string{"CVE-2"}); len(vs) != 0 {
		t.Fatalf("deleted vulnerability still shown: %+v", vs)
	}
}
