package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigil-scanner/vigil/internal/demo"
	"github.com/vigil-scanner/vigil/internal/report"
)

// run runs the vigil command line in-process.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRoot()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestUpdateThenScan serves the demo tracker document from a loopback
// server, updates from it, then scans the demo image in both formats.
func TestUpdateThenScan(t *testing.T) {
	dir := t.TempDir()
	files, err := demo.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		http.ServeFile(w, r, files.Feed)
	}))
	defer srv.Close()
	db := filepath.Join(dir, "v.db")

	out, err := run(t, "--db", db, "db", "update", "--source", "debian-tracker", "--url", "debian-tracker="+srv.URL+"/tracker/data/json")
	if err != nil || !strings.Contains(out, "updated debian-tracker: 4 advisories") || hits.Load() != 1 {
		t.Fatalf("db update: %v\n%s (hits %d)", err, out, hits.Load())
	}
	out, err = run(t, "--db", db, "db", "status")
	if err != nil || !strings.Contains(out, "debian-tracker") || !strings.Contains(out, srv.URL) {
		t.Fatalf("db status: %v\n%s", err, out)
	}

	out, err = run(t, "--db", db, "scan", files.Image)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CVE-2023-4911", "CVE-2023-5363", "CVE-2005-2541", "Total: 5 (Critical: 0, High: 2, Medium: 2, Low: 0, Negligible: 1, Unknown: 0)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CVE-2024-3094") {
		t.Errorf("a not-affected statement was reported:\n%s", out)
	}

	out, err = run(t, "--db", db, "scan", "--format", "json", "--severity", "medium", files.Image)
	if err != nil {
		t.Fatal(err)
	}
	var s report.Scan
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if s.Schema != report.Schema || len(s.Packages) != 8 || len(s.Vulnerabilities) != 4 || s.Distribution.Namespace != "debian:12" {
		t.Errorf("json report: schema %q, %d packages, %d findings, %+v", s.Schema, len(s.Packages), len(s.Vulnerabilities), s.Distribution)
	}

	// --exit-code applies only when findings remain after filtering.
	_, err = run(t, "--db", db, "scan", "--exit-code", "3", "--severity", "critical", files.Image)
	if err != nil {
		t.Errorf("no critical findings, want success, got %v", err)
	}
	_, err = run(t, "--db", db, "scan", "--exit-code", "3", files.Image)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Errorf("findings with --exit-code 3: got %v", err)
	}
}

func TestBadInput(t *testing.T) {
	db := filepath.Join(t.TempDir(), "v.db")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"scan", filepath.Join(t.TempDir(), "missing.tar")}, "missing.tar"},
		{[]string{"scan", "--format", "xml", "x"}, "--format"},
		{[]string{"scan", "--severity", "huge", "x"}, "--severity"},
		{[]string{"db", "import", "debian", filepath.Join(t.TempDir(), "nope.json")}, "nope.json"},
		{[]string{"db", "update", "--url", "no-equals-sign"}, "--url"},
		{[]string{"vercmp", "dpkg", "1.0", "a:b"}, "a:b"},
		{[]string{"vercmp", "cobol", "1", "2"}, "cobol"},
	}
	for _, c := range cases {
		_, err := run(t, append([]string{"--db", db}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("vigil %s: error %v, want one naming %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func TestDemo(t *testing.T) {
	out, err := run(t, "demo", "--dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Total: 5 ") {
		t.Errorf("demo output:\n%s", out)
	}
}
