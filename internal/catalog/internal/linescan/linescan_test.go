package linescan

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func lines(s *Scanner) []string {
	var out []string
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		name, in         string
		maxLine, maxSize int
		want             []string
		err              string
	}{
		{"crlf and no final newline", "a\r\nb\n\nc", 10, 100, []string{"a", "b", "", "c"}, ""},
		{"line at the limit", "abcd\nxy\n", 4, 100, []string{"abcd", "xy"}, ""},
		{"line over the limit", "ab\nabcde\n", 4, 100, []string{"ab"}, "f: line 2: line longer than 4 bytes"},
		{"line far over the limit", "ab\n" + strings.Repeat("x", 100) + "\n", 4, 1000, []string{"ab"}, "f: line 2: line longer than 4 bytes"},
		{"size at the limit", "ab\ncd\n", 10, 6, []string{"ab", "cd"}, ""},
		{"size over the limit", "ab\ncd\nef\n", 10, 6, []string{"ab", "cd"}, "f: input exceeds the size limit (6 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSize("f", strings.NewReader(tc.in), tc.maxLine, int64(tc.maxSize))
			got := lines(s)
			if !slices.Equal(got, tc.want) {
				t.Errorf("lines %q, want %q", got, tc.want)
			}
			if err := s.Err(); (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Errorf("err %v, want %q", err, tc.err)
			}
		})
	}
}

func TestReadError(t *testing.T) {
	s := New("f", io.MultiReader(strings.NewReader("a\n"), errReader{}))
	if got := lines(s); !slices.Equal(got, []string{"a"}) || s.Err() == nil || !strings.Contains(s.Err().Error(), "f: line 2: boom") {
		t.Errorf("%q %v", got, s.Err())
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestLimitReader(t *testing.T) {
	if b, err := io.ReadAll(LimitReader(strings.NewReader("abc"), 3)); err != nil || string(b) != "abc" {
		t.Errorf("%q %v", b, err)
	}
	if _, err := io.ReadAll(LimitReader(strings.NewReader("abcd"), 3)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err %v", err)
	}
}

func TestClip(t *testing.T) {
	if Clip("short") != "short" || Clip(strings.Repeat("x", 100)) != strings.Repeat("x", 80)+"…" {
		t.Error("Clip")
	}
}
