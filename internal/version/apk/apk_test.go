package apk

import (
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/version/versiontest"
)

var (
	files3 = []string{"apk.tsv", "apk-invalid.tsv", "apk-upstream.tsv"}
	files2 = []string{"apk-v2.tsv"}
)

// upstreamInvalid are the apk-upstream.tsv lines whose versions apk-tools 3
// refuses although its library test data compares them (README quirk 6).
var upstreamInvalid = map[string]bool{"23_foo": true, "1.0bc": true}

func TestVectorsV3(t *testing.T) {
	versiontest.GradeFiles(t, V3, "apk.tsv", "apk-invalid.tsv")
	t.Run("apk-upstream.tsv", func(t *testing.T) {
		var valid []versiontest.Pair
		for _, p := range versiontest.Pairs(t, "apk-upstream.tsv") {
			if !upstreamInvalid[p.A] && !upstreamInvalid[p.B] {
				valid = append(valid, p)
				continue
			}
			if _, err := V3.Compare(p.A, p.B); err == nil {
				t.Errorf("line %d: %q vs %q compared, apk 3 refuses it", p.Line, p.A, p.B)
			}
			if got := answer(V3.CompareAny(p.A, p.B)); got != p.Op {
				t.Errorf("line %d: CompareAny(%q, %q) = %s, want %s", p.Line, p.A, p.B, got, p.Op)
			}
		}
		versiontest.Grade(t, "apk-upstream.tsv (valid pairs)", V3, valid)
	})
}

func TestVectorsV2(t *testing.T) {
	versiontest.GradeFiles(t, V2, files2...)
}

// TestUpstreamV2 checks apk-upstream.tsv under apk 2.14 rules: it must
// disagree exactly on the 5 lines the README lists (apk-tools 3 test data
// only) and agree elsewhere.
func TestUpstreamV2(t *testing.T) {
	differ := map[string]bool{"8.2.0 8.2.001": true, "8.2.0015 8.2.002": true,
		"1.0~1234 1.0~2345": true, "1.0~1234-r1 1.0~2345-r0": true, "1.0~1234-r1 1.0~1234-r0": true}
	n := 0
	for _, p := range versiontest.Pairs(t, "apk-upstream.tsv") {
		got := versiontest.Answer(V2, p.A, p.B)
		if (got == p.Op) == differ[p.A+" "+p.B] {
			t.Errorf("line %d: %q %s %q: apk 2.14 rules say %s", p.Line, p.A, p.Op, p.B, got)
		}
		n++
	}
	t.Logf("apk-upstream.tsv under V2: %d lines, %d documented differences", n, len(differ))
}

// TestUpstreamData runs apk-tools' own version.data (unchanged) the way its
// test harness does: "v" must be valid, "!v" invalid, "a op b" must hold
// ("a !op b" must not).
func TestUpstreamData(t *testing.T) {
	counts := versiontest.Tally{}
	versiontest.Lines(t, "apk-upstream.data", func(n int, line string) {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			return
		}
		var kind string
		var ok bool
		if f := strings.Fields(line); len(f) == 3 {
			kind = "compare " + strings.TrimPrefix(f[1], "!")
			var err error
			if ok, err = V3.Match(f[0], f[1], f[2]); err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
		} else {
			v, invert := strings.CutPrefix(line, "!")
			kind = "valid"
			if invert {
				kind = "invalid"
			}
			ok = (V3.Valid(v) == nil) != invert
		}
		counts.Add(kind, ok)
		if !ok {
			t.Errorf("line %d: %q fails", n, line)
		}
	})
	counts.Log(t, "apk-upstream.data")
}

func TestMatchV2(t *testing.T) {
	for _, tc := range []struct {
		a, op, b string
		want     bool
	}{
		{"3.6.9", "~", "3.6", true},
		{"3.7", "~", "3.6", false},
		{"3.5", "<", "3.6", true},
		{"3.6", "!=", "3.6", false},
		{"3.6", ">=", "3.6", true},
	} {
		got, err := V2.Match(tc.a, tc.op, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("V2.Match(%q %s %q) = %v, %v", tc.a, tc.op, tc.b, got, err)
		}
	}
	if _, err := V3.Match("1", "<x", "2"); err == nil {
		t.Error("bad operator accepted")
	}
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		c    Comparator
		a, b string
		want int
	}{
		{V3, "0.049-r10", "0.05-r0", -1},
		{V2, "0.049-r10", "0.05-r0", 1},
		{V3, "1.0", "1.0-r0", -1},
		{V2, "1.0", "1.0-r0", -1},
		{V3, "6.0_pre1", "6.0", -1},
		{V2, "6.0_pre1", "6.0", -1},
		{V3, "6.0_p1", "6.0", 1},
		{V3, "1.0~abc", "1.0", 1}, // a hash is a token, the end is not
		{V3, "1.0~abc", "1.0-r0", 1},
		{V2, "1.1.0-r1-r0", "1.1.0-r1", 1},
	} {
		got, err := tc.c.Compare(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("%v.Compare(%q, %q) = %d, %v; want %d", tc.c, tc.a, tc.b, got, err, tc.want)
		}
	}
	if _, err := V3.Compare("1.1.0-r1-r0", "1.1.0-r1"); err == nil {
		t.Error("V3 compared 1.1.0-r1-r0")
	}
	if Valid("1.0~abc-r1") != nil || V2.Valid("1.0~abc-r1") == nil {
		t.Error("~hash must be valid for apk 3 only")
	}
}

func answer(r int) string { return [...]string{"<", "=", ">"}[r+1] }

func TestTotalOrder(t *testing.T) {
	versiontest.TotalOrder(t, V3, versiontest.Valid(V3, versiontest.Pairs(t, files3...)), 200000)
	versiontest.TotalOrder(t, V2, versiontest.Valid(V2, versiontest.Pairs(t, files2...)), 200000)
}

func FuzzCompare(f *testing.F) {
	versiontest.Fuzz(f, V3, true, func(t *testing.T, a, b string) {
		// apk 2.14 compares anything, and must stay antisymmetric doing so;
		// so must apk 3's library comparison of what its CLI refuses.
		versiontest.Antisymmetric(t, V2, false, a, b)
		if V3.CompareAny(a, b) != -V3.CompareAny(b, a) {
			t.Fatalf("V3.CompareAny(%q, %q) not antisymmetric", a, b)
		}
	}, append(files3, files2...)...)
}

func BenchmarkCompare(b *testing.B) {
	b.Run("V3", func(b *testing.B) { versiontest.Benchmark(b, V3, "apk.tsv") })
	b.Run("V2", func(b *testing.B) { versiontest.Benchmark(b, V2, "apk-v2.tsv") })
}
