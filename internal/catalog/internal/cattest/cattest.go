// Package cattest holds test helpers shared by the cataloger tests.
package cattest

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
)

// Expect checks a Parse result: with wantErr set, an error that starts
// with "path: " and contains wantErr; otherwise no error and packages that
// row formats to want, in order.
func Expect(t testing.TB, pkgs []model.Package, err error, path string, row func(model.Package) string, want []string, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.HasPrefix(err.Error(), path+": ") {
			t.Fatalf("err = %v, want one starting %q and containing %q", err, path+": ", wantErr)
		}
		if pkgs != nil {
			t.Errorf("packages returned with an error: %v", pkgs)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, row(p))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// Parser is the Parse half of catalog.Cataloger (cattest cannot import
// catalog, which imports the catalogers).
type Parser interface {
	Parse(path string, r io.Reader) ([]model.Package, error)
}

// ParseFile parses the file at file as the database at dbPath.
func ParseFile(t testing.TB, p Parser, dbPath, file string) ([]model.Package, error) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return p.Parse(dbPath, f)
}
