package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestZeroConfig(t *testing.T) {
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Addr != "127.0.0.1:6060" || c.API.HealthAddr != "127.0.0.1:6061" || c.API.Timeout != 900*time.Second {
		t.Fatalf("defaults = %+v", c.API)
	}
	if dsn, err := c.DSN(); err != nil || dsn != "" {
		t.Fatalf("DSN = %q, %v; want the default database", dsn, err)
	}
}

// clairV2 is Clair v2.1.8's config.example.yaml layout.
const clairV2 = `
clair:
  database:
    type: pgsql
    options:
      source: host=db.example port=5433 user=clair password='p w\'d' sslmode=disable dbname=clair
      cachesize: 16384
      paginationkey: %s
  api:
    port: 7060
    healthport: 7061
    timeout: 300s
  updater:
    interval: 2h
  notifier:
    attempts: 3
    renotifyinterval: 1h
    http:
      endpoint: https://hooks.example/clair
`

func TestClairV2Layout(t *testing.T) {
	key := base64.URLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	c, err := Parse([]byte(strings.Replace(clairV2, "%s", key, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Addr != "127.0.0.1:7060" || c.API.HealthAddr != "127.0.0.1:7061" || c.API.Timeout != 300*time.Second {
		t.Errorf("api = %+v", c.API)
	}
	if c.Updater.Interval != 2*time.Hour || c.Notifier.Attempts != 3 || c.Notifier.RenotifyInterval != time.Hour || c.Notifier.HTTP.Endpoint != "https://hooks.example/clair" {
		t.Errorf("updater/notifier = %+v %+v", c.Updater, c.Notifier)
	}
	if c.Database.CacheSize != 16384 || len(c.Warnings) != 1 {
		t.Errorf("cachesize %d, warnings %q", c.Database.CacheSize, c.Warnings)
	}
	k, err := c.PaginationKey()
	if err != nil || string(k) != strings.Repeat("k", 32) {
		t.Errorf("pagination key = %q, %v", k, err)
	}
	dsn, err := c.DSN()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"postgres://clair:p%20w%27d@db.example:5433/clair?", "sslmode=disable"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN %q lacks %q", dsn, want)
		}
	}
}

func TestV3LayoutAndVigilKeys(t *testing.T) {
	c, err := Parse([]byte(`
database: {type: sqlite, source: /var/lib/vigil/vigil.db}
api: {addr: ":6060", healthaddr: ":6061", timeout: 60, indexconcurrency: 2, allowlocalpaths: true}
auth: {psk: {key: c2VjcmV0LXNlY3JldC1zZWNyZXQ=, iss: [quay, clairctl]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Addr != ":6060" || c.API.Timeout != time.Minute || c.API.IndexConcurrency != 2 || !c.API.AllowLocalPaths {
		t.Errorf("api = %+v", c.API)
	}
	if k, err := c.PSKKey(); err != nil || string(k) != "secret-secret-secret" || len(c.Auth.PSK.Issuers) != 2 {
		t.Errorf("psk = %q %v %v", k, err, c.Auth.PSK.Issuers)
	}
	if dsn, _ := c.DSN(); dsn != "/var/lib/vigil/vigil.db" {
		t.Errorf("DSN = %q", dsn)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	for doc, want := range map[string]string{
		"api: {prot: 1}":                         "prot",
		"api: {timeout: soon}":                   "not a duration",
		"api: {timeout: 0s}":                     "api.timeout",
		"api: {port: 70000}":                     "api.port",
		"database: {type: mysql}":                "database.type",
		"database: {paginationkey: abc}":         "paginationkey",
		"api: {addr: x}":                         "api.addr",
		"api: {healthaddr: '127.0.0.1:6060'}":    "own listener",
		"api: {cafile: ca.pem}":                  "api.cafile",
		"notifier: {http: {endpoint: ftp://x/}}": "notifier.http.endpoint",
		"auth: {psk: {key: c2hvcnQ=}}":           "auth.psk.key",
		"database: {type: pgsql}":                "",
		"[1, 2]":                                 "cannot unmarshal",
		"database: {type: pgsql, source: 'a b'}": "",
	} {
		c, err := Parse([]byte(doc))
		if want == "" {
			if err == nil {
				_, err = c.DSN()
			}
			if err == nil {
				t.Errorf("%s: accepted", doc)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", doc, err, want)
		}
	}
}

func TestUpdaterSourcesAndURLs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	doc := "updater:\n  interval: 30m\n  enabledupdaters: [debian, rhel]\n  endpoints:\n    alpine-secdb: http://127.0.0.1/v3.20/main.json\n  urls:\n    debian-tracker: [http://127.0.0.1/tracker.json]\n"
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Updater.Interval != 30*time.Minute || strings.Join(c.Updater.Sources, ",") != "debian,redhat" ||
		c.Updater.URLs["alpine-secdb"][0] != "http://127.0.0.1/v3.20/main.json" || c.Updater.URLs["debian-tracker"][0] != "http://127.0.0.1/tracker.json" {
		t.Errorf("updater %+v", c.Updater)
	}
}
