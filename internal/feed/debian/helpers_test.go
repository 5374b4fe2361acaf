package debian

import (
	"compress/bzip2"
	"compress/gzip"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/feed"
	"github.com/vigil-scanner/vigil/internal/model"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// openShared opens a shared test file, decompressing .bz2 and .gz.
func openShared(t testing.TB, elem ...string) io.Reader {
	t.Helper()
	f, err := os.Open(testdata.Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	switch name := elem[len(elem)-1]; {
	case strings.HasSuffix(name, ".bz2"):
		return bzip2.NewReader(f)
	case strings.HasSuffix(name, ".gz"):
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	return f
}

// readShared returns a shared test file's bytes, decompressed.
func readShared(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := io.ReadAll(openShared(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readSharedHead returns the first 2 KiB of readShared.
func readSharedHead(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := io.ReadAll(io.LimitReader(openShared(t, elem...), 2048))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseAll runs f.Parse and collects the advisories.
func parseAll(f feed.Feed, name, doc string) ([]model.Advisory, string, error) {
	var out []model.Advisory
	scope, err := f.Parse(context.Background(), name, strings.NewReader(doc), func(a model.Advisory) error {
		out = append(out, a)
		return nil
	})
	return out, scope, err
}

var states = []string{
	model.StateFixed, model.StateUnfixed, model.StateNotAffected, model.StateWontFix,
	model.StateDeferred, model.StateUnimportant, model.StateEndOfLife,
}

// wellFormed reports what is wrong with an emitted advisory, or "".
func wellFormed(a model.Advisory, source string) string {
	switch {
	case a.Source != source:
		return "source " + a.Source
	case a.ID == "" || a.Package == "":
		return "empty id or package"
	case !strings.HasPrefix(a.Namespace, "debian:"):
		return "namespace " + a.Namespace
	case !a.SourcePackage || a.VersionFormat != model.KindDpkg:
		return "not a dpkg source package advisory"
	case !slices.Contains(states, a.State):
		return "state " + a.State
	case (a.State == model.StateFixed) != (a.FixedVersion != ""):
		return "fixed version " + a.FixedVersion + " with state " + a.State
	case !slices.Contains(model.Severities, a.Severity):
		return "severity " + a.Severity
	case a.Link != trackerLink+a.ID:
		return "link " + a.Link
	}
	return ""
}

// truncations checks that every strict prefix of doc (less trailing
// whitespace) fails to parse.
func truncations(t *testing.T, f feed.Feed, name, doc string) {
	t.Helper()
	doc = strings.TrimRight(doc, " \t\r\n")
	for n := 0; n < len(doc); n++ {
		if advs, _, err := parseAll(f, name, doc[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed without error into %d advisories", n, len(doc), len(advs))
		}
	}
}

func TestNamespace(t *testing.T) {
	for codename, want := range map[string]string{
		"buster": "debian:10", "bullseye": "debian:11", "bookworm": "debian:12",
		"trixie": "debian:13", "forky": "debian:14", "sid": "debian:unstable",
		"wheezy": "debian:7", "Jessie": "debian:8", "squeeze": "debian:6", "woody": "debian:3.0",
	} {
		if got, ok := Namespace(codename); !ok || got != want {
			t.Errorf("Namespace(%q) = %q, %v; want %q", codename, got, ok, want)
		}
	}
	for _, c := range []string{"", "experimental", "jammy", "bookworm-security"} {
		if got, ok := Namespace(c); ok {
			t.Errorf("Namespace(%q) = %q, want unknown", c, got)
		}
	}
}

// TestNamespaceDistroInfo checks the table against distro-info-data.
func TestNamespaceDistroInfo(t *testing.T) {
	csv := string(readShared(t, "osrelease", "distro-info-data", "debian.csv"))
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(csv), "\n")[1:] {
		f := strings.Split(line, ",")
		version, series := f[0], f[2]
		if series == "experimental" {
			continue
		}
		want := "debian:" + version
		switch {
		case version == "":
			want = "debian:unstable"
		case strings.HasSuffix(version, ".0") && version >= "4":
			want = "debian:" + strings.TrimSuffix(version, ".0")
		}
		if got, ok := Namespace(series); !ok || got != want {
			t.Errorf("Namespace(%q) = %q, %v; want %q", series, got, ok, want)
		}
		n++
	}
	if n != len(releases) {
		t.Errorf("distro-info lists %d releases, the table %d", n, len(releases))
	}
}
