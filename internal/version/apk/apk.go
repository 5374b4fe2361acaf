// Package apk compares Alpine (and Wolfi) package versions as apk-tools
// does, under either of its two rule sets.
//
// The grammar is digits{.digits}[letter]{_suffix[digits]}[~hash][-rN].
// Versions compare token by token; suffixes order _alpha < _beta < _pre <
// _rc < (none) < _cvs < _svn < _git < _hg < _p. When one version runs out
// of tokens first, it is older unless the other goes on with a pre-release
// suffix: "1.0" < "1.0-r0", "1.0_rc1" < "1.0" < "1.0_p1".
//
//   - V3, apk-tools 3 (newer Alpine releases, Wolfi): the first number,
//     suffix numbers and revisions compare numerically (wrapping modulo
//     2^64, as apk's uint64 parsing does); a later number with a leading
//     zero on either side compares as a string ("0.049" < "0.05", "8.2.0" <
//     "8.2.001"). The letter is one of a-z; ~hash is lowercase hex compared
//     as a string and sorts after the -rN of the same version without it.
//     `apk version -t` refuses any other syntax, and so does Compare.
//   - V2, apk-tools 2.14 (older Alpine releases): no ~hash; a run of n
//     zeros starting a later number counts as the number 1-n, the digits
//     after it as a further number ("0.049" > "0.05", "1.0" > "1.00"); a
//     number of 18 digits or more makes the rest of the version invalid,
//     so two such versions compare equal from there; suffix names match by
//     prefix; a letter may be followed by digits. apk 2.14 compares any
//     string, so V2.Compare never fails; V2.Valid reports what apk 2.14's
//     own validation accepts.
//
// Which rule set applies is a property of the image's Alpine release.
package apk

import (
	"fmt"
	"strings"
)

// Rules selects an apk-tools generation.
type Rules int

const (
	RulesV3 Rules = iota // apk-tools 3
	RulesV2              // apk-tools 2.14
)

// Comparator orders apk versions under Rules; it is a version.Comparator.
type Comparator struct{ Rules Rules }

var (
	V3 = Comparator{Rules: RulesV3} // apk-tools 3 rules
	V2 = Comparator{Rules: RulesV2} // apk-tools 2.14 rules
)

// Compare orders a and b under apk-tools 3 rules (V3.Compare).
func Compare(a, b string) (int, error) { return V3.Compare(a, b) }

// Valid reports whether apk-tools 3 accepts v (V3.Valid).
func Valid(v string) error { return V3.Valid(v) }

// Valid returns nil when v is a valid version under c's rules.
func (c Comparator) Valid(v string) error {
	ok := false
	if c.Rules == RulesV2 {
		ok = valid2(v)
	} else {
		ok = valid3(v)
	}
	if !ok {
		return fmt.Errorf("invalid apk version %q", v)
	}
	return nil
}

// Compare orders a and b: -1, 0 or +1. Under V3 it fails when either side
// is invalid (as `apk version -t` does); under V2 it never fails.
func (c Comparator) Compare(a, b string) (int, error) {
	if c.Rules == RulesV3 {
		if !valid3(a) {
			return 0, fmt.Errorf("invalid apk version %q", a)
		}
		if !valid3(b) {
			return 0, fmt.Errorf("invalid apk version %q", b)
		}
	}
	return c.CompareAny(a, b), nil
}

// CompareAny orders a and b as libapk's version comparison does, without
// refusing invalid versions: it compares token by token up to the first
// invalid one. Under V2 it is Compare. Under V3 it is what apk-tools 3's
// library answers for data `apk version -t` refuses (its own tests assert
// "1.0" < "1.0bc"); such answers follow no documented rule.
func (c Comparator) CompareAny(a, b string) int {
	if c.Rules == RulesV2 {
		return compare2(a, b, false)
	}
	return compare3(a, b, false)
}

// Match reports whether "a op b" holds for an apk dependency operator op:
// any combination of '<', '>', '=' and '~' (fuzzy: b as a prefix of a,
// "3.6.9" ~ "3.6"), optionally preceded by '!' to negate it. Like libapk it
// does not validate a and b.
func (c Comparator) Match(a, op, b string) (bool, error) {
	neg := strings.HasPrefix(op, "!")
	if neg {
		op = op[1:]
	}
	const less, equal, greater = 1, 2, 4
	mask, fuzzy := 0, false
	for i := 0; i < len(op); i++ {
		switch op[i] {
		case '<':
			mask |= less
		case '>':
			mask |= greater
		case '=':
			mask |= equal
		case '~':
			mask |= equal
			fuzzy = true
		default:
			mask = 0
			i = len(op)
		}
	}
	if mask == 0 {
		return false, fmt.Errorf("bad apk version operator %q", op)
	}
	var r int
	if c.Rules == RulesV2 {
		r = compare2(a, b, fuzzy)
	} else {
		r = compare3(a, b, fuzzy)
	}
	ok := mask&(1<<(r+1)) != 0
	return ok != neg, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' }

func sign64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
