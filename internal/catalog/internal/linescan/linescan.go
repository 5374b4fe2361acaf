// Package linescan reads an untrusted text database line by line with
// bounds: each line may hold at most a line limit and the whole input at
// most a size limit (DefaultMaxLine and DefaultMaxSize unless given).
// Lines are returned without their "\n" or "\r\n" ending. Errors name
// the file and, where one applies, the line. LimitReader bounds any other
// untrusted stream the same way.
package linescan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Default bounds.
const (
	DefaultMaxLine = 1 << 20   // 1 MiB
	DefaultMaxSize = 256 << 20 // 256 MiB
)

// ErrTooLarge reports input beyond the size bound.
var ErrTooLarge = errors.New("input exceeds the size limit")

// Scanner yields the lines of one file.
type Scanner struct {
	path    string
	sc      *bufio.Scanner
	lim     *limitReader
	maxLine int
	line    int
	err     error
}

// New returns a Scanner over r, which is the file path, with the default
// bounds.
func New(path string, r io.Reader) *Scanner {
	return NewSize(path, r, DefaultMaxLine, DefaultMaxSize)
}

// NewSize returns a Scanner with the given bounds.
func NewSize(path string, r io.Reader, maxLine int, maxSize int64) *Scanner {
	lim := LimitReader(r, maxSize).(*limitReader)
	sc := bufio.NewScanner(lim)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+2) // +2: room for "\r\n"
	return &Scanner{path: path, sc: sc, lim: lim, maxLine: maxLine}
}

// Scan advances to the next line, reporting false at the end of input or
// on an error (see Err).
func (s *Scanner) Scan() bool {
	if s.err != nil {
		return false
	}
	if !s.sc.Scan() {
		switch err := s.sc.Err(); {
		case errors.Is(err, bufio.ErrTooLong):
			s.err = s.Errorf(s.line+1, "line longer than %d bytes", s.maxLine)
		case errors.Is(err, ErrTooLarge):
			s.err = fmt.Errorf("%s: %w (%d bytes)", s.path, ErrTooLarge, s.lim.limit())
		case err != nil:
			s.err = fmt.Errorf("%s: line %d: %w", s.path, s.line+1, err)
		}
		return false
	}
	s.line++
	if len(s.sc.Bytes()) > s.maxLine {
		s.err = s.Errorf(s.line, "line longer than %d bytes", s.maxLine)
		return false
	}
	return true
}

// Text is the current line without its line ending; a trailing "\r" (a
// CRLF ending) is removed too.
func (s *Scanner) Text() string { return string(s.Bytes()) }

// Bytes is Text without a copy, valid until the next Scan.
func (s *Scanner) Bytes() []byte {
	b := s.sc.Bytes()
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// Line is the 1-based number of the current line.
func (s *Scanner) Line() int { return s.line }

// Err is the error that stopped Scan, or nil at a clean end of input.
func (s *Scanner) Err() error { return s.err }

// Errorf formats an error about line n of the file; %w wraps as in
// fmt.Errorf.
func (s *Scanner) Errorf(n int, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: "+format, append([]any{s.path, n}, args...)...)
}

// LimitReader passes through at most n bytes of r, then fails with
// ErrTooLarge if more input follows (io.LimitReader would end silently).
func LimitReader(r io.Reader, n int64) io.Reader { return &limitReader{r: r, left: n} }

// limitReader passes through at most left bytes, then fails with
// ErrTooLarge if more input follows.
type limitReader struct {
	r        io.Reader
	left     int64
	consumed int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe one byte: input of exactly the limit is fine.
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	l.consumed += int64(n)
	return n, err
}

func (l *limitReader) limit() int64 { return l.consumed + l.left }

// Clip shortens s to at most 80 bytes for an error message.
func Clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
