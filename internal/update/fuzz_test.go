package update

import (
	"bytes"
	"context"
	"testing"
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
