package scan

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/image"
	"github.com/vigil-scanner/vigil/internal/testdata"
	"github.com/vigil-scanner/vigil/internal/update"
)

// trackerDoc is a Debian security tracker document in the upstream format,
// with made-up ids for packages the debian12-layers image holds.
const trackerDoc = `{
  "openssl": {
    "CVE-2099-0001": {"description": "fixed after the installed version", "scope": "remote",
      "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.21-1~deb12u1"}, "fixed_version": "3.0.21-1~deb12u1", "urgency": "high"}}},
    "CVE-2099-0002": {"description": "fixed in exactly the installed version",
      "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.20-1~deb12u2"}, "fixed_version": "3.0.20-1~deb12u2", "urgency": "medium"}}}
  },
  "bash": {
    "CVE-2099-0003": {"description": "binNMU: the source version 5.2.15-2 is compared",
      "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "5.2.15-2+deb12u1"}, "fixed_version": "5.2.15-2+deb12u1", "urgency": "low**"}}}
  },
  "glibc": {
    "CVE-2099-0004": {"description": "open, no fix yet",
      "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "2.36-9+deb12u14"}, "urgency": "medium"}}}
  },
  "zlib": {
    "CVE-2099-0005": {"description": "never affected this release",
      "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "1:1.2.13.dfsg-1"}, "fixed_version": "0", "urgency": "not yet assigned"}}}
  },
  "tar": {
    "CVE-2099-0006": {"description": "unimportant",
      "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "1.34+dfsg-1.2+deb12u1"}, "urgency": "unimportant"}}}
  },
  "sqlite3": {
    "CVE-2099-0007": {"description": "end of life",
      "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "3.40.1-2+deb12u2"}, "urgency": "end-of-life"}}}
  },
  "xz-utils": {
    "CVE-2099-0008": {"description": "xz-utils was purged in the top layer; liblzma5 remains",
      "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "5.4.1-1+deb12u1"}, "urgency": "high"}}}
  },
  "perl": {
    "CVE-2099-0009": {"description": "another release only",
      "releases": {"bullseye": {"status": "open", "repositories": {"bullseye": "5.32.1-4+deb11u3"}, "urgency": "high"}}}
  },
  "coreutils": {
    "CVE-2099-0010": {"description": "postponed",
      "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "9.1-1"}, "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "postponed"}}}
  }
}`

// TestTrackerScan scans a shared multi-layer Debian image against a tracker
// document holding each state, and checks the findings exactly.
func TestTrackerScan(t *testing.T) {
	ref := testdata.Path(t, "images", "debian12-layers.docker.tar")
	ctx := context.Background()
	st := debTestStore(t)
	doc := filepath.Join(t.TempDir(), "tracker.json")
	if err := os.WriteFile(doc, []byte(trackerDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := update.ImportFile(ctx, st, "debian", doc, update.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	res, _, err := New(st, nil).Scan(ctx, ref, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const (
		base  = "sha256:d87eda52a8138c5262b9d3a6307c991762adcc9ca83efacfdc461d09487b3f17"
		added = "sha256:e7584159a92178c318734f8aea28fd29f59c0d97d4ba6747de0414987d84712a"
	)
	want := []string{
		"bash 5.2.15-2+b13 CVE-2099-0003 fixed 5.2.15-2+deb12u1 Low " + base,
		"coreutils 9.1-1 CVE-2099-0010 fix-deferred  Low " + base,
		"libc-bin 2.36-9+deb12u14 CVE-2099-0004 unfixed  Medium " + base,
		"libc6 2.36-9+deb12u14 CVE-2099-0004 unfixed  Medium " + base,
		"liblzma5 5.4.1-1+deb12u1 CVE-2099-0008 unfixed  High " + base,
		"libsqlite3-0 3.40.1-2+deb12u2 CVE-2099-0007 end-of-life  Unknown " + added,
		"libssl3 3.0.20-1~deb12u2 CVE-2099-0001 fixed 3.0.21-1~deb12u1 High " + added,
		"openssl 3.0.20-1~deb12u2 CVE-2099-0001 fixed 3.0.21-1~deb12u1 High " + added,
		"tar 1.34+dfsg-1.2+deb12u1 CVE-2099-0006 unimportant  Negligible " + base,
	}
	var got []string
	for _, v := range res.Vulnerabilities {
		got = append(got, strings.Join([]string{v.Package, v.InstalledVersion, v.ID, v.State, v.FixedVersion, v.Severity, v.Layer}, " "))
		if v.Namespace != "debian:12" || v.DataSource != "debian-tracker" || v.Link != "https://security-tracker.debian.org/tracker/"+v.ID {
			t.Errorf("%s %s: namespace %q, source %q, link %q", v.Package, v.ID, v.Namespace, v.DataSource, v.Link)
		}
	}
	diffSets(t, "finding", want, got)
	if res.Summary["High"] != 3 || res.Summary["Medium"] != 2 || res.Summary["Low"] != 2 || res.Summary["Negligible"] != 1 || res.Summary["Unknown"] != 1 {
		t.Errorf("summary %v", res.Summary)
	}
	res.Filter("High", false)
	if len(res.Vulnerabilities) != 3 {
		t.Errorf("severity filter High kept %d findings, want 3", len(res.Vulnerabilities))
	}
	res.Filter("", true)
	for _, v := range res.Vulnerabilities {
		if v.State != "fixed" {
			t.Errorf("ignore-unfixed kept %s %s (%s)", v.Package, v.ID, v.State)
		}
	}
}

// TestCorruptImportKeepsData imports a good tracker document, then corrupt
// and truncated ones: each fails with a message naming what was wrong, and
// the first data still answers scans.
func TestCorruptImportKeepsData(t *testing.T) {
	ref := testdata.Path(t, "images", "debian12-layers.docker.tar")
	ctx := context.Background()
	st := debTestStore(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := update.ImportFile(ctx, st, "debian", write("good.json", trackerDoc), update.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	s := New(st, nil)
	before, _, err := s.Scan(ctx, ref, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"truncated.json": trackerDoc[:len(trackerDoc)/2],
		"garbage.json":   "{\"openssl\": {\"CVE-1\": [1, 2",
		"badstate.json":  `{"openssl": {"CVE-2099-1": {"releases": {"bookworm": {"status": "maybe", "urgency": "low"}}}}}`,
		"binary.json":    "\x00\x01\x02 not a feed",
		"empty.json":     "",
	}
	for name, body := range bad {
		_, err := update.ImportFile(ctx, st, "debian", write(name, body), update.DefaultOptions())
		if err == nil {
			t.Errorf("%s: import succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	after, _, err := s.Scan(ctx, ref, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Vulnerabilities) != len(before.Vulnerabilities) || len(before.Vulnerabilities) == 0 {
		t.Fatalf("findings changed after failed imports: %d before, %d after", len(before.Vulnerabilities), len(after.Vulnerabilities))
	}
	for i := range before.Vulnerabilities {
		if !reflect.DeepEqual(before.Vulnerabilities[i], after.Vulnerabilities[i]) {
			t.Errorf("finding %d changed: %+v → %+v", i, before.Vulnerabilities[i], after.Vulnerabilities[i])
		}
	}
}
