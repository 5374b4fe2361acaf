// Package testdata finds the shared test data (../shared/testdata beside the
// repository, or $VIGIL_TESTDATA) for tests, and skips a test with a clear
// message where it is absent. Tests reference the data in place; nothing is
// copied into the repository.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared testdata directory, or skips t when it is absent.
func Dir(t testing.TB) string {
	t.Helper()
	dir, ok := find()
	if !ok {
		t.Skipf("shared test data not found: set VIGIL_TESTDATA or place it at ../shared/testdata beside the repository")
	}
	return dir
}

// Path returns the path of elem inside the shared testdata directory,
// skipping t when the directory or that file is absent.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test data %s not found: %v", p, err)
	}
	return p
}

func find() (string, bool) {
	if d := os.Getenv("VIGIL_TESTDATA"); d != "" {
		if isDir(d) {
			return d, true
		}
		return "", false
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	// Walk up to the module root (the folder with go.mod), then look beside it.
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(d), "shared", "testdata")
			return p, isDir(p)
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
