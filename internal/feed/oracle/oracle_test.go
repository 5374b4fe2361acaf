package oracle

import (
	"bytes"
	"compress/bzip2"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testdata.Path(t, "vulndata", "oracle-oval", name))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".bz2") {
		if b, err = io.ReadAll(bzip2.NewReader(bytes.NewReader(b))); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func parse(t testing.TB, name string, doc []byte) (string, []model.Advisory, error) {
	var out []model.Advisory
	scope, err := Feed{}.Parse(context.Background(), name, bytes.NewReader(doc), func(a model.Advisory) error {
		out = append(out, a)
		return nil
	})
	return scope, out, err
}

type row struct{ ns, pkg, fixed, arch, module string }

func rows(advs []model.Advisory, id string) []row {
	var out []row
	for _, a := range advs {
		if a.ID == id {
			out = append(out, row{a.Namespace, a.Package, a.FixedVersion, strings.Join(a.Arch, ","), a.Module})
		}
	}
	return out
}

func TestSingleELSA(t *testing.T) {
	scope, advs, err := parse(t, "ELSA-2007-0057.xml", read(t, "ELSA-2007-0057.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if scope != "oracle-oval/ELSA-2007-0057" {
		t.Errorf("scope %q", scope)
	}
	var pkgs []string
	for _, a := range advs {
		pkgs = append(pkgs, a.Package)
		if a.ID != "ELSA-2007-0057" || a.Namespace != "oracle:5" || a.State != model.StateFixed || a.FixedVersion != "30:9.3.3-8.el5" ||
			a.Severity != model.SeverityMedium || a.UpstreamSeverity != "MODERATE" || len(a.Arch) != 0 || a.Module != "" ||
			!slices.Equal(a.Aliases, []string{"CVE-2007-0493", "CVE-2007-0494"}) || a.Source != "oracle-oval" ||
			a.VersionFormat != model.KindRPM || a.SourcePackage || a.Link != "http://linux.oracle.com/errata/ELSA-2007-0057.html" ||
			a.Title != "ELSA-2007-0057: Moderate: bind security update (MODERATE)" {
			t.Errorf("%+v", a)
		}
	}
	slices.Sort(pkgs)
	want := []string{"bind", "bind-chroot", "bind-devel", "bind-libbind-devel", "bind-libs", "bind-sdb", "bind-utils", "caching-nameserver"}
	if !slices.Equal(pkgs, want) {
		t.Errorf("packages %v, want %v", pkgs, want)
	}
}

func TestArchAndModule(t *testing.T) {
	scope, advs, err := parse(t, "com.oracle.elsa-all.xml.bz2", read(t, "fixtures/com.oracle.elsa-all.xml.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	if scope != "oracle-oval/com.oracle.elsa-all" {
		t.Errorf("scope %q", scope)
	}
	// ELSA-2007-0057 is split into an x86_64 and an i386 block.
	got := rows(advs, "ELSA-2007-0057")
	if len(got) != 16 {
		t.Errorf("%d rows, want 8 packages × 2 arches: %v", len(got), got)
	}
	for _, want := range []row{
		{"oracle:5", "bind", "30:9.3.3-8.el5", "i686,noarch,x86_64", ""},
		{"oracle:5", "bind", "30:9.3.3-8.el5", "i386,i586,i686,noarch", ""},
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %v in %v", want, got)
		}
	}
	// ELSA-2023-12342: aarch64 only, under "Module virt:kvm_utils is enabled".
	if got, want := rows(advs, "ELSA-2023-12342"), []row{{"oracle:8", "hivex", "0:1.3.18-21.module+el8.7.0+21037+8ee66348", "aarch64,noarch", "virt:kvm_utils"}}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestClairFixture(t *testing.T) {
	_, advs, err := parse(t, "fetcher_oracle_test.2.xml", read(t, "fixtures/clair-v2-fetcher_oracle_test.2.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(advs) == 0 {
		t.Fatal("no advisories")
	}
	for _, a := range advs {
		if a.ID != "ELSA-2015-1207" || !strings.HasPrefix(a.Namespace, "oracle:") || a.State != model.StateFixed || a.FixedVersion == "" {
			t.Errorf("%+v", a)
		}
	}
}

// The vunnel and vuln-list-update fixtures were trimmed to their
// definitions; without tests the criteria cannot be resolved.
func TestTrimmedFixturesRejected(t *testing.T) {
	for _, f := range []string{"fixtures/vunnel-mock_per_arch_data.xml", "fixtures/vuln-list-update-all-positive-data.xml.bz2"} {
		_, _, err := parse(t, f, read(t, f))
		if err == nil || !strings.Contains(err.Error(), "missing test") {
			t.Errorf("%s: %v, want a missing-test error", f, err)
		}
	}
}

func TestKspliceSkipped(t *testing.T) {
	doc := read(t, "ELSA-2007-0057.xml")
	doc = bytes.Replace(doc, []byte(">30:9.3.3-8.el5<"), []byte(">30:9.3.3-8.0.1.ksplice1.el5<"), 1)
	_, advs, err := parse(t, "ELSA-2007-0057.xml", doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(advs) != 0 {
		t.Errorf("ksplice fixes emitted: %+v", advs)
	}
}

func TestErrors(t *testing.T) {
	doc := read(t, "ELSA-2007-0057.xml")
	for name, b := range map[string][]byte{
		"truncated":   doc[:len(doc)/2],
		"bad release": bytes.Replace(doc, []byte(`<version operation="pattern match">^5</version>`), []byte(`<version operation="pattern match">5.*</version>`), 1),
		"bad evr":     bytes.Replace(doc, []byte(">30:9.3.3-8.el5<"), []byte(">30:9.3.3<"), 1),
	} {
		if _, _, err := parse(t, "ELSA-2007-0057.xml", b); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "ELSA-2007-0057.xml") {
			t.Errorf("%s: error does not name the document: %v", name, err)
		}
	}
}

func TestSniff(t *testing.T) {
	doc := read(t, "ELSA-2007-0057.xml")
	if !(Feed{}).Sniff("ELSA-2007-0057.xml", doc[:512]) {
		t.Error("ELSA not sniffed")
	}
	if (Feed{}).Sniff("rhel-8.oval.xml", []byte(`<?xml version="1.0"?><oval_definitions><generator><oval:product_name>Red Hat OVAL`)) {
		t.Error("Red Hat OVAL sniffed as Oracle")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(read(f, "ELSA-2007-0057.xml"))
	f.Add(read(f, "fixtures/com.oracle.elsa-all.xml.bz2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, advs, err := parse(t, "com.oracle.elsa-all.xml", b)
		if err != nil {
			return
		}
		for _, a := range advs {
			if a.Package == "" || !strings.HasPrefix(a.Namespace, "oracle:") || a.State != model.StateFixed || a.FixedVersion == "" {
				t.Fatalf("incomplete advisory %+v", a)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	doc := read(b, "fixtures/com.oracle.elsa-all.xml.bz2")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, _, err := parse(b, "com.oracle.elsa-all.xml", doc); err != nil {
			b.Fatal(err)
		}
	}
}
