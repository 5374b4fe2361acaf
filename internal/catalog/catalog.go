// Package catalog defines how a package lister plugs into the indexer: a
// Cataloger names the files it reads (path.Match patterns relative to the
// image root) and turns one such file into packages. The subpackages hold
// one package database format each.
package catalog

import (
	"io"

	"github.com/vigil-scanner/vigil/internal/model"
)

// Cataloger lists the packages recorded in one kind of package database.
type Cataloger interface {
	// Kind is the model.Kind* of the packages it lists.
	Kind() string
	// Patterns are path.Match patterns of the files it reads, relative to
	// the image root, slash-separated, without a leading "/" or "./".
	Patterns() []string
	// Parse reads one file whose path matched Patterns, as a stream, and
	// returns the installed packages it records (DBPath set to path). A
	// malformed file gives an error naming the path and the place.
	Parse(path string, r io.Reader) ([]model.Package, error)
}
