// Package versiontest runs version comparators against the shared vector
// files (testdata/versions, see its README): it reads the pair files,
// grades a comparator per file, category and expected operator, checks the
// total-order properties, and seeds fuzz targets. It is for tests only.
package versiontest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/testdata"
)

// Comparator is version.Comparator, restated: package version imports the
// comparators whose tests import this package.
type Comparator interface {
	Compare(a, b string) (int, error)
	Valid(v string) error
}

// Pair is one data line of a pair file: A Op B.
type Pair struct {
	A, Op, B string
	Category string // from the last "# category:" line, "" before any
	Origin   string // 4th column of the upstream files
	Line     int
}

// Pairs reads the named pair files of versions/, skipping t when one is
// absent.
func Pairs(t testing.TB, names ...string) []Pair {
	t.Helper()
	var out []Pair
	for _, name := range names {
		out = append(out, pairs(t, name)...)
	}
	return out
}

func pairs(t testing.TB, name string) []Pair {
	t.Helper()
	var out []Pair
	cat := ""
	Lines(t, name, func(n int, line string) {
		if c, ok := strings.CutPrefix(line, "# category:"); ok {
			cat = strings.TrimSpace(c)
			return
		}
		if line == "" || line[0] == '#' {
			return
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			t.Fatalf("%s:%d: want a<TAB>op<TAB>b, got %q", name, n, line)
		}
		p := Pair{A: f[0], Op: f[1], B: f[2], Category: cat, Line: n}
		if len(f) > 3 {
			p.Origin = f[3]
		}
		out = append(out, p)
	})
	if len(out) == 0 {
		t.Fatalf("%s: no pairs", name)
	}
	return out
}

// Lines calls fn with each line of versions/<name> and its number, skipping
// t when the file is absent.
func Lines(t testing.TB, name string, fn func(n int, line string)) {
	t.Helper()
	f, err := os.Open(testdata.Path(t, "versions", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		fn(n, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// Tally counts passed and total checks per kind.
type Tally map[string]*[2]int

// Add counts one check of kind.
func (c Tally) Add(kind string, ok bool) {
	if c[kind] == nil {
		c[kind] = new([2]int)
	}
	c[kind][1]++
	if ok {
		c[kind][0]++
	}
}

// Log logs the counts, kinds sorted, prefixed by name.
func (c Tally) Log(t testing.TB, name string) {
	t.Helper()
	kinds := make([]string, 0, len(c))
	for k := range c {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Logf("%s %-12s %5d/%-5d %6.2f%%", name, k, c[k][0], c[k][1], 100*float64(c[k][0])/float64(c[k][1]))
	}
}

// Answer is what a comparator says about a pair: "<", "=", ">" or "!"
// (refused).
func Answer(c Comparator, a, b string) string {
	r, err := c.Compare(a, b)
	if err != nil {
		return "!"
	}
	switch r {
	case -1:
		return "<"
	case 0:
		return "="
	case 1:
		return ">"
	}
	return fmt.Sprintf("bad result %d", r)
}

// Agrees reports whether got satisfies the expected op (with "!=" meaning
// any ordered answer other than "=").
func Agrees(op, got string) bool {
	if op == "!=" {
		return got == "<" || got == ">"
	}
	return op == got
}

// GradeFiles grades c on each named file in a subtest of its own.
func GradeFiles(t *testing.T, c Comparator, names ...string) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) { Grade(t, name, c, Pairs(t, name)) })
	}
}

// Grade compares every pair with c, logs the agreement per category and per
// expected op, and fails t on any disagreement, printing the first ones.
func Grade(t *testing.T, name string, c Comparator, pairs []Pair) {
	t.Helper()
	byCat, byOp := Tally{}, Tally{}
	var bad []string
	for _, p := range pairs {
		got := Answer(c, p.A, p.B)
		ok := Agrees(p.Op, got)
		cat := p.Category
		if cat == "" {
			cat = "(none)"
		}
		byCat.Add(cat, ok)
		byOp.Add(p.Op, ok)
		if !ok {
			bad = append(bad, fmt.Sprintf("line %d: %q %s %q, got %s", p.Line, p.A, p.Op, p.B, got))
		}
	}
	byCat.Log(t, name+" category")
	byOp.Log(t, name+" op")
	t.Logf("%s: %d/%d agree (%.2f%%)", name, len(pairs)-len(bad), len(pairs), 100*float64(len(pairs)-len(bad))/float64(len(pairs)))
	if len(bad) > 0 {
		t.Errorf("%s: %d disagreements; first ones:\n  %s", name, len(bad), strings.Join(bad[:min(len(bad), 10)], "\n  "))
	}
}

// Valid returns the distinct versions of pairs that c accepts.
func Valid(c Comparator, pairs []Pair) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pairs {
		for _, v := range []string{p.A, p.B} {
			if !seen[v] && c.Valid(v) == nil {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// TotalOrder checks on valid versions that c is reflexive, antisymmetric
// and transitive (on random triples), and that Valid agrees with Compare.
func TotalOrder(t *testing.T, c Comparator, versions []string, triples int) {
	t.Helper()
	if len(versions) < 3 {
		t.Fatalf("only %d versions", len(versions))
	}
	cmp := func(a, b string) int {
		r, err := c.Compare(a, b)
		if err != nil {
			t.Fatalf("Compare(%q, %q): %v although both are valid", a, b, err)
		}
		return r
	}
	for _, v := range versions {
		if r := cmp(v, v); r != 0 {
			t.Fatalf("Compare(%q, itself) = %d", v, r)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return versions[rng.IntN(len(versions))] }
	for range triples {
		a, b, x := pick(), pick(), pick()
		ab, ba := cmp(a, b), cmp(b, a)
		if ab != -ba {
			t.Fatalf("not antisymmetric: %q vs %q = %d, reverse %d", a, b, ab, ba)
		}
		bx, ax := cmp(b, x), cmp(a, x)
		if ab <= 0 && bx <= 0 && ax > 0 || ab >= 0 && bx >= 0 && ax < 0 {
			t.Fatalf("not transitive: %q %d %q, %q %d %q, but %q %d %q", a, ab, b, b, bx, x, a, ax, x)
		}
	}
	// Sorting must be consistent too: a sorted slice is pairwise ordered.
	s := append([]string(nil), versions...)
	sort.SliceStable(s, func(i, j int) bool { return cmp(s[i], s[j]) < 0 })
	for i := 1; i < len(s); i++ {
		if cmp(s[i-1], s[i]) > 0 {
			t.Fatalf("sort not consistent at %q, %q", s[i-1], s[i])
		}
	}
}

// Fuzz seeds f with every pair of the named files and fuzzes c: each input
// goes through Antisymmetric, then through check when it is not nil.
func Fuzz(f *testing.F, c Comparator, strict bool, check func(t *testing.T, a, b string), names ...string) {
	f.Helper()
	for _, p := range Pairs(f, names...) {
		f.Add(p.A, p.B)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		Antisymmetric(t, c, strict, a, b)
		if check != nil {
			check(t, a, b)
		}
	})
}

// Antisymmetric is the body of the FuzzCompare targets: it checks that c
// neither panics nor disagrees with itself when the sides are swapped, that
// it refuses only pairs with an invalid side (all of them when strict), and
// that a version equals itself.
func Antisymmetric(t *testing.T, c Comparator, strict bool, a, b string) {
	ab, errA := c.Compare(a, b)
	ba, errB := c.Compare(b, a)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%q vs %q: error %v, reversed %v", a, b, errA, errB)
	}
	bothValid := c.Valid(a) == nil && c.Valid(b) == nil
	if errA != nil {
		if bothValid {
			t.Fatalf("%q vs %q refused (%v) although both are valid", a, b, errA)
		}
		return
	}
	if strict && !bothValid {
		t.Fatalf("%q vs %q compared although a side is invalid", a, b)
	}
	if ab < -1 || ab > 1 || ab != -ba {
		t.Fatalf("%q vs %q = %d, reversed %d", a, b, ab, ba)
	}
	if r, err := c.Compare(a, a); err != nil || r != 0 {
		t.Fatalf("%q vs itself = %d, %v", a, r, err)
	}
}

// Benchmark times c.Compare over all pairs of the named files.
func Benchmark(b *testing.B, c Comparator, names ...string) {
	pairs := Pairs(b, names...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p := &pairs[i%len(pairs)]
		_, _ = c.Compare(p.A, p.B)
	}
}
