package debian

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Bounds on untrusted input.
const (
	maxValueBytes = 1 << 20 // one tracker issue object, or one XML token
	maxNameLen    = 512     // package names, ids, versions, codenames
	maxDepth      = 64      // XML element nesting
	maxItems      = 1 << 22 // definitions, tests, objects, states
)

var errTooLarge = fmt.Errorf("value larger than %d bytes", maxValueBytes)

// budgetReader bounds how far a decoder may read past the point it has
// consumed, so that no single value (a string, an issue object, an XML
// token) can make it buffer more than maxValueBytes.
type budgetReader struct {
	r    io.Reader
	read int64 // bytes handed to the decoder so far
	base int64 // decoder's consumed offset at the last mark
}

// mark starts a new window at the decoder's consumed offset.
func (b *budgetReader) mark(consumed int64) { b.base = consumed }

func (b *budgetReader) Read(p []byte) (int, error) {
	allowed := b.base + maxValueBytes - b.read
	if allowed <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > allowed {
		p = p[:allowed]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

// unexpectedEOF turns a clean io.EOF met inside a document into
// io.ErrUnexpectedEOF: the document ended before it was complete.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkName validates a short identifier (package name, id, version,
// codename): non-empty, bounded, printable and without spaces.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s: empty", what)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s: %d bytes, longer than %d", what, len(s), maxNameLen)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r == unicode.ReplacementChar || !unicode.IsPrint(r) || unicode.IsSpace(r) }); i >= 0 {
		return fmt.Errorf("%s: %q: invalid character at byte %d", what, s, i)
	}
	return nil
}
