package update

import (
	"bytes"
	"context"
	"encoding/csv"
	"path"
	"strings"
	"testing"
	"time"
)

// FuzzImport feeds arbitrary bytes, plain or looking compressed, through
// format sniffing, decompression, the chosen feed's parser and a real
// store: whatever the input, Import returns an error or a named scope whose
// count the store agrees with.
func FuzzImport(f *testing.F) {
	doc := secdb("v3.17", "main", 3)
	for _, kind := range []string{"plain", "gzip", "zstd"} {
		f.Add(compressWith(f, doc, kind))
	}
	f.Add([]byte(`<?xml version="1.0"?><oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5"></oval_definitions>`))
	f.Add([]byte(`{"document":{"category":"csaf_vex"}}`))
	f.Add([]byte(`{"openssl":{"CVE-2024-0001":{"releases":{"bookworm":{"status":"resolved","fixed_version":"1.0"}}}}}`))
	f.Add([]byte("BZh9"))
	st := openStore(f)
	opt := DefaultOptions()
	opt.MaxDocumentSize = 1 << 20
	opt.MaxShrink = 0
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Import(context.Background(), st, "", "fuzz", bytes.NewReader(data), opt)
		if err != nil {
			return
		}
		if sc.Scope == "" || sc.Source == "" {
			t.Errorf("imported without a scope or source: %+v", sc)
		}
		for _, s := range scopes(t, st) {
			if s.Scope == sc.Scope && s.Advisories != sc.Advisories {
				t.Errorf("store has %d advisories for %s, Import said %d", s.Advisories, s.Scope, sc.Advisories)
			}
		}
	})
}

// FuzzParseLog: whatever a change log holds, parseLog returns an error or
// entries with clean relative paths that stay below the base (a name such
// as "..0" is fine), which read back the same once written out again.
func FuzzParseLog(f *testing.F) {
	f.Add([]byte("\"2023/cve-2023-6240.json\",\"2024-08-04T10:17:22+00:00\"\n\"2021/cve-2021-47343.json\",\"2024-07-29T18:39:58+00:00\""))
	f.Add([]byte("\"../etc/passwd\",\"2024-08-04T10:17:22+00:00\"\n"))
	f.Add([]byte("a,b,c\n"))
	f.Add([]byte("\"x.json\",\"2024-13-01T00:00:00Z\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		log, err := parseLog(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		for _, e := range log {
			if e.Path == "" || path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == ".." || strings.HasPrefix(e.Path, "../") {
				t.Fatalf("path %q accepted", e.Path)
			}
			w.Write([]string{e.Path, e.At.Format(time.RFC3339Nano)})
		}
		w.Flush()
		again, err := parseLog(&b)
		if err != nil || len(again) != len(log) {
			t.Fatalf("written out again: %v, %d of %d entries", err, len(again), len(log))
		}
		for i := range log {
			if again[i].Path != log[i].Path || !again[i].At.Equal(log[i].At) {
				t.Fatalf("entry %d: %+v read back as %+v", i, log[i], again[i])
			}
		}
	})
}

// FuzzParseSHA256File: a .sha256 file gives an error or 64 lowercase hex
// digits.
func FuzzParseSHA256File(f *testing.F) {
	f.Add([]byte("3b1e6f4ad3e3c2a6b8e2c1a6d2b0c9a8f7e6d5c4b3a29180706f5e4d3c2b1a09  csaf_vex_2024-08-04.tar.zst\n"), "csaf_vex_2024-08-04.tar.zst")
	f.Add([]byte("3B1E6F4AD3E3C2A6B8E2C1A6D2B0C9A8F7E6D5C4B3A29180706F5E4D3C2B1A09"), "cve-2023-6212.json")
	f.Add([]byte("3b1e6f4ad3e3c2a6b8e2c1a6d2b0c9a8f7e6d5c4b3a29180706f5e4d3c2b1a09 *other.json"), "cve-2023-6212.json")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		sum, err := parseSHA256File(data, name)
		if err == nil && !hexSHA256.MatchString(sum) {
			t.Fatalf("sha256 %q accepted", sum)
		}
	})
}
