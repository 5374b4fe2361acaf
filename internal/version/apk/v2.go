package apk

import "strings"

// apk-tools 2.14 token kinds, in grammar order.
const (
	uInvalid = iota - 1
	uDigitOrZero
	uDigit
	uLetter
	uSuffix
	uSuffixNo
	uRevisionNo
	uEnd
)

var (
	preSuffixes  = [...]string{"alpha", "beta", "pre", "rc"}
	postSuffixes = [...]string{"cvs", "svn", "git", "hg", "p"}
)

// token2 walks a version under apk-tools 2.14 rules: kind is the kind of
// the token at the start of s.
type token2 struct {
	s    string
	kind int
}

// get reads the token of the current kind and returns its value, then
// moves to the next token. A number of 18 digits or more is invalid.
func (t *token2) get() int64 {
	if t.s == "" {
		t.kind = uEnd
		return 0
	}
	var v int64
	i, nt := 0, uInvalid
	switch t.kind {
	case uDigitOrZero, uDigit, uSuffixNo, uRevisionNo:
		if t.kind == uDigitOrZero && t.s[0] == '0' {
			// A run of n zeros before more digits counts as 1-n (and
			// stays in s to be read as a number next).
			for i+1 < len(t.s) && t.s[i+1] == '0' {
				i++
			}
			nt, v = uDigit, -int64(i)
			break
		}
		for i < len(t.s) && isDigit(t.s[i]) {
			v = v*10 + int64(t.s[i]-'0')
			i++
		}
		if i >= 18 {
			t.kind = uInvalid
			return -1
		}
	case uLetter:
		v, i = int64(t.s[0]), 1
	case uSuffix:
		var ok bool
		if v, i, ok = suffix2(t.s); !ok {
			t.kind = uInvalid
			return -1
		}
	default:
		t.kind = uInvalid
		return -1
	}
	t.s = t.s[i:]
	switch {
	case t.s == "":
		t.kind = uEnd
	case nt != uInvalid:
		t.kind = nt
	default:
		t.next()
	}
	return v
}

// suffix2 matches a suffix name at the start of s by prefix: pre-release
// suffixes rank -4..-1, post-release ones 0..4; it returns the rank and the
// name's length; ok is false when no name matches.
func suffix2(s string) (rank int64, n int, ok bool) {
	for i, name := range preSuffixes {
		if strings.HasPrefix(s, name) {
			return int64(i - len(preSuffixes)), len(name), true
		}
	}
	for i, name := range postSuffixes {
		if strings.HasPrefix(s, name) {
			return int64(i), len(name), true
		}
	}
	return 0, 0, false
}

// next determines the kind of the token at the start of s, consuming its
// separator.
func (t *token2) next() {
	n := uInvalid
	c := t.s[0]
	switch {
	case c == 0: // a C string ends here
		n = uEnd
	case (t.kind == uDigit || t.kind == uDigitOrZero) && isLower(c):
		n = uLetter
	case t.kind == uLetter && isDigit(c):
		n = uDigit
	case t.kind == uSuffix && isDigit(c):
		n = uSuffixNo
	default:
		switch c {
		case '.':
			n = uDigitOrZero
		case '_':
			n = uSuffix
		case '-':
			if len(t.s) > 1 && t.s[1] == 'r' {
				n = uRevisionNo
				t.s = t.s[1:]
			}
		}
		t.s = t.s[1:]
	}
	if n < t.kind && !(n == uDigitOrZero && t.kind == uDigit ||
		n == uSuffix && t.kind == uSuffixNo ||
		n == uDigit && t.kind == uLetter) {
		n = uInvalid
	}
	t.kind = n
}

func valid2(v string) bool {
	t := token2{s: v, kind: uDigit}
	for t.kind != uEnd && t.kind != uInvalid {
		t.get()
	}
	return t.kind == uEnd
}

// compare2 is apk-tools 2.14's version comparison; fuzzy makes b match any
// a that agrees with it up to b's end.
func compare2(a, b string, fuzzy bool) int {
	ta, tb := token2{s: a, kind: uDigit}, token2{s: b, kind: uDigit}
	var av, bv int64
	for ta.kind == tb.kind && ta.kind != uEnd && ta.kind != uInvalid && av == bv {
		av, bv = ta.get(), tb.get()
	}
	switch {
	case av < bv:
		return -1
	case av > bv:
		return 1
	case ta.kind == tb.kind || fuzzy:
		return 0
	}
	// The longer version is newer unless what it has more is a
	// pre-release suffix.
	if ta.kind == uSuffix {
		if t := ta; t.get() < 0 {
			return -1
		}
	}
	if tb.kind == uSuffix {
		if t := tb; t.get() < 0 {
			return 1
		}
	}
	switch {
	case ta.kind > tb.kind:
		return -1
	case tb.kind > ta.kind:
		return 1
	}
	return 0
}
