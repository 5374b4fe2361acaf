package rpm

import (
	"testing"

	"github.com/vigil-scanner/vigil/internal/version/versiontest"
)

var files = []string{"rpm.tsv", "rpm-upstream.tsv", "rpm-upstream-oddities.tsv"}

func TestVectors(t *testing.T) {
	versiontest.GradeFiles(t, Comparator{}, files...)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want EVR
	}{
		{"1.0", EVR{Version: "1.0"}},
		{"1.0-1", EVR{Version: "1.0", Release: "1", HasRelease: true}},
		{"1.0-", EVR{Version: "1.0", HasRelease: true}},
		{"2:1.0-1.el8", EVR{Epoch: "2", Version: "1.0", Release: "1.el8", HasRelease: true}},
		{":1.0", EVR{Epoch: "0", Version: "1.0"}},
		{"a:1.0", EVR{Version: "a:1.0"}},
		{"1:2:3-4-5", EVR{Epoch: "1", Version: "2:3-4", Release: "5", HasRelease: true}},
		{"01:1", EVR{Epoch: "01", Version: "1"}},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in && tc.in != ":1.0" {
			t.Errorf("Parse(%q).String() = %q", tc.in, got.String())
		}
	}
	for _, ok := range []string{"5:", "-1", ":", "1:-2"} {
		if err := Valid(ok); err != nil {
			t.Errorf("Valid(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1.0\x00"} {
		if err := Valid(bad); err == nil {
			t.Errorf("Valid(%q) = nil", bad)
		}
	}
}

func TestVercmp(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0^git1", -1},
		{"1.0^git1", "1.0.1", -1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1_0", 0},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1},
		{"0001", "1", 0},
		{"a", "1", -1},
		{"B", "a", -1},
	} {
		if got := Vercmp(tc.a, tc.b); got != tc.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Vercmp(tc.b, tc.a); got != -tc.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestTotalOrder(t *testing.T) {
	c := Comparator{}
	versiontest.TotalOrder(t, c, versiontest.Valid(c, versiontest.Pairs(t, files...)), 200000)
}

func FuzzCompare(f *testing.F) {
	versiontest.Fuzz(f, Comparator{}, true, func(t *testing.T, a, _ string) {
		if e, err := Parse(a); err == nil {
			if r, err := Compare(a, e.String()); err != nil || r != 0 {
				t.Fatalf("%q vs its reassembly %q: %d, %v", a, e.String(), r, err)
			}
		}
	}, files...)
}

func BenchmarkCompare(b *testing.B) {
	versiontest.Benchmark(b, Comparator{}, "rpm.tsv")
}
