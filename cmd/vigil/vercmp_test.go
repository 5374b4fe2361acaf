package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/testdata"
)

// vercmpFiles maps each pair file of shared/testdata/versions to the
// vercmp format whose tool labelled it.
var vercmpFiles = map[string]string{
	"apk.tsv":                   "apk",  // apk-tools 3.0.6
	"apk-invalid.tsv":           "apk",  // apk-tools 3.0.6 refusals
	"apk-upstream.tsv":          "apk",  // apk-tools' own test data (master)
	"apk-v2.tsv":                "apk2", // apk-tools 2.14.10
	"dpkg.tsv":                  "dpkg",
	"dpkg-lenient.tsv":          "dpkg",
	"dpkg-invalid.tsv":          "dpkg",
	"dpkg-upstream.tsv":         "dpkg",
	"rpm.tsv":                   "rpm",
	"rpm-upstream.tsv":          "rpm",
	"rpm-upstream-oddities.tsv": "rpm",
}

// apkLibraryOnly are the versions apk-tools 3's library compares in its
// own test data although `apk version -t`, which vercmp answers like,
// refuses them (versions/README.md, "Surprises" 6).
var apkLibraryOnly = map[string]bool{"23_foo": true, "1.0bc": true}

// vercmpPair is one labelled pair of a vector file.
type vercmpPair struct {
	a, op, b string
	line     int
}

// dataLines returns the tab-separated fields of each data line of a vector
// file (neither empty nor a comment), by line number.
func dataLines(t *testing.T, path string) (lines [][]string, numbers []int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, strings.Split(line, "\t"))
		numbers = append(numbers, n)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatalf("%s: no data lines", path)
	}
	return lines, numbers
}

func readPairs(t *testing.T, path string) []vercmpPair {
	t.Helper()
	lines, numbers := dataLines(t, path)
	pairs := make([]vercmpPair, len(lines))
	for i, fields := range lines {
		if len(fields) < 3 {
			t.Fatalf("%s:%d: want a<TAB>op<TAB>b", path, numbers[i])
		}
		pairs[i] = vercmpPair{a: fields[0], op: fields[1], b: fields[2], line: numbers[i]}
	}
	return pairs
}

// vigil runs the command line in-process with stdin; it returns stdout.
func vigil(stdin string, args ...string) (string, error) {
	cmd := newRoot()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// agrees reports whether vigil's answer matches a label; "!=" (upstream
// asserts only inequality) accepts either order.
func agrees(label, got string) bool {
	if label == "!=" {
		return got == "<" || got == ">"
	}
	return label == got
}

// TestVercmpVectors feeds every pair file through `vigil vercmp FORMAT -`
// and requires the answer of the ecosystem's own tool on every line; a
// sample of each file also goes through `vigil vercmp FORMAT A B`, where a
// refused pair must be an error.
func TestVercmpVectors(t *testing.T) {
	for file, format := range vercmpFiles {
		t.Run(file, func(t *testing.T) {
			pairs := readPairs(t, testdata.Path(t, "versions", file))
			var in strings.Builder
			for i := range pairs {
				p := &pairs[i]
				if strings.ContainsAny(p.a+p.b, "\t\n") {
					t.Fatalf("%s:%d: a version holds a tab or newline", file, p.line)
				}
				if file == "apk-upstream.tsv" && (apkLibraryOnly[p.a] || apkLibraryOnly[p.b]) {
					p.op = "!"
				}
				fmt.Fprintf(&in, "%s\t%s\n", p.a, p.b)
			}
			out, err := vigil(in.String(), "vercmp", format, "-")
			if err != nil {
				t.Fatalf("vigil vercmp %s -: %v", format, err)
			}
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(got) != len(pairs) {
				t.Fatalf("%d answers for %d pairs", len(got), len(pairs))
			}
			bad := 0
			for i, p := range pairs {
				if !agrees(p.op, got[i]) {
					if bad++; bad <= 10 {
						t.Errorf("%s:%d: %q %s %q: got %s", file, p.line, p.a, p.op, p.b, got[i])
					}
				}
			}
			t.Logf("%s (%s): %d/%d agree", file, format, len(pairs)-bad, len(pairs))
			if bad > 0 {
				t.Errorf("%d of %d pairs disagree", bad, len(pairs))
			}

			for i := 0; i < len(pairs); i += 37 {
				p := pairs[i]
				out, err := vigil("", "vercmp", format, p.a, p.b)
				switch {
				case p.op == "!" && err == nil:
					t.Errorf("vigil vercmp %s %q %q: %q, want an error", format, p.a, p.b, out)
				case p.op != "!" && (err != nil || !agrees(p.op, strings.TrimSpace(out))):
					t.Errorf("vigil vercmp %s %q %q: %q, %v; want %s", format, p.a, p.b, out, err, p.op)
				}
			}
		})
	}
}

// TestVercmpDpkgParse checks dpkg's own validity cases through `vigil
// vercmp dpkg V V`: valid and warned-about versions compare equal to
// themselves, refused ones are an error. Versions that Dpkg::Version only
// calls "invalid" (upstream does not say whether dpkg warns or refuses) are
// left out.
func TestVercmpDpkgParse(t *testing.T) {
	path := testdata.Path(t, "versions", "dpkg-upstream-parse.tsv")
	lines, numbers := dataLines(t, path)
	checked := 0
	for i, fields := range lines {
		n := numbers[i]
		if len(fields) != 6 {
			t.Fatalf("%s:%d: want 6 fields", path, n)
		}
		v, err := strconv.Unquote(`"` + strings.ReplaceAll(fields[0], `"`, `\"`) + `"`)
		if err != nil {
			t.Fatalf("%s:%d: version %q: %v", path, n, fields[0], err)
		}
		expect := fields[1]
		if expect == "invalid" {
			continue
		}
		out, err := vigil("", "vercmp", "dpkg", v, v)
		switch expect {
		case "valid", "warn":
			if err != nil || out != "=\n" {
				t.Errorf("%s:%d: %q (%s): %q, %v; want =", path, n, v, expect, out, err)
			}
		case "error":
			if err == nil {
				t.Errorf("%s:%d: %q: %q, want an error", path, n, v, out)
			}
		default:
			t.Fatalf("%s:%d: unknown expectation %q", path, n, expect)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no cases checked")
	}
}

// TestVercmpStdinErrors checks that a stdin line without a tab is an error
// naming the line.
func TestVercmpStdinErrors(t *testing.T) {
	if _, err := vigil("1.0\t2.0\n1.0 2.0\n", "vercmp", "dpkg", "-"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("line without a tab: %v, want an error naming line 2", err)
	}
}
