package config

import (
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// namesProblem matches an error that says where the problem is: a YAML
// line, a configuration key, or the size limit.
var namesProblem = regexp.MustCompile(`yaml: |line \d+|\b(database|api|updater|notifier|auth|worker)\.|paginationkey|larger than \d+ bytes`)

// FuzzParse: any document either parses to a configuration that passes
// Validate, whose keys decode and whose database source converts to a
// URL or fails with an error, or fails with an error that says where;
// nothing panics.
func FuzzParse(f *testing.F) {
	key := base64.URLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	for _, doc := range []string{
		"", "clair:", "---\n---\n",
		strings.Replace(clairV2, "%s", key, 1), // the layout of docs/config.md's example
		"database: {type: sqlite, source: /var/lib/vigil/vigil.db}\napi: {addr: \":6060\", healthaddr: \":6061\", timeout: 60, indexconcurrency: 2, allowlocalpaths: true}\nauth: {psk: {key: c2VjcmV0LXNlY3JldC1zZWNyZXQ=, iss: [quay, clairctl]}}\n",
		"updater:\n  interval: 30m\n  enabledupdaters: [debian, rhel]\n  endpoints:\n    alpine-secdb: http://127.0.0.1/v3.20/main.json\n  urls:\n    debian-tracker: [http://127.0.0.1/tracker.json]\n",
		"database: {type: postgres, source: \"host='a b' port=5433 user=u\\\\ x password=''\"}\n",
		"database: {cachesize: 1}\napi: {servername: x}\nworker: {namespace_detectors: [os-release]}\n",
		"api: {prot: 1}", "api: {timeout: soon}", "api: {timeout: 0s}", "api: {port: 70000}",
		"database: {type: mysql}", "database: {paginationkey: abc}", "api: {addr: x}",
		"api: {healthaddr: '127.0.0.1:6060'}", "api: {cafile: ca.pem}",
		"notifier: {http: {endpoint: ftp://x/}}", "auth: {psk: {key: c2hvcnQ=}}",
		"database: {type: pgsql}", "[1, 2]", "database: {type: pgsql, source: 'a b'}",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(doc)
		if err != nil {
			if !namesProblem.MatchString(err.Error()) {
				t.Fatalf("%q: error %q says not where the problem is", doc, err)
			}
			return
		}
		if len(doc) > MaxSize {
			t.Fatalf("%d bytes accepted, over MaxSize", len(doc))
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%q parsed to a configuration Validate refuses: %v", doc, err)
		}
		for _, w := range c.Warnings {
			if w == "" {
				t.Fatalf("%q: an empty warning", doc)
			}
		}
		if _, err := c.PSKKey(); err != nil {
			t.Fatalf("%q: auth.psk.key passed Validate, yet: %v", doc, err)
		}
		if _, err := c.PaginationKey(); err != nil {
			t.Fatalf("%q: paginationkey passed Validate, yet: %v", doc, err)
		}
		dsn, err := c.DSN()
		if err == nil && strings.HasPrefix(dsn, "postgres") {
			if u, err := url.Parse(dsn); err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
				t.Fatalf("%q: DSN %q is not a postgres URL: %v", doc, dsn, err)
			}
		}
	})
}

// TestSizeBound: a document over MaxSize is refused, from a file or
// not; one of MaxSize bytes is read.
func TestSizeBound(t *testing.T) {
	doc := "api: {timeout: 60}\n" + strings.Repeat("# padding\n", MaxSize/10)
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Fatalf("%d-byte file: %v, want the size limit", len(doc), err)
	}
	if _, err := Parse([]byte(doc[:MaxSize])); err != nil {
		t.Fatalf("%d bytes refused: %v", MaxSize, err)
	}
}

// TestEmptySectionAndSocketHost: FuzzParse's first findings. An empty
// "clair:" section is the defaults (it failed with "EOF"), and a libpq
// Unix socket directory becomes URL parameters (it became an unparsable
// URL host).
func TestEmptySectionAndSocketHost(t *testing.T) {
	for _, doc := range []string{"clair:", "---\n---\n"} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%q: %v", doc, err)
		}
	}
	c, err := Parse([]byte(`database: {type: pgsql, source: "host=/var/run/postgresql port=5433 user=clair dbname=clair"}`))
	if err != nil {
		t.Fatal(err)
	}
	if dsn, err := c.DSN(); err != nil || dsn != "postgres://clair@/clair?host=%2Fvar%2Frun%2Fpostgresql&port=5433" {
		t.Fatalf("DSN = %q, %v", dsn, err)
	}
}
