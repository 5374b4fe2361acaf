package redhat

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
)

func TestVEXCurl(t *testing.T) {
	scope, advs := collect(t, CSAF{}, "cve-2023-38545.json", open(t, "vulndata", "redhat-vex", "cve-2023-38545.json"))
	if scope != "redhat-vex/CVE-2023-38545" {
		t.Errorf("scope %q", scope)
	}
	// Fixed in 9.0 EUS (-14), 9.2 (-23) and 9.3 (-26) streams: the newest is kept.
	c := one(t, advs, "CVE-2023-38545", "rhel:9", "libcurl")
	if c.State != model.StateFixed || c.FixedVersion != "0:7.76.1-26.el9_3.2" || !slices.Equal(c.Aliases, []string{"RHSA-2023:6745"}) ||
		!slices.Equal(c.Arch, []string{"aarch64", "i686", "ppc64le", "s390x", "x86_64"}) || c.Severity != model.SeverityHigh ||
		c.UpstreamSeverity != "Important" || c.Link != "https://access.redhat.com/errata/RHSA-2023:6745" || c.Module != "" {
		t.Errorf("libcurl: %+v", c)
	}
	if n := one(t, advs, "CVE-2023-38545", "rhel:8", "libcurl-minimal"); n.State != model.StateNotAffected || n.FixedVersion != "" {
		t.Errorf("rhel:8 libcurl-minimal: %+v", n)
	}
	for _, a := range advs {
		if strings.HasPrefix(a.Package, "jbcs-") || strings.HasPrefix(a.Package, "puppet") || strings.HasSuffix(a.Package, ".src") {
			t.Errorf("non-RHEL or source product emitted: %+v", a)
		}
	}
}

func TestVEXOutOfSupport(t *testing.T) {
	_, advs := collect(t, CSAF{}, "cve-2023-6212.json", open(t, "vulndata", "redhat-vex", "cve-2023-6212.json"))
	if a := one(t, advs, "CVE-2023-6212", "rhel:6", "firefox"); a.State != model.StateEndOfLife || !a.SourcePackage {
		t.Errorf("rhel:6 firefox (source rpm; no_fix_planned, Out of support scope): %+v", a)
	}
	if a := one(t, advs, "CVE-2023-6212", "rhel:8", "thunderbird"); a.FixedVersion != "0:115.5.0-1.el8_9" || a.Aliases[0] != "RHSA-2023:7500" {
		t.Errorf("rhel:8 thunderbird: %+v", a)
	}
}

func TestCSAFAdvisoryModule(t *testing.T) {
	scope, advs := collect(t, CSAF{}, "rhsa-2023_3821.json", open(t, "vulndata", "redhat-csaf", "rhsa-2023_3821.json"))
	if scope != "redhat-csaf/RHSA-2023:3821" {
		t.Errorf("scope %q", scope)
	}
	a := one(t, advs, "RHSA-2023:3821", "rhel:8", "ruby")
	if a.Module != "ruby:2.7" || a.FixedVersion != "0:2.7.8-139.module+el8.8.0+18745+f1bef313" ||
		!slices.Equal(a.Aliases, []string{"CVE-2021-33621", "CVE-2023-28755", "CVE-2023-28756"}) || a.Severity != model.SeverityMedium {
		t.Errorf("ruby: %+v", a)
	}
	if a := one(t, advs, "RHSA-2023:3821", "rhel:8", "ruby-doc"); !slices.Equal(a.Arch, []string{"noarch"}) {
		t.Errorf("ruby-doc: %+v", a)
	}
}

func TestVEXDeleted(t *testing.T) {
	scope, advs := collect(t, CSAF{}, "delete_CVE-2023-0030.json", open(t, "vulndata", "redhat-vex", "delete_CVE-2023-0030.json"))
	if scope != "redhat-vex/CVE-2023-0030" || len(advs) != 0 {
		t.Errorf("scope %q, %d advisories", scope, len(advs))
	}
}

func TestCSAFErrors(t *testing.T) {
	doc := open(t, "vulndata", "redhat-vex", "cve-2024-24786-simple.json")
	for name, b := range map[string][]byte{
		"truncated": doc[:len(doc)/2],
		"trailing":  append(slices.Clone(doc), []byte(`{}`)...),
		"no id":     bytes.Replace(doc, []byte(`"id": "CVE-2024-24786"`), []byte(`"id": ""`), 1),
		"not json":  []byte("<xml/>"),
	} {
		_, err := CSAF{}.Parse(context.Background(), "cve-2024-24786.json", bytes.NewReader(b), func(model.Advisory) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "cve-2024-24786.json") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseCSAF(f *testing.F) {
	f.Add(open(f, "vulndata", "redhat-vex", "cve-2024-24786-simple.json"))
	f.Add(open(f, "vulndata", "redhat-vex", "cve-2024-24786-illegal-module.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = CSAF{}.Parse(context.Background(), "x.json", bytes.NewReader(b), func(a model.Advisory) error {
			if a.Package == "" || !strings.HasPrefix(a.Namespace, "rhel:") || (a.State == model.StateFixed) != (a.FixedVersion != "") {
				t.Fatalf("bad advisory %+v", a)
			}
			return nil
		})
	})
}

func BenchmarkParseVEX(b *testing.B) {
	doc := open(b, "vulndata", "redhat-vex", "cve-2023-38545.json")
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := (CSAF{}).Parse(context.Background(), "cve-2023-38545.json", bytes.NewReader(doc), func(model.Advisory) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
