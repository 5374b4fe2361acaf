package detect

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// fixtureImages turns every case under osrelease/ into an image root, keyed
// as in wants; a fixture without an expectation fails t.
func fixtureImages(t *testing.T) map[string]fs.FS {
	t.Helper()
	root := testdata.Path(t, "osrelease")
	images := map[string]fs.FS{}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if de.IsDir() {
			switch {
			case rel == "distro-info-data": // the codename tables: TestCodenameTables
				return fs.SkipDir
			case isImageRoot(p):
				images[rel] = os.DirFS(p)
				return fs.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(rel, ".txtar") {
			images[rel] = fstest.MapFS{osRel: {Data: txtar(data)["os-release"]}}
			return nil
		}
		w, ok := wants[rel]
		if !ok || w.at == "" {
			t.Errorf("bare fixture %s: no expectation with its place in the image (at) in wants", rel)
			return nil
		}
		images[rel] = fstest.MapFS{w.at: {Data: data}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return images
}

func isImageRoot(dir string) bool {
	for _, sub := range []string{"etc", "usr"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// txtar splits a txtar archive into its files.
func txtar(data []byte) map[string][]byte {
	files := map[string][]byte{}
	var name string
	for line := range strings.Lines(string(data)) {
		h := strings.TrimSpace(line)
		if n, ok := strings.CutPrefix(h, "-- "); ok && strings.HasSuffix(n, " --") {
			name = strings.TrimSuffix(n, " --")
			files[name] = []byte{}
			continue
		}
		if name != "" {
			files[name] = append(files[name], line...)
		}
	}
	return files
}

func TestFixtures(t *testing.T) {
	images := fixtureImages(t)
	for name := range wants {
		if _, ok := images[name]; !ok {
			t.Errorf("wants has %s, which is no fixture", name)
		}
	}
	for name, fsys := range images {
		t.Run(name, func(t *testing.T) {
			w, ok := wants[name]
			if !ok {
				t.Fatalf("fixture %s has no expectation: add one to wants", name)
			}
			got, ok, err := Detect(fsys)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if w.none {
				if ok {
					t.Fatalf("Detect identified %+v; want nothing", got)
				}
				return
			}
			if !ok {
				t.Fatal("Detect identified nothing")
			}
			check := func(field, got, want string) {
				if got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			check("ID", got.ID, w.id)
			check("VersionID", got.VersionID, w.version)
			check("VersionCodename", got.VersionCodename, w.codename)
			check("Namespace", got.Namespace, w.ns)
			check("Source", got.Source, w.from)
		})
	}
}

// TestFixturesWhole checks every field for a few fixtures, one per source.
func TestFixturesWhole(t *testing.T) {
	images := fixtureImages(t)
	for name, want := range map[string]model.Distribution{
		"debian/7": {
			ID: "debian", Name: "Debian GNU/Linux", VersionID: "7", VersionCodename: "wheezy",
			PrettyName: "Debian GNU/Linux 7 (wheezy)", Namespace: "debian:7", Source: osRel,
		},
		"ubuntu/10.04": {
			ID: "ubuntu", Name: "Ubuntu", VersionID: "10.04", VersionCodename: "lucid",
			PrettyName: "Ubuntu 10.04 LTS", Namespace: "ubuntu:10.04", Source: lsbRel,
		},
		"ubuntu-debootstrap/24.04": {
			ID: "ubuntu", IDLike: []string{"debian"}, Name: "Ubuntu", VersionID: "24.04", VersionCodename: "noble",
			PrettyName: "Ubuntu 24.04 LTS", Namespace: "ubuntu:24.04", Source: usrRel,
		},
		"rhel-family/7": {
			ID: "rhel", IDLike: []string{"fedora"}, Name: "Red Hat Enterprise Linux Server", VersionID: "7.7",
			PrettyName: "Red Hat Enterprise Linux Server 7.7 (Maipo)", CPE: "cpe:/o:redhat:enterprise_linux:7.7:GA:server",
			Namespace: "rhel:7", Source: osRel,
		},
		"rhel-family/oracle-6": {
			ID: "ol", Name: "Oracle Linux Server", VersionID: "6.10", PrettyName: "Oracle Linux Server release 6.10",
			Namespace: "oracle:6", Source: "etc/oracle-release",
		},
		"trivy/release/centos-stream": {
			ID: "centos", IDLike: []string{"rhel", "fedora"}, Name: "CentOS Stream", VersionID: "8",
			PrettyName: "CentOS Stream 8", CPE: "cpe:/o:centos:centos:8", Namespace: "centos-stream:8", Source: osRel,
		},
		"trivy/release/activestate": {
			ID: "activestate", IDLike: []string{"buildroot", "busybox"}, VersionID: "1.0",
			Namespace: "activestate:1.0", Source: osRel,
		},
		"alpine/20240923": {
			ID: "alpine", Name: "Alpine Linux", VersionID: "3.21.0_alpha20240923", PrettyName: "Alpine Linux edge",
			Namespace: "alpine:edge", Source: osRel,
		},
	} {
		t.Run(name, func(t *testing.T) {
			fsys, ok := images[name]
			if !ok {
				t.Fatalf("no fixture %s", name)
			}
			got, ok, err := Detect(fsys)
			if err != nil || !ok {
				t.Fatalf("Detect: ok=%v err=%v", ok, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Detect =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// TestClaircoreExpectations checks the parse and distribution each claircore
// txtar records. claircore replaces PRETTY_NAME by REDHAT_BUGZILLA_PRODUCT
// where that exists; vigil keeps PRETTY_NAME, so there the os-release value
// is expected instead.
func TestClaircoreExpectations(t *testing.T) {
	dir := testdata.Path(t, "osrelease", "claircore-osrelease-txtar")
	names, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no txtar in %s: %v", dir, err)
	}
	for _, p := range names {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			ar := txtar(data)
			var parsed map[string]string
			var dist struct {
				DID        string `json:"did"`
				Name       string `json:"name"`
				PrettyName string `json:"pretty_name"`
				VersionID  string `json:"version_id"`
				Codename   string `json:"version_code_name"`
				CPE        string `json:"cpe"`
			}
			if err := json.Unmarshal(ar["Parsed"], &parsed); err != nil {
				t.Fatalf("Parsed: %v", err)
			}
			if err := json.Unmarshal(ar["Distribution"], &dist); err != nil {
				t.Fatalf("Distribution: %v", err)
			}
			kv, err := parseKeyValues(ar["os-release"])
			if err != nil {
				t.Fatalf("parseKeyValues: %v", err)
			}
			if !reflect.DeepEqual(kv, parsed) {
				t.Errorf("parse =\n%v\nclaircore:\n%v", kv, parsed)
			}
			got, ok, err := Detect(fstest.MapFS{osRel: {Data: ar["os-release"]}})
			if err != nil || !ok {
				t.Fatalf("Detect: ok=%v err=%v", ok, err)
			}
			pretty := dist.PrettyName
			if _, ok := parsed["REDHAT_BUGZILLA_PRODUCT"]; ok {
				pretty = parsed["PRETTY_NAME"]
			}
			if got.ID != dist.DID || got.Name != dist.Name || got.VersionID != dist.VersionID ||
				got.CPE != dist.CPE || got.PrettyName != pretty {
				t.Errorf("Detect = %+v; claircore %+v", got, dist)
			}
			if dist.Codename != "" && got.VersionCodename != dist.Codename {
				t.Errorf("VersionCodename = %q, claircore %q", got.VersionCodename, dist.Codename)
			}
		})
	}
}

// recordFS notes every name opened through it.
type recordFS struct {
	fs.FS
	opened *[]string
}

func (r recordFS) Open(name string) (fs.File, error) {
	*r.opened = append(*r.opened, name)
	return r.FS.Open(name)
}

// TestPatterns checks the layer reader's contract: Detect opens only files
// matching Patterns (and the folders holding them), and an image holding
// only those files gives the same result.
func TestPatterns(t *testing.T) {
	for name, fsys := range fixtureImages(t) {
		t.Run(name, func(t *testing.T) {
			var opened []string
			want, wantOK, wantErr := Detect(recordFS{fsys, &opened})
			for _, p := range opened {
				if !matchesPatterns(p) && !slices.ContainsFunc(Patterns, func(pat string) bool { return path.Dir(pat) == p }) {
					t.Errorf("Detect opened %s, which no pattern matches", p)
				}
			}
			kept := fstest.MapFS{}
			err := fs.WalkDir(fsys, ".", func(p string, de fs.DirEntry, err error) error {
				if err != nil || de.IsDir() || !matchesPatterns(p) {
					return err
				}
				data, err := fs.ReadFile(fsys, p)
				kept[p] = &fstest.MapFile{Data: data}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			got, gotOK, gotErr := Detect(kept)
			if !reflect.DeepEqual(got, want) || gotOK != wantOK || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("on the kept files Detect = %+v %v %v; on the image %+v %v %v", got, gotOK, gotErr, want, wantOK, wantErr)
			}
		})
	}
}

func matchesPatterns(name string) bool {
	for _, pat := range Patterns {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}
