package scan

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/catalog/dpkg"
	"github.com/vigil-scanner/vigil/internal/feed/debian"
	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/match"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/testdata"
	"github.com/vigil-scanner/vigil/internal/update"
)

// debTestStore opens a fresh SQLite store in t's temp dir.
func debTestStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// truth is the part of an images/*.truth.json ground truth these tests use.
type truth struct {
	Name      string            `json:"name"`
	OSRelease map[string]string `json:"os_release"`
	Outputs   map[string]struct {
		Path string `json:"path"`
	} `json:"outputs"`
	Packages []struct {
		Name          string `json:"name"`
		Version       string `json:"version"`
		Arch          string `json:"arch"`
		SourceName    string `json:"source_name"`
		SourceVersion string `json:"source_version"`
		Status        string `json:"status"`
		LayerDiffID   string `json:"layer_diff_id"`
	} `json:"packages"`
}

// TestDebianImagesMatchTruth scans every Debian-based shared image, in each
// of its outputs, and compares the packages (with introducing layers) and
// the OS with its ground truth.
func TestDebianImagesMatchTruth(t *testing.T) {
	dir := testdata.Path(t, "images")
	truths, err := filepath.Glob(filepath.Join(dir, "*.truth.json"))
	if err != nil || len(truths) == 0 {
		t.Fatalf("no ground truths in %s", dir)
	}
	st := debTestStore(t)
	s := New(st, nil)
	checked := 0
	for _, tf := range truths {
		var tr truth
		b, err := os.ReadFile(tf)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &tr); err != nil {
			t.Fatalf("%s: %v", tf, err)
		}
		if tr.OSRelease["ID"] != "debian" {
			continue
		}
		for kind, out := range tr.Outputs {
			ref := filepath.Join(dir, strings.TrimSuffix(out.Path, "/"))
			t.Run(tr.Name+"/"+kind, func(t *testing.T) {
				checked++
				res, _, err := s.Scan(context.Background(), ref, image.Options{})
				if err != nil {
					t.Fatal(err)
				}
				d := res.Distribution
				// A codename the os-release lacks (distroless) is derived, so it
				// is compared only where the ground truth states one.
				if d == nil || d.ID != tr.OSRelease["ID"] || d.VersionID != tr.OSRelease["VERSION_ID"] || d.Namespace != "debian:"+tr.OSRelease["VERSION_ID"] ||
					(tr.OSRelease["VERSION_CODENAME"] != "" && d.VersionCodename != tr.OSRelease["VERSION_CODENAME"]) || d.PrettyName != tr.OSRelease["PRETTY_NAME"] {
					t.Errorf("distribution %+v, want os-release %v", d, tr.OSRelease)
				}
				var want, got []string
				for _, p := range tr.Packages {
					if p.Status == "install ok installed" {
						want = append(want, strings.Join([]string{p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.LayerDiffID}, " "))
					}
				}
				for _, p := range res.Packages {
					got = append(got, strings.Join([]string{p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.Layer}, " "))
				}
				diffSets(t, "package", want, got)
				if len(res.Warnings) > 0 {
					t.Errorf("warnings: %v", res.Warnings)
				}
			})
		}
	}
	if checked == 0 {
		t.Fatal("no Debian image with a ground truth was found")
	}
}

// diffSets fails t with the rows missing from got and the extra ones.
func diffSets(t *testing.T, what string, want, got []string) {
	t.Helper()
	w, g := map[string]bool{}, map[string]bool{}
	for _, s := range want {
		w[s] = true
	}
	for _, s := range got {
		g[s] = true
	}
	var missing, extra []string
	for s := range w {
		if !g[s] {
			missing = append(missing, s)
		}
	}
	for s := range g {
		if !w[s] {
			extra = append(extra, s)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 || len(got) != len(want) {
		t.Errorf("%s rows: want %d, got %d\nmissing: %q\nextra: %q", what, len(want), len(got), missing, extra)
	}
}

// TestDebianOVALGroundtruth matches each Debian package database named by a
// groundtruth/debian file against the whole OVAL feed of its release, and
// compares with the expected rows (computed with dpkg --compare-versions).
func TestDebianOVALGroundtruth(t *testing.T) {
	if testing.Short() {
		t.Skip("imports whole OVAL files; skipped with -short")
	}
	root := testdata.Dir(t)
	files, _ := filepath.Glob(filepath.Join(root, "groundtruth", "debian", "*.tsv"))
	if len(files) == 0 {
		t.Skip("no groundtruth/debian files")
	}
	for _, gt := range files {
		t.Run(filepath.Base(gt), func(t *testing.T) {
			hdr, rows := readGroundtruth(t, gt)
			ctx := context.Background()
			st := debTestStore(t)
			sc, err := update.ImportFile(ctx, st, "debian-oval", filepath.Join(root, hdr["oval"]), update.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			codename := strings.TrimPrefix(sc.Scope, "debian-oval/")
			ns, ok := debian.Namespace(codename)
			if !ok {
				t.Fatalf("scope %s: unknown codename", sc.Scope)
			}
			pkgs := statusPackages(t, root, hdr["status"])
			res, err := match.Match(ctx, st, &model.Distribution{ID: "debian", Namespace: ns}, pkgs)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) > 0 {
				t.Errorf("warnings: %v", res.Warnings)
			}
			// The ground truth evaluates only "less than" criteria: the
			// definitions that state a package is affected with no fix yet
			// (reported as unfixed) are outside it.
			var got []string
			for _, f := range res.Findings {
				if f.Advisory.State != model.StateFixed {
					continue
				}
				got = append(got, strings.Join([]string{f.Package.Name, f.Package.Version, f.Advisory.Package, f.Advisory.Title, "0:" + strings.TrimPrefix(f.Advisory.FixedVersion, "0:")}, "\t"))
			}
			diffSets(t, "finding", rows, got)
		})
	}
}

// readGroundtruth returns a groundtruth file's "# key: value" header lines
// and its data rows.
func readGroundtruth(t *testing.T, path string) (map[string]string, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := map[string]string{}
	var rows []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": "); ok {
				hdr[k] = v
			}
			continue
		}
		if strings.TrimSpace(line) != "" {
			rows = append(rows, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return hdr, rows
}

// statusPackages reads the dpkg status a groundtruth header names: a file,
// or "ARCHIVE :: MEMBER" inside a (gzipped) layer tar.
func statusPackages(t *testing.T, root, spec string) []model.Package {
	t.Helper()
	archive, member, inTar := strings.Cut(spec, " :: ")
	if !inTar {
		f, err := os.Open(filepath.Join(root, spec))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		pkgs, err := dpkg.Cataloger{}.Parse("var/lib/dpkg/status", f)
		if err != nil {
			t.Fatal(err)
		}
		return pkgs
	}
	f, err := os.Open(filepath.Join(root, archive))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(archive, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	// Read the layer through the indexer, as a scan would.
	res, err := index.New(nil, nil).Read(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, ok := res.Packages[strings.TrimPrefix(member, "./")]
	if !ok {
		t.Fatalf("%s: no %s in the layer (have %v)", archive, member, keys(res.Packages))
	}
	return pkgs
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
