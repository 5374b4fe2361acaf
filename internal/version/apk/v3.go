package apk

import "strings"

// apk-tools 3 token kinds, in grammar order (the order matters: a token may
// only follow kinds before it, and the shorter version's next kind decides
// ties).
const (
	tInitialDigit = iota
	tDigit
	tLetter
	tSuffix
	tSuffixNo
	tCommitHash
	tRevisionNo
	tEnd
	tInvalid
)

// Suffix ranks; sNone is the pivot between pre- and post-release suffixes.
const (
	sInvalid = iota
	sAlpha
	sBeta
	sPre
	sRC
	sNone
	sCVS
	sSVN
	sGit
	sHg
	sP
)

var suffixNames = [...]string{sAlpha: "alpha", sBeta: "beta", sPre: "pre", sRC: "rc",
	sCVS: "cvs", sSVN: "svn", sGit: "git", sHg: "hg", sP: "p"}

// token3 walks a version under apk-tools 3 rules.
type token3 struct {
	s      string // what is left to read
	kind   int
	suffix int
	number uint64 // of digit tokens, wrapped modulo 2^64
	value  string // the token's text (digits, letter, suffix name, hash)
}

func (t *token3) digits() {
	i := 0
	t.number = 0
	for i < len(t.s) && isDigit(t.s[i]) {
		t.number = t.number*10 + uint64(t.s[i]-'0')
		i++
	}
	t.value, t.s = t.s[:i], t.s[i:]
	if i == 0 {
		t.kind = tInvalid
	}
}

func (t *token3) first(s string) {
	t.s = s
	t.kind = tInitialDigit
	t.digits()
}

func (t *token3) next() {
	if t.s == "" {
		t.kind = tEnd
		return
	}
	c := t.s[0]
	switch {
	case isLower(c):
		if t.kind > tDigit {
			t.kind = tInvalid
			return
		}
		t.value, t.s, t.kind = t.s[:1], t.s[1:], tLetter
	case c == '.' || isDigit(c):
		if c == '.' {
			if t.kind > tDigit {
				t.kind = tInvalid
				return
			}
			t.s = t.s[1:]
		}
		switch t.kind {
		case tInitialDigit, tDigit:
			t.kind = tDigit
		case tSuffix:
			t.kind = tSuffixNo
		default:
			t.kind = tInvalid
			return
		}
		t.digits()
	case c == '_':
		if t.kind > tSuffixNo {
			t.kind = tInvalid
			return
		}
		t.span(isLower)
		t.suffix = suffixValue(t.value)
		t.kind = tSuffix
		if t.suffix == sInvalid {
			t.kind = tInvalid
		}
	case c == '~':
		if t.kind >= tCommitHash {
			t.kind = tInvalid
			return
		}
		t.span(isHex)
		t.kind = tCommitHash
		if t.value == "" {
			t.kind = tInvalid
		}
	case c == '-':
		if t.kind >= tRevisionNo || !strings.HasPrefix(t.s, "-r") {
			t.kind = tInvalid
			return
		}
		t.s = t.s[2:]
		t.kind = tRevisionNo
		t.digits()
	default:
		t.kind = tInvalid
	}
}

// span takes the run of bytes in class after a one-byte separator as the
// token's value.
func (t *token3) span(class func(byte) bool) {
	i := 1
	for i < len(t.s) && class(t.s[i]) {
		i++
	}
	t.value, t.s = t.s[1:i], t.s[i:]
}

// suffixValue ranks an apk-tools 3 suffix name, which must match exactly.
func suffixValue(s string) int {
	for v := sAlpha; v <= sP; v++ {
		if v != sNone && suffixNames[v] == s {
			return v
		}
	}
	return sInvalid
}

func valid3(v string) bool {
	var t token3
	for t.first(v); t.kind < tEnd; t.next() {
	}
	return t.kind == tEnd
}

// cmp3 orders two tokens of the same kind.
func cmp3(a, b *token3) int {
	switch a.kind {
	case tDigit:
		if a.value[0] == '0' || b.value[0] == '0' {
			return strings.Compare(a.value, b.value)
		}
		return sign64(a.number, b.number)
	case tInitialDigit, tSuffixNo, tRevisionNo:
		return sign64(a.number, b.number)
	case tLetter:
		return sign64(uint64(a.value[0]), uint64(b.value[0]))
	case tSuffix:
		return sign64(uint64(a.suffix), uint64(b.suffix))
	}
	return strings.Compare(a.value, b.value)
}

// compare3 is apk-tools 3's version comparison; fuzzy makes b match any a
// it is a prefix of.
func compare3(a, b string, fuzzy bool) int {
	var ta, tb token3
	ta.first(a)
	tb.first(b)
	for ta.kind == tb.kind && ta.kind < tEnd {
		if r := cmp3(&ta, &tb); r != 0 {
			return r
		}
		ta.next()
		tb.next()
	}
	switch {
	case ta.kind == tb.kind, tb.kind == tEnd && fuzzy:
		return 0
	case ta.kind == tSuffix && ta.suffix < sNone:
		return -1
	case tb.kind == tSuffix && tb.suffix < sNone:
		return 1
	case ta.kind > tb.kind:
		return -1
	case tb.kind > ta.kind:
		return 1
	}
	return 0
}
