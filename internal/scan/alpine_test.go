package scan_test

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigil-scanner/vigil/internal/catalog/apk"
	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/match"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/scan"
	"github.com/vigil-scanner/vigil/internal/store"
	"github.com/vigil-scanner/vigil/internal/testdata"
	"github.com/vigil-scanner/vigil/internal/update"
	"github.com/vigil-scanner/vigil/internal/version"
)

// newStore opens a fresh SQLite store in t.TempDir() holding the documents
// at files (paths inside the shared test data), each imported as source.
func newStore(t *testing.T, source string, files ...string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, f := range files {
		if _, err := update.ImportFile(ctx, st, source, testdata.Path(t, f), update.DefaultOptions()); err != nil {
			t.Fatalf("import %s: %v", f, err)
		}
	}
	return st
}

// matchClean matches pkgs on d against st; matching must succeed without
// warnings.
func matchClean(t *testing.T, st match.Source, d *model.Distribution, pkgs []model.Package) []model.Finding {
	t.Helper()
	res, err := match.Match(context.Background(), st, d, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	return res.Findings
}

// alpineTruth is one groundtruth/alpine file: its inputs and its rows.
type alpineTruth struct {
	installed string   // pkgdb/apk/... installed database
	secdb     []string // vulndata/alpine-secdb/... documents
	rows      []string // "package installed_version origin vuln_id fixed_in", sorted
}

// readTruth reads a groundtruth file: its "# key: value" header lines, and
// its data lines (neither empty nor comments).
func readTruth(t *testing.T, path string) (header map[string]string, lines []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	header = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "# "); ok {
			if k, v, ok := strings.Cut(c, ": "); ok {
				header[k] = v
			}
			continue
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return header, lines
}

func readAlpineTruth(t *testing.T, path string) alpineTruth {
	t.Helper()
	header, lines := readTruth(t, path)
	gt := alpineTruth{installed: header["installed-db"], secdb: strings.Fields(header["secdb"])}
	for _, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("%s: row %q: want 6 tab-separated fields", path, line)
		}
		gt.rows = append(gt.rows, strings.Join(f[:5], " "))
	}
	if gt.installed == "" || len(gt.secdb) == 0 {
		t.Fatalf("%s: header lacks installed-db or secdb", path)
	}
	slices.Sort(gt.rows)
	return gt
}

// branchOf is the secdb branch directory of a secdb document path.
func branchOf(doc string) string { return filepath.Base(filepath.Dir(doc)) }

// findingRows renders findings as groundtruth rows, sorted.
func findingRows(fs []model.Finding) []string {
	var out []string
	for _, f := range fs {
		p, a := f.Package, f.Advisory
		out = append(out, strings.Join([]string{p.Name, p.Version, p.SourceName, a.ID, a.FixedVersion}, " "))
	}
	slices.Sort(out)
	return out
}

func readInstalled(t *testing.T, path string) []model.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := apk.Cataloger{}.Parse("lib/apk/db/installed", f)
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// alpineImages are the images whose installed database a groundtruth file
// names; they are scanned whole as well.
var alpineImages = map[string]string{
	"pkgdb/apk/alpine-3.10.4-docker-save-2020-01/lib/apk/db/installed": "images/docker-save/alpine-3.10-2020-01.docker-save.tar.gz",
	"pkgdb/apk/alpine-3.11.5-docker-save-2020-03/lib/apk/db/installed": "images/docker-save/alpine-3.11-2020-03.docker-save.tar.gz",
	"pkgdb/apk/alpine-3.10.9-x86_64/lib/apk/db/installed":              "images/alpine-minirootfs/alpine-minirootfs-3.10.9-x86_64.tar.gz",
	"pkgdb/apk/alpine-3.11.13-x86_64/lib/apk/db/installed":             "images/alpine-minirootfs/alpine-minirootfs-3.11.13-x86_64.tar.gz",
	"pkgdb/apk/alpine-3.18.9-x86_64/lib/apk/db/installed":              "images/alpine-minirootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz",
	"pkgdb/apk/alpine-3.20.3-x86_64/lib/apk/db/installed":              "images/alpine-minirootfs/alpine-minirootfs-3.20.3-x86_64.tar.gz",
}

// TestAlpineGroundTruth matches every groundtruth/alpine pair — installed
// database × whole secdb branch (main and community) — and, where the
// database comes from an image in the shared data, scans that image too:
// both must give exactly the groundtruth rows.
func TestAlpineGroundTruth(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata.Path(t, "groundtruth", "alpine"), "*.tsv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no groundtruth/alpine files: %v", err)
	}
	scanned := map[string]bool{}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".tsv"), func(t *testing.T) {
			ctx := context.Background()
			gt := readAlpineTruth(t, file)
			branch := branchOf(gt.secdb[0])
			for _, d := range gt.secdb {
				if branchOf(d) != branch {
					t.Fatalf("secdb documents of two branches: %v", gt.secdb)
				}
			}
			st := newStore(t, "alpine", gt.secdb...)
			dist := &model.Distribution{ID: "alpine", Namespace: "alpine:" + branch}

			pkgs := readInstalled(t, testdata.Path(t, gt.installed))
			if got := findingRows(matchClean(t, st, dist, pkgs)); !slices.Equal(got, gt.rows) {
				t.Errorf("installed db × secdb:\n got %q\nwant %q", got, gt.rows)
			}

			ref, ok := alpineImages[gt.installed]
			if !ok {
				return
			}
			scanned[ref] = true
			rep, _, err := scan.New(st, nil).Scan(ctx, testdata.Path(t, ref), image.Options{})
			if err != nil {
				t.Fatalf("scan %s: %v", ref, err)
			}
			if rep.Distribution == nil || rep.Distribution.Namespace != dist.Namespace {
				t.Fatalf("scan %s: distribution %+v, want namespace %s", ref, rep.Distribution, dist.Namespace)
			}
			if len(rep.Packages) != len(pkgs) {
				t.Errorf("scan %s: %d packages, the installed db holds %d", ref, len(rep.Packages), len(pkgs))
			}
			var got []string
			for _, v := range rep.Vulnerabilities {
				if v.State != model.StateFixed || v.Namespace != dist.Namespace || v.DataSource != "alpine-secdb" {
					t.Errorf("scan %s: finding %+v: want a fixed alpine-secdb advisory of %s", ref, v, dist.Namespace)
				}
				got = append(got, strings.Join([]string{v.Package, v.InstalledVersion, v.SourceName, v.ID, v.FixedVersion}, " "))
			}
			slices.Sort(got)
			if !slices.Equal(got, gt.rows) {
				t.Errorf("scan %s:\n got %q\nwant %q", ref, got, gt.rows)
			}
		})
	}
	for _, ref := range alpineImages {
		if !scanned[ref] {
			t.Errorf("image %s was not scanned: no groundtruth file names its installed database", ref)
		}
	}
}

// rawSecdb is the part of a secdb document (JSON or YAML) the groundtruth
// rule reads, decoded here independently of the feed.
type rawSecdb struct {
	Packages []struct {
		Pkg struct {
			Name     string              `json:"name" yaml:"name"`
			Secfixes map[string][]string `json:"secfixes" yaml:"secfixes"`
		} `json:"pkg" yaml:"pkg"`
	} `json:"packages" yaml:"packages"`
}

// groundtruthRule applies the groundtruth's stated rule to raw secdb
// documents: an installed package whose origin is a secdb package name is
// affected by every id listed under a fixed version (other than "0") newer
// than its version, by apk-tools 2 rules. It returns rows as findingRows.
func groundtruthRule(t *testing.T, docs []string, pkgs []model.Package) []string {
	t.Helper()
	v2, _ := version.Lookup(version.FormatAPK2)
	var rows []string
	for _, doc := range docs {
		b, err := os.ReadFile(testdata.Path(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		var d rawSecdb
		if strings.HasSuffix(doc, ".json") {
			err = json.Unmarshal(b, &d)
		} else {
			err = yaml.Unmarshal(b, &d)
		}
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		for _, p := range pkgs {
			for _, e := range d.Packages {
				if e.Pkg.Name != p.SourceName {
					continue
				}
				for fixed, ids := range e.Pkg.Secfixes {
					if c, _ := v2.Compare(p.Version, fixed); fixed == "0" || c >= 0 {
						continue
					}
					for _, id := range ids {
						rows = append(rows, strings.Join([]string{p.Name, p.Version, p.SourceName, id, fixed}, " "))
					}
				}
			}
		}
	}
	slices.Sort(rows)
	return rows
}

// TestAlpineAllDatabases matches every installed database in pkgdb/apk
// against the whole secdb of its branch, 2024 JSON and (where the branch is
// there) 2020 YAML — groundtruth pairs and all the others — and checks:
//
//   - the findings are exactly what the groundtruth's stated rule gives when
//     applied directly to the raw documents (groundtruthRule);
//   - apk-tools 2 and apk-tools 3 rules never disagree on whether a
//     (package, fixed advisory) pair is affected. The groundtruth was
//     computed with apk-tools 2 rules for every image; vigil picks the rules
//     by the apk-tools installed (2.x in every image here). Pairs apk-tools
//     3 refuses are logged: under its rules they would be warnings, not
//     findings. See docs/distributions.md.
func TestAlpineAllDatabases(t *testing.T) {
	ctx := context.Background()
	v2, _ := version.Lookup(version.FormatAPK2)
	v3, _ := version.Lookup(version.FormatAPK)
	dbs, err := filepath.Glob(filepath.Join(testdata.Path(t, "pkgdb", "apk"), "*", "lib", "apk", "db", "installed"))
	if err != nil || len(dbs) == 0 {
		t.Fatalf("no pkgdb/apk databases: %v", err)
	}
	pairs, secdbs, findings := 0, 0, 0
	var differ, refused []string
	stores := map[string]*store.Store{} // by secdb directory: databases of one branch share it
	for _, db := range dbs {
		name := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(db)))))
		branch := alpineBranch(name)
		pkgs := readInstalled(t, db)
		if major := apk.APKToolsMajor(pkgs); major != 2 {
			t.Errorf("%s: apk-tools major %d, want 2 (every image in the shared data ships apk-tools 2)", name, major)
		}
		origins := map[string]bool{}
		for _, p := range pkgs {
			origins[p.SourceName] = true
		}
		for _, snap := range []struct{ dir, ext string }{{"whole-2024-12-31", ".json"}, {"whole-2020-02", ".yaml"}} {
			dir := "vulndata/alpine-secdb/" + snap.dir + "/" + branch
			if _, err := os.Stat(filepath.Join(testdata.Dir(t), dir)); err != nil {
				continue // no such branch in that snapshot
			}
			secdbs++
			docs := []string{dir + "/main" + snap.ext, dir + "/community" + snap.ext}
			st, ok := stores[dir]
			if !ok {
				st = newStore(t, "alpine", docs...)
				stores[dir] = st
			}
			dist := &model.Distribution{ID: "alpine", Namespace: "alpine:" + branch}
			got := findingRows(matchClean(t, st, dist, pkgs))
			findings += len(got)
			if want := groundtruthRule(t, docs, pkgs); !slices.Equal(got, want) {
				t.Errorf("%s × %s:\n got %q\nwant %q", name, dir, got, want)
			}
			advs, err := st.Advisories(ctx, []string{dist.Namespace}, slices.Sorted(maps.Keys(origins)))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pkgs {
				for _, a := range advs {
					if a.Package != p.SourceName || a.State != model.StateFixed {
						continue
					}
					pairs++
					pair := name + " × " + dir + ": " + p.Name + " " + p.Version + " vs " + a.ID + " fixed in " + a.FixedVersion
					c2, err := v2.Compare(p.Version, a.FixedVersion)
					if err != nil {
						t.Fatalf("%s: apk-tools 2 rules refused: %v", pair, err)
					}
					c3, err := v3.Compare(p.Version, a.FixedVersion)
					switch {
					case err != nil:
						refused = append(refused, pair)
					case (c2 < 0) != (c3 < 0):
						differ = append(differ, pair)
					}
				}
			}
		}
	}
	t.Logf("%d databases × %d secdb snapshots: %d findings; %d (package, fixed advisory) pairs compared under both rule sets; apk-tools 3 refuses %d:\n%s",
		len(dbs), secdbs, findings, pairs, len(refused), strings.Join(refused, "\n"))
	if pairs == 0 {
		t.Fatal("no pairs compared")
	}
	if len(differ) > 0 {
		t.Errorf("apk-tools 2 and 3 rules disagree on %d pairs:\n%s", len(differ), strings.Join(differ, "\n"))
	}
}

// alpineBranch maps a pkgdb/apk directory name (alpine-3.15.11-x86_64,
// alpine-20240923-x86_64, alpine-3.10.4-docker-save-2020-01) to its secdb
// branch (v3.15, edge).
func alpineBranch(dir string) string {
	v := strings.Split(strings.TrimPrefix(dir, "alpine-"), "-")[0]
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return "edge" // dated snapshots
	}
	return "v" + parts[0] + "." + parts[1]
}
