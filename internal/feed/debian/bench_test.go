package debian

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
)

func discard(model.Advisory) error { return nil }

// BenchmarkOVAL parses each whole release file (decompressed in memory).
func BenchmarkOVAL(b *testing.B) {
	for _, codename := range wholeReleases {
		b.Run(codename, func(b *testing.B) {
			doc := wholeOVAL(b, codename)
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewOVAL().Parse(context.Background(), wholeName(codename), bytes.NewReader(doc), discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTracker parses a synthetic tracker document of ~64 MiB made of
// the real fixture's packages repeated under new names.
func BenchmarkTracker(b *testing.B) {
	fixture := strings.TrimSpace(trackerFixture(b, "vunnel-debian.json"))
	body := fixture[1 : len(fixture)-1]
	var doc bytes.Buffer
	doc.WriteString("{")
	for i := 0; doc.Len() < 64<<20; i++ {
		if i > 0 {
			doc.WriteString(",")
		}
		// Rename the packages so that each copy is a new set of keys.
		doc.WriteString(strings.NewReplacer(`"prototypejs"`, fmt.Sprintf(`"prototypejs%d"`, i), `"txt2man"`, fmt.Sprintf(`"txt2man%d"`, i),
			`"backupninja"`, fmt.Sprintf(`"backupninja%d"`, i), `"chromium"`, fmt.Sprintf(`"chromium%d"`, i),
			`"sope"`, fmt.Sprintf(`"sope%d"`, i), `"chromium-browser"`, fmt.Sprintf(`"chromium-browser%d"`, i)).Replace(body))
	}
	doc.WriteString("}")
	b.SetBytes(int64(doc.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewTracker().Parse(context.Background(), "json", bytes.NewReader(doc.Bytes()), discard); err != nil {
			b.Fatal(err)
		}
	}
}
