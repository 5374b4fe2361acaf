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

// find returns the advisories of id for pkg in ns.
func find(advs []model.Advisory, id, ns, pkg string) []model.Advisory {
	var out []model.Advisory
	for _, a := range advs {
		if a.ID == id && a.Namespace == ns && a.Package == pkg {
			out = append(out, a)
		}
	}
	return out
}

func one(t *testing.T, advs []model.Advisory, id, ns, pkg string) model.Advisory {
	t.Helper()
	got := find(advs, id, ns, pkg)
	if len(got) != 1 {
		t.Fatalf("%s %s %s: %d advisories, want 1: %+v", id, ns, pkg, len(got), got)
	}
	return got[0]
}

func TestOVALv2Unpatched(t *testing.T) {
	const f = "v2/fixtures/rhel-9-including-unpatched.oval.xml.bz2"
	scope, advs := collect(t, OVAL{}, f, open(t, "vulndata", "redhat-oval", f))
	if scope != "redhat-oval/v2-including-unpatched/rhel-9" {
		t.Errorf("scope %q", scope)
	}
	type row struct{ id, pkg, state, fixed, arch string }
	var got []row
	for _, a := range advs {
		if a.Namespace != "rhel:9" || a.Module != "" || a.SourcePackage || a.VersionFormat != model.KindRPM || a.Source != "redhat-oval" {
			t.Errorf("advisory fields: %+v", a)
		}
		got = append(got, row{a.ID, a.Package, a.State, a.FixedVersion, strings.Join(a.Arch, ",")})
	}
	want := []row{
		{"CVE-2005-2541", "tar", model.StateWontFix, "", ""},
		{"CVE-2002-0059", "zlib-static", model.StateNotAffected, "", ""},
		{"CVE-2002-0059", "zlib-debugsource", model.StateNotAffected, "", ""},
		{"CVE-2002-0059", "zlib", model.StateNotAffected, "", ""},
		{"CVE-2002-0059", "zlib-devel", model.StateNotAffected, "", ""},
		{"RHSA-2022:4765", "firefox", model.StateFixed, "0:91.9.1-1.el9_0", "aarch64,ppc64le,s390x,x86_64"},
		{"RHSA-2022:4772", "thunderbird", model.StateFixed, "0:91.9.1-1.el9_0", "aarch64,ppc64le,s390x,x86_64"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	ff := one(t, advs, "RHSA-2022:4765", "rhel:9", "firefox")
	if !slices.Equal(ff.Aliases, []string{"CVE-2022-1529", "CVE-2022-1802"}) || ff.Severity != model.SeverityCritical ||
		ff.UpstreamSeverity != "Critical" || ff.Link != "https://access.redhat.com/errata/RHSA-2022:4765" ||
		ff.Title != "RHSA-2022:4765: firefox security update (Critical)" {
		t.Errorf("firefox: %+v", ff)
	}
	if tar := one(t, advs, "CVE-2005-2541", "rhel:9", "tar"); tar.Severity != model.SeverityMedium || len(tar.Aliases) != 0 {
		t.Errorf("tar: %+v", tar)
	}
}

func TestOVALv2RPMUnpatched(t *testing.T) {
	const f = "v2/fixtures/rhel-8-rpm-unpatched.xml"
	_, advs := collect(t, OVAL{}, f, open(t, "vulndata", "redhat-oval", f))
	if len(advs) != 16 {
		t.Errorf("%d advisories, want 16 (one per rpm binary)", len(advs))
	}
	for _, a := range advs {
		if a.ID != "CVE-2021-35937" || a.State != model.StateUnfixed || a.FixedVersion != "" || a.Namespace != "rhel:8" {
			t.Errorf("%+v", a)
		}
	}
	one(t, advs, "CVE-2021-35937", "rhel:8", "python3-rpm")
}

func TestOVALv2Modules(t *testing.T) {
	const f = "v2/rhel-8.oval.xml.gz"
	_, advs := collect(t, OVAL{}, f, open(t, "vulndata", "redhat-oval", f))
	sk := one(t, advs, "RHSA-2019:0975", "rhel:8", "skopeo")
	if sk.Module != "container-tools:rhel8" || sk.State != model.StateFixed ||
		sk.FixedVersion != "1:0.1.32-3.git1715c90.module+el8.0.0+2958+4e823551" || sk.Severity != model.SeverityHigh {
		t.Errorf("skopeo: %+v", sk)
	}
	idm := one(t, advs, "RHBA-2019:4268", "rhel:8", "softhsm")
	if idm.Module != "idm:DL1" || idm.Severity != model.SeverityUnknown || idm.UpstreamSeverity != "None" {
		t.Errorf("softhsm: %+v", idm)
	}
	var modular, plain int
	for _, a := range advs {
		if a.Module != "" {
			modular++
		} else {
			plain++
		}
	}
	if modular == 0 || plain == 0 {
		t.Errorf("modular %d, plain %d", modular, plain)
	}
}

func TestOVALv1TwoReleases(t *testing.T) {
	const f = "v1/com.redhat.rhsa-RHEL8.xml.gz"
	_, advs := collect(t, OVAL{}, f, open(t, "vulndata", "redhat-oval", f))
	// RHSA-2019:1619 vim states its RHEL 7 and RHEL 8 fixes side by side.
	if a := one(t, advs, "RHSA-2019:1619", "rhel:7", "vim-minimal"); a.FixedVersion != "2:7.4.160-6.el7_6" {
		t.Errorf("rhel:7 %+v", a)
	}
	if a := one(t, advs, "RHSA-2019:1619", "rhel:8", "vim-minimal"); a.FixedVersion != "2:8.0.1763-11.el8_0" {
		t.Errorf("rhel:8 %+v", a)
	}
	// Kernel definitions AND the running/boot kernel tests: ignored.
	if got := find(advs, "RHSA-2019:1167", "rhel:8", "kernel-doc"); len(got) != 1 || got[0].FixedVersion != "0:4.18.0-80.1.2.el8_0" {
		t.Errorf("kernel-doc %+v", got)
	}
}

func TestOVALv1NormalizedKpatch(t *testing.T) {
	const f = "v1/com.redhat.rhsa-RHEL9.normalized.xml.gz"
	scope, advs := collect(t, OVAL{}, f, open(t, "vulndata", "redhat-oval", f))
	if scope != "redhat-oval/v1/rhel-9" {
		t.Errorf("scope %q", scope)
	}
	// kpatch: "kernel version equals X" AND ("kpatch-patch not installed"
	// OR kpatch-patch-X earlier than ...): only the kpatch package is
	// stated; the kernel-equality and not-installed tests emit nothing.
	a := one(t, advs, "RHSA-2022:5214", "rhel:9", "kpatch-patch-5_14_0-70_13_1")
	if a.FixedVersion != "0:1-1.el9_0" || a.State != model.StateFixed {
		t.Errorf("%+v", a)
	}
	if got := find(advs, "RHSA-2022:5214", "rhel:9", "kernel"); len(got) != 0 {
		t.Errorf("kernel advisories from an equality precondition: %+v", got)
	}
	if a := one(t, advs, "RHSA-2022:8832", "rhel:9", "nodejs-packaging"); a.Module != "nodejs:18" {
		t.Errorf("%+v", a)
	}
}

func TestOVALErrors(t *testing.T) {
	doc := open(t, "vulndata", "redhat-oval", "v2/fixtures/rhel-8-rpm-unpatched.xml")
	cases := map[string][]byte{
		"truncated":     doc[:len(doc)*2/3],
		"cut at end":    bytes.TrimSpace(doc)[:len(bytes.TrimSpace(doc))-2],
		"empty":         nil,
		"wrong root":    []byte(`<feed><entry/></feed>`),
		"no tests":      cutSection(doc, "tests"),
		"no states":     cutSection(doc, "states"),
		"bad operator":  bytes.Replace(doc, []byte(`operator="AND"`), []byte(`operator="XOR"`), 1),
		"negated test":  bytes.Replace(doc, []byte(`<criterion comment="rpm is installed"`), []byte(`<criterion negate="true" comment="rpm is installed"`), 1),
		"unknown state": bytes.Replace(doc, []byte(`state="Affected"`), []byte(`state="Mystery"`), 1),
		"trailing root": append(slices.Clone(doc), []byte("<oval_definitions/>")...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := OVAL{}.Parse(context.Background(), "rhel-8-rpm-unpatched.xml", bytes.NewReader(b), func(model.Advisory) error { return nil })
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), "rhel-8-rpm-unpatched.xml") {
				t.Errorf("error does not name the document: %v", err)
			}
		})
	}
}

// cutSection removes <name>...</name> from an OVAL document.
func cutSection(doc []byte, name string) []byte {
	i := bytes.Index(doc, []byte("<"+name+">"))
	j := bytes.Index(doc, []byte("</"+name+">"))
	return append(slices.Clone(doc[:i]), doc[j+len(name)+3:]...)
}

func TestStripExt(t *testing.T) {
	for in, want := range map[string]string{
		"https://security.access.redhat.com/data/oval/v2/RHEL9/rhel-9-including-unpatched.oval.xml.bz2": "rhel-9-including-unpatched",
		"/x/com.redhat.rhsa-RHEL8.xml.gz": "com.redhat.rhsa-RHEL8",
		"cve-2023-38545.json":             "cve-2023-38545",
		"plain":                           "plain",
	} {
		if got := StripExt(in); got != want {
			t.Errorf("StripExt(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseOVAL(f *testing.F) {
	for _, p := range []string{"v2/fixtures/rhel-8-rpm-unpatched.xml", "v2/fixtures/rhel-9-including-unpatched.oval.xml.bz2"} {
		f.Add(open(f, "vulndata", "redhat-oval", p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := OVAL{}.Parse(context.Background(), "rhel-8.oval.xml", bytes.NewReader(b), func(a model.Advisory) error {
			if a.Package == "" || a.ID == "" || !strings.HasPrefix(a.Namespace, "rhel:") {
				t.Fatalf("incomplete advisory %+v", a)
			}
			if (a.State == model.StateFixed) != (a.FixedVersion != "") {
				t.Fatalf("state %s with fixed version %q", a.State, a.FixedVersion)
			}
			return nil
		})
		_ = err // malformed input must error, never panic
	})
}

func BenchmarkParseOVALv2(b *testing.B) {
	doc := open(b, "vulndata", "redhat-oval", "v2/rhel-8.oval.xml.gz")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := (OVAL{}).Parse(context.Background(), "rhel-8.oval.xml", bytes.NewReader(doc), func(model.Advisory) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
