package dpkg

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/version/versiontest"
)

var files = []string{"dpkg.tsv", "dpkg-lenient.tsv", "dpkg-invalid.tsv", "dpkg-upstream.tsv"}

func TestVectors(t *testing.T) {
	versiontest.GradeFiles(t, Comparator{}, files...)
}

// TestLenientWarns checks that every lenient pair has a side dpkg warns
// about, and that no side of dpkg.tsv draws a warning.
func TestLenientWarns(t *testing.T) {
	for _, p := range versiontest.Pairs(t, "dpkg-lenient.tsv") {
		var w *SyntaxError
		ea, eb := Lint(p.A), Lint(p.B)
		if !(errors.As(ea, &w) && w.Warning) && !(errors.As(eb, &w) && w.Warning) {
			t.Errorf("line %d: neither %q (%v) nor %q (%v) draws a warning", p.Line, p.A, ea, p.B, eb)
		}
	}
	for _, p := range versiontest.Pairs(t, "dpkg.tsv") {
		for _, v := range []string{p.A, p.B} {
			if err := Lint(v); err != nil {
				t.Errorf("line %d: %v", p.Line, err)
			}
		}
	}
}

func TestParseVectors(t *testing.T) {
	counts := versiontest.Tally{}
	versiontest.Lines(t, "dpkg-upstream-parse.tsv", func(n int, line string) {
		if strings.HasPrefix(line, "#") || line == "" {
			return
		}
		col := strings.Split(line, "\t")
		if len(col) != 6 {
			t.Fatalf("line %d: %d columns", n, len(col))
		}
		v, err := strconv.Unquote(`"` + strings.ReplaceAll(col[0], `"`, `\"`) + `"`)
		if err != nil {
			t.Fatalf("line %d: unescape %q: %v", n, col[0], err)
		}
		expect := col[1]
		parsed, perr := Parse(v)
		lint := Lint(v)
		var se *SyntaxError
		warned := errors.As(lint, &se) && se.Warning
		var ok bool
		switch expect {
		case "valid":
			ok = perr == nil && lint == nil
			if ok && col[2] != "" {
				ok = strconv.Itoa(parsed.Epoch) == col[2] && parsed.Upstream == col[3] && parsed.Revision == col[4]
			}
		case "error":
			ok = perr != nil
		case "warn":
			ok = perr == nil && warned
		case "invalid": // Dpkg::Version is_valid false: dpkg errors or warns
			ok = lint != nil
		default:
			t.Fatalf("line %d: unknown expectation %q", n, expect)
		}
		counts.Add(expect, ok)
		if !ok {
			t.Errorf("line %d: %q: want %s, got %+v, Parse error %v, Lint %v", n, v, expect, parsed, perr, lint)
		}
	})
	counts.Log(t, "dpkg-upstream-parse.tsv")
}

func TestParseSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
	}{
		{"1.0", Version{0, "1.0", ""}},
		{"2:1.0-1-2", Version{2, "1.0-1", "2"}},
		{"+1:1.0.0-5", Version{1, "1.0.0", "5"}},
		{"-0:99", Version{0, "99", ""}},
		{"1:2:3", Version{1, "2:3", ""}},
		{" 1.0 ", Version{0, "1.0", ""}},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "1.0-", ":1", "a:1", "-1:1", "2147483648:1", "1:", "1 0", "-1", "0:-1", "1:-"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if _, err := Parse("2147483647:1"); err != nil {
		t.Errorf("INT_MAX epoch refused: %v", err)
	}
}

func TestString(t *testing.T) {
	for _, s := range []string{"1.0", "1:1.0-1", "1.0-1.0-1"} {
		v, err := Parse(s)
		if err != nil || v.String() != s {
			t.Errorf("Parse(%q).String() = %q, %v", s, v.String(), err)
		}
	}
}

func TestTotalOrder(t *testing.T) {
	c := Comparator{}
	versiontest.TotalOrder(t, c, versiontest.Valid(c, versiontest.Pairs(t, files...)), 200000)
}

func FuzzCompare(f *testing.F) {
	versiontest.Fuzz(f, Comparator{}, true, func(t *testing.T, a, _ string) {
		if v, err := Parse(a); err == nil {
			// Reassembling a parsed version must give an equal version.
			if r, err := Compare(a, v.String()); err != nil || r != 0 {
				t.Fatalf("%q vs its canonical form %q: %d, %v", a, v.String(), r, err)
			}
		}
	}, files...)
}

func BenchmarkCompare(b *testing.B) {
	versiontest.Benchmark(b, Comparator{}, "dpkg.tsv")
}
