package version_test

import (
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/version"
	"github.com/vigil-scanner/vigil/internal/version/versiontest"
)

// TestLookup grades every registered format on its vector files, so that a
// wrong mapping fails.
func TestLookup(t *testing.T) {
	for format, files := range map[string][]string{
		model.KindDpkg:     {"dpkg.tsv", "dpkg-lenient.tsv", "dpkg-invalid.tsv"},
		model.KindRPM:      {"rpm.tsv"},
		model.KindAPK:      {"apk.tsv", "apk-invalid.tsv"},
		version.FormatAPK2: {"apk-v2.tsv"},
	} {
		t.Run(format, func(t *testing.T) {
			c, ok := version.Lookup(format)
			if !ok {
				t.Fatalf("Lookup(%q) found nothing", format)
			}
			versiontest.GradeFiles(t, c, files...)
		})
	}
	if _, ok := version.Lookup("pypi"); ok {
		t.Error("Lookup(pypi) found a comparator")
	}
}
