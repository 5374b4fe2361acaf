package redhat

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
	"github.com/vigil-scanner/vigil/internal/version/rpm"
)

// open returns a shared test file, decompressed by its suffix.
func open(t testing.TB, elem ...string) []byte {
	t.Helper()
	p := testdata.Path(t, elem...)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(p, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case strings.HasSuffix(p, ".bz2"):
		r = bzip2.NewReader(bytes.NewReader(b))
	default:
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func collect(t testing.TB, f interface {
	Parse(context.Context, string, io.Reader, func(model.Advisory) error) (string, error)
}, name string, doc []byte) (string, []model.Advisory) {
	t.Helper()
	var out []model.Advisory
	scope, err := f.Parse(context.Background(), name, bytes.NewReader(doc), func(a model.Advisory) error {
		out = append(out, a)
		return nil
	})
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return scope, out
}

// manifestPackage is one rpm of a Red Hat catalog rpm-manifest.
type manifestPackage struct {
	Name, Version, Release, Arch, Epoch string
}

// ubi8Manifest reads the rpm-manifest of image 5cc9ca3ddd19c7782937e026
// (ubi8 8.0 amd64). The manifest has no binary epoch; as the groundtruth
// header says, it is taken from srpm_nevra.
func ubi8Manifest(t *testing.T) []manifestPackage {
	b := open(t, "pkgdb", "rpm", "manifests", "claircore-ubi8_ubi.txtar")
	const section = "-- catalog.redhat.com/api/containers/v1/images/id/5cc9ca3ddd19c7782937e026/rpm-manifest --\n"
	_, body, ok := bytes.Cut(b, []byte(section))
	if !ok {
		t.Fatal("manifest section not found")
	}
	body, _, _ = bytes.Cut(body, []byte("\n-- "))
	var m struct {
		RPMs []struct {
			Name, Version, Release, Architecture string
			SrpmNevra                            string `json:"srpm_nevra"`
		}
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var out []manifestPackage
	for _, r := range m.RPMs {
		_, evra, ok := strings.Cut(r.SrpmNevra, ":")
		if !ok {
			t.Fatalf("srpm_nevra %q has no epoch", r.SrpmNevra)
		}
		i := strings.LastIndexByte(r.SrpmNevra[:len(r.SrpmNevra)-len(evra)-1], '-')
		epoch := r.SrpmNevra[i+1 : len(r.SrpmNevra)-len(evra)-1]
		out = append(out, manifestPackage{Name: r.Name, Version: r.Version, Release: r.Release, Arch: r.Architecture, Epoch: epoch})
	}
	if len(out) != 178 {
		t.Fatalf("manifest has %d rpms, want 178", len(out))
	}
	return out
}

// matchIDs evaluates advisories against installed packages the way the
// groundtruth does: binary name, arch, no module enabled, installed EVR
// older than the fixed EVR.
func matchIDs(t *testing.T, advs []model.Advisory, pkgs []manifestPackage, ns string) []string {
	set := map[string]bool{}
	for _, a := range advs {
		if a.Namespace != ns || a.Module != "" || a.State != model.StateFixed {
			continue
		}
		for _, p := range pkgs {
			if p.Name != a.Package || (len(a.Arch) > 0 && !slices.Contains(a.Arch, p.Arch)) {
				continue
			}
			c, err := rpm.Compare(p.Epoch+":"+p.Version+"-"+p.Release, a.FixedVersion)
			if err != nil {
				t.Fatalf("%s vs %s: %v", p.Name, a.FixedVersion, err)
			}
			if c < 0 {
				set[a.ID] = true
			}
		}
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// groundtruthIDs reads the RHSA ids of a groundtruth file.
func groundtruthIDs(t *testing.T, name string) []string {
	b := open(t, "groundtruth", "rhel", name)
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, _, ok := strings.Cut(line, ": ") // "RHSA-2019:1619: vim security update (Important)"
		if !ok {
			t.Fatalf("groundtruth line %q", line)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestGroundtruthUBI8(t *testing.T) {
	pkgs := ubi8Manifest(t)
	for _, tc := range []struct{ oval, truth, scope string }{
		{"v1/com.redhat.rhsa-RHEL8.xml.gz", "ubi8-8.0-amd64__oval-v1-rhsa-RHEL8-2019-11-13.txt", "redhat-oval/v1/rhel-8"},
		{"v2/rhel-8.oval.xml.gz", "ubi8-8.0-amd64__oval-v2-rhel-8-2020-03-19.txt", "redhat-oval/v2/rhel-8"},
	} {
		t.Run(tc.truth, func(t *testing.T) {
			want := groundtruthIDs(t, tc.truth)
			scope, advs := collect(t, OVAL{}, tc.oval, open(t, "vulndata", "redhat-oval", tc.oval))
			if scope != tc.scope {
				t.Errorf("scope = %q, want %q", scope, tc.scope)
			}
			got := matchIDs(t, advs, pkgs, "rhel:8")
			if !slices.Equal(got, want) {
				t.Errorf("matched %d RHSAs:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
			}
		})
	}
}
