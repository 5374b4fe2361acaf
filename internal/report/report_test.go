package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/model"
)

func sample() *Scan {
	ir := &index.Report{
		Image:        "img.tar",
		Layers:       []index.LayerInfo{{DiffID: "sha256:aaaaaaaaaaaaaaaa"}, {DiffID: "sha256:bbbbbbbbbbbbbbbb"}},
		Distribution: &model.Distribution{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Namespace: "debian:12"},
		Packages: []model.Package{
			{Kind: "dpkg", Name: "libc6", Version: "2.36-9", Layer: "sha256:aaaaaaaaaaaaaaaa"},
			{Kind: "dpkg", Name: "tar", Version: "1.34", Layer: "sha256:bbbbbbbbbbbbbbbb"},
		},
	}
	findings := []model.Finding{
		{Package: ir.Packages[0], Advisory: model.Advisory{ID: "CVE-1", State: model.StateFixed, FixedVersion: "2.36-9+deb12u3", Severity: model.SeverityHigh, Source: "debian-tracker", Namespace: "debian:12"}},
		{Package: ir.Packages[1], Advisory: model.Advisory{ID: "CVE-2", State: model.StateUnimportant, Severity: model.SeverityNegligible, Source: "debian-tracker", Namespace: "debian:12"}},
	}
	return New(ir, findings, []string{"layer 2: something odd"})
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, sample()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"img.tar (Debian GNU/Linux 12 (bookworm) [debian:12]): 2 packages, 2 layers",
		"libc6    2.36-9     2.36-9+deb12u3  CVE-1          High        1 aaaaaaaaaaaa",
		"(unimportant)",
		"2 bbbbbbbbbbbb",
		"Total: 2 (Critical: 0, High: 1, Medium: 0, Low: 0, Negligible: 1, Unknown: 0)",
		"  - layer 2: something odd",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestJSONAndFilter(t *testing.T) {
	s := sample()
	s.Filter(model.SeverityLow, false)
	if len(s.Vulnerabilities) != 1 || s.Summary[model.SeverityNegligible] != 0 || s.Summary[model.SeverityHigh] != 1 {
		t.Fatalf("filter: %+v %v", s.Vulnerabilities, s.Summary)
	}
	var b bytes.Buffer
	if err := JSON(&b, s); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back["schema"] != Schema || len(back["packages"].([]any)) != 2 || len(back["vulnerabilities"].([]any)) != 1 {
		t.Errorf("json: %s", b.String())
	}
	v := back["vulnerabilities"].([]any)[0].(map[string]any)
	if v["id"] != "CVE-1" || v["fixed_version"] != "2.36-9+deb12u3" || v["layer"] != "sha256:aaaaaaaaaaaaaaaa" || v["data_source"] != "debian-tracker" {
		t.Errorf("vulnerability %v", v)
	}
	s.Filter("", true)
	if len(s.Vulnerabilities) != 1 {
		t.Errorf("ignore-unfixed dropped a fixed finding")
	}
}
