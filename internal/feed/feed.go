// Package feed defines how an upstream vulnerability source plugs into
// vigil: a Feed names its upstream documents and parses one document,
// streaming, into advisories (model.Advisory). Each document covers a scope
// (e.g. "debian-oval/bookworm"); importing it replaces everything stored
// under that scope, atomically. The subpackages hold one upstream each and
// state its rules in their package comment.
package feed

import (
	"context"
	"io"

	"github.com/vigil-scanner/vigil/internal/model"
)

// Feed is one upstream source of advisories.
type Feed interface {
	// Name is the source's name, e.g. "debian-tracker", "alpine-secdb".
	Name() string
	// URLs are the upstream documents `vigil db update` fetches by default.
	URLs() []string
	// Sniff reports whether Parse reads the document with this file name (or
	// URL) whose first bytes, already decompressed, are head.
	Sniff(name string, head []byte) bool
	// Parse reads one decompressed document as a stream and calls emit for
	// each advisory. It returns the scope the document covers; a malformed
	// document returns an error naming what was wrong and where.
	Parse(ctx context.Context, name string, r io.Reader, emit func(model.Advisory) error) (scope string, err error)
}
