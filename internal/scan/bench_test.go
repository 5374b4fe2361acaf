package scan

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/testdata"
	"github.com/vigil-scanner/vigil/internal/update"
)

// benchStore returns a store holding the tracker test document.
func benchStore(b *testing.B) *Scanner {
	st := debTestStore(b)
	doc := filepath.Join(b.TempDir(), "tracker.json")
	if err := os.WriteFile(doc, []byte(trackerDoc), 0o644); err != nil {
		b.Fatal(err)
	}
	if _, err := update.ImportFile(context.Background(), st, "debian", doc, update.DefaultOptions()); err != nil {
		b.Fatal(err)
	}
	return New(st, nil)
}

// BenchmarkIndexLayer reads the one layer of debian12-minbase (78 MB
// uncompressed, gzip) through the indexer, without any cache.
func BenchmarkIndexLayer(b *testing.B) {
	ref := testdata.Path(b, "images", "debian12-minbase.docker.tar")
	img, err := image.Open(context.Background(), ref, image.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	ix := index.New(nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ix.ReadLayer(context.Background(), img.Layers[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanCold scans debian12-layers (3 layers, 93 packages) against a
// warm vulnerability database with an empty layer cache each time.
func BenchmarkScanCold(b *testing.B) {
	ref := testdata.Path(b, "images", "debian12-layers.docker.tar")
	for b.Loop() {
		b.StopTimer()
		s := benchStore(b)
		b.StartTimer()
		if _, _, err := s.Scan(context.Background(), ref, image.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRescan scans an already indexed image: open, cached index
// report, match, report.
func BenchmarkRescan(b *testing.B) {
	ref := testdata.Path(b, "images", "debian12-layers.docker.tar")
	s := benchStore(b)
	if _, _, err := s.Scan(context.Background(), ref, image.Options{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, st, err := s.Scan(context.Background(), ref, image.Options{}); err != nil || !st.ImageCached {
			b.Fatalf("rescan: %+v %v", st, err)
		}
	}
}
