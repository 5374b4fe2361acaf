// Package rpm compares RPM versions exactly as rpm 4.18 does for EVR
// strings [epoch:]version[-release] (rpmverParse and rpmverCmp, the
// comparison `rpm.vercmp` and `rpm.labelCompare` perform).
//
// Splitting: the epoch is the run of ASCII digits at the start when a ':'
// follows it (":1.0" has epoch "0"; "a:1.0" has none, its version is
// "a:1.0"); the release is the text after the last '-' that follows the
// epoch's digit run. Epochs compare as version strings (missing = "0", so
// "01:" = "1:"), then versions, then releases; a missing release sorts
// below any release, even an empty one ("1.0" < "1.0-").
//
// rpmvercmp: the strings are split into maximal runs of ASCII digits and of
// ASCII letters; every other byte (non-ASCII ones too) separates runs, and
// which separator it is does not matter. '~' sorts before anything, even
// the end of the string; '^' sorts after the end but before any further
// run. A digit run beats a letter run; digit runs compare as numbers of any
// length (leading zeros ignored), letter runs byte-wise (case-sensitive);
// when all runs are equal, the string with runs left over is newer.
//
// rpm 4.18 compares any non-empty string, even with an empty version part
// ("5:" has epoch 5 and version "", "-1" has version "" and release "1").
// So Valid refuses only what rpm cannot be handed: the empty string, which
// rpmverParse rejects, and strings holding a NUL byte, which no C string
// (and so no rpm header) can carry.
package rpm

import (
	"errors"
	"fmt"
	"strings"
)

// EVR is a split rpm version.
type EVR struct {
	Epoch      string // "" when absent (compares as "0")
	Version    string
	Release    string
	HasRelease bool // a '-' was present; "1.0-" has an empty release
}

// Parse splits v as rpmverParse does; it fails where rpm would refuse v.
func Parse(v string) (EVR, error) {
	if strings.IndexByte(v, 0) >= 0 {
		return EVR{}, fmt.Errorf("rpm version %q holds a NUL byte", v)
	}
	if v == "" {
		return EVR{}, errors.New("rpm version is empty")
	}
	return split(v), nil
}

// split is rpm's parseEVR.
func split(v string) EVR {
	var e EVR
	i := 0
	for i < len(v) && isDigit(v[i]) {
		i++
	}
	rest := v
	if i < len(v) && v[i] == ':' {
		e.Epoch = v[:i]
		if e.Epoch == "" {
			e.Epoch = "0"
		}
		rest = v[i+1:]
	}
	// rpm searches the release dash from the end of the digit run; digits
	// hold no '-', so this is the last '-' of the string, always inside rest.
	e.Version = rest
	if h := strings.LastIndexByte(rest, '-'); h >= 0 {
		e.Version, e.Release, e.HasRelease = rest[:h], rest[h+1:], true
	}
	return e
}

// Valid returns nil when rpm accepts v (see the package doc).
func Valid(v string) error {
	_, err := Parse(v)
	return err
}

// Compare orders a and b as rpm's rpmverCmp does: -1, 0 or +1.
func Compare(a, b string) (int, error) {
	ea, err := Parse(a)
	if err != nil {
		return 0, err
	}
	eb, err := Parse(b)
	if err != nil {
		return 0, err
	}
	return ea.Compare(eb), nil
}

// Comparator is the rpm version.Comparator.
type Comparator struct{}

// Compare is the package-level Compare.
func (Comparator) Compare(a, b string) (int, error) { return Compare(a, b) }

// Valid is the package-level Valid.
func (Comparator) Valid(v string) error { return Valid(v) }

// Compare orders e against f: epoch, version, then release.
func (e EVR) Compare(f EVR) int {
	ee, fe := e.Epoch, f.Epoch
	if ee == "" {
		ee = "0"
	}
	if fe == "" {
		fe = "0"
	}
	if c := Vercmp(ee, fe); c != 0 {
		return c
	}
	if c := Vercmp(e.Version, f.Version); c != 0 {
		return c
	}
	switch {
	case e.HasRelease && f.HasRelease:
		return Vercmp(e.Release, f.Release)
	case e.HasRelease:
		return 1
	case f.HasRelease:
		return -1
	}
	return 0
}

// String reassembles the EVR.
func (e EVR) String() string {
	s := e.Version
	if e.Epoch != "" {
		s = e.Epoch + ":" + s
	}
	if e.HasRelease {
		s += "-" + e.Release
	}
	return s
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// Vercmp is rpm's rpmvercmp on one version or release string.
func Vercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isDigit(a[i]) && !isAlpha(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isDigit(b[j]) && !isAlpha(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		ca, cb := byteAt(a, i), byteAt(b, j)
		if ca == '~' || cb == '~' {
			if ca != '~' {
				return 1
			}
			if cb != '~' {
				return -1
			}
			i++
			j++
			continue
		}
		if ca == '^' || cb == '^' {
			switch {
			case i == len(a):
				return -1
			case j == len(b):
				return 1
			case ca != '^':
				return 1
			case cb != '^':
				return -1
			}
			i++
			j++
			continue
		}
		if i == len(a) || j == len(b) {
			break
		}
		ei, ej := i, j
		if isDigit(ca) {
			for ei < len(a) && isDigit(a[ei]) {
				ei++
			}
			for ej < len(b) && isDigit(b[ej]) {
				ej++
			}
			if ej == j { // a number beats letters
				return 1
			}
			if c := compareNumbers(a[i:ei], b[j:ej]); c != 0 {
				return c
			}
		} else {
			for ei < len(a) && isAlpha(a[ei]) {
				ei++
			}
			for ej < len(b) && isAlpha(b[ej]) {
				ej++
			}
			if ej == j {
				return -1
			}
			if c := strings.Compare(a[i:ei], b[j:ej]); c != 0 {
				return c
			}
		}
		i, j = ei, ej
	}
	switch {
	case i == len(a) && j == len(b):
		return 0
	case i == len(a):
		return -1
	}
	return 1
}

// compareNumbers orders two runs of ASCII digits by value.
func compareNumbers(a, b string) int {
	for len(a) > 0 && a[0] == '0' {
		a = a[1:]
	}
	for len(b) > 0 && b[0] == '0' {
		b = b[1:]
	}
	if len(a) != len(b) {
		if len(a) > len(b) {
			return 1
		}
		return -1
	}
	return strings.Compare(a, b)
}

func byteAt(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}
