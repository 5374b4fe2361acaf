// Package feed defines how an upstream vulnerability source plugs into
// vigil: a Feed names its upstream documents and parses one document,
// streaming, into advisories (model.Advisory). Each document covers a scope
// (e.g. "debian-oval/bookworm"); importing it replaces everything stored
// under that scope, atomically. The subpackages hold one upstream each and
// state its rules in their package comment.
//
// Two optional interfaces tell internal/update more about an upstream:
//   - DocumentSet: the feed's URL is the base of a set of documents (one
//     scope each) published as an archive of them all plus change logs,
//     rather than one document;
//   - Checksummed: the upstream publishes a manifest of its documents'
//     sha256 and sizes, and a document that disagrees is refused.
package feed

import (
	"context"
	"io"
	"time"

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

// DocumentSet is implemented by a feed whose upstream, at some URLs, is a
// set of documents (each its own scope) rather than one document.
type DocumentSet interface {
	Feed
	// Set returns the layout of the set based at url, or false when url
	// names one document.
	Set(url string) (Set, bool)
}

// Set is the layout of a document set, Red Hat's CSAF one: under Base,
//   - Latest names a file whose one line is the name (relative to Base,
//     without a slash) of the latest archive of every document, a tar,
//     compressed or not, whose members are the documents by path;
//   - Changes and Deletions are CSV files of "path","time" lines (RFC 3339
//     times), newest first: documents changed, and documents withdrawn;
//   - every file F (the archive, each document) has its sha256 in F.sha256,
//     as "<hex>  <name>" or "<hex>".
type Set struct {
	Base               string // URL of the set, ending in "/"
	Latest             string // e.g. "archive_latest.txt"
	Changes, Deletions string // e.g. "changes.csv", "deletions.csv"
	// Marker is the scope, holding no advisories, that records how far the
	// change logs have been applied.
	Marker string
	// Lag is how far back, before the newest change already applied, the
	// change logs are read again, for entries listed late.
	Lag time.Duration
	// Scope returns the scope the document at path (relative to Base, as
	// in the archive and the change logs) imports into, or "" when path is
	// not a document of the set.
	Scope func(path string) string
}

// Checksum is the sha256 (lowercase hex) and size in bytes of a document
// as published.
type Checksum struct {
	SHA256 string
	Size   int64
}

// Checksummed is implemented by a feed whose upstream publishes the
// checksums of its documents in a manifest.
type Checksummed interface {
	Feed
	// Manifest returns the URL of the manifest that lists the document at
	// url, or false when url is under no such manifest.
	Manifest(url string) (string, bool)
	// ChecksumOf reads the manifest at manifestURL and returns the
	// checksum it gives the document at url; an error when the manifest is
	// malformed or lists no such document.
	ChecksumOf(manifest io.Reader, manifestURL, url string) (Checksum, error)
}
