// Package dpkg compares Debian package versions exactly as dpkg 1.21
// (`dpkg --compare-versions`) does.
//
// A version is [epoch:]upstream[-revision]. Blanks (space, tab) around it
// are trimmed; blanks inside it are refused. The epoch is the text before the
// first ':' read like C strtol (an optional sign is accepted), and must be a
// number in 0..2147483647; without a ':' it is 0. The revision is the text
// after the last '-' of the rest; without a '-' it is empty, which compares
// like "0". dpkg refuses empty versions, empty epochs, empty upstream parts,
// empty revisions, nothing after the ':' and (as no C string can hold one)
// NUL bytes; `dpkg --compare-versions` alone reads "" and "<unknown>" as an
// empty version, which Compare does not. dpkg only warns (and still
// compares) when the upstream part does not start with a digit or when the
// upstream part has characters outside [A-Za-z0-9.+~:-], or the revision
// outside [A-Za-z0-9.+~].
//
// Epochs compare numerically; upstream and revision with the same
// algorithm: alternating runs of non-digits and digits. Non-digit runs
// compare byte by byte with '~' before the end of the run, the end before
// letters, and letters before every other byte. Digit runs compare as
// numbers of any length (leading zeros ignored). Bytes above 0x7f sort
// between letters and ASCII punctuation, as with dpkg on platforms whose C
// char is signed (amd64, i386).
package dpkg

import (
	"fmt"
	"strings"
)

// Version is a parsed dpkg version.
type Version struct {
	Epoch    int    // 0 when absent
	Upstream string // never empty
	Revision string // empty when absent
}

// SyntaxError reports a version dpkg refuses or (Warning) only warns about.
type SyntaxError struct {
	Version string
	Reason  string
	Warning bool // dpkg prints a warning but still uses the version
}

func (e *SyntaxError) Error() string {
	if e.Warning {
		return fmt.Sprintf("dpkg version %q has bad syntax (warning): %s", e.Version, e.Reason)
	}
	return fmt.Sprintf("dpkg version %q has bad syntax: %s", e.Version, e.Reason)
}

const maxEpoch = 1<<31 - 1 // INT_MAX

// Parse splits v into epoch, upstream and revision. It returns a
// *SyntaxError only where dpkg refuses the version; versions dpkg merely
// warns about parse successfully (see Lint).
func Parse(v string) (Version, error) {
	var r Version
	if reason := parse(v, &r); reason != "" {
		return Version{}, &SyntaxError{Version: v, Reason: reason}
	}
	return r, nil
}

// Lint returns nil when dpkg accepts v without complaint, otherwise the
// first problem dpkg reports: a refusal, or a *SyntaxError with Warning set.
func Lint(v string) error {
	var r Version
	if reason := parse(v, &r); reason != "" {
		return &SyntaxError{Version: v, Reason: reason}
	}
	if reason := r.warning(); reason != "" {
		return &SyntaxError{Version: v, Reason: reason, Warning: true}
	}
	return nil
}

// Valid returns nil when dpkg would compare v (possibly with a warning).
func Valid(v string) error {
	_, err := Parse(v)
	return err
}

// Compare orders a and b as dpkg does: -1, 0 or +1. It fails when dpkg
// refuses either side.
func Compare(a, b string) (int, error) {
	var va, vb Version
	if reason := parse(a, &va); reason != "" {
		return 0, &SyntaxError{Version: a, Reason: reason}
	}
	if reason := parse(b, &vb); reason != "" {
		return 0, &SyntaxError{Version: b, Reason: reason}
	}
	return va.Compare(vb), nil
}

// Comparator is the dpkg version.Comparator.
type Comparator struct{}

// Compare is the package-level Compare.
func (Comparator) Compare(a, b string) (int, error) { return Compare(a, b) }

// Valid is the package-level Valid.
func (Comparator) Valid(v string) error { return Valid(v) }

// String returns the version in dpkg's canonical form: the epoch is shown
// when non-zero, or when the rest holds a ':' and would otherwise
// be read as an epoch (the revision may hold one too: dpkg warns but
// accepts it).
func (v Version) String() string {
	var s strings.Builder
	if v.Epoch != 0 || strings.ContainsRune(v.Upstream, ':') || strings.ContainsRune(v.Revision, ':') {
		fmt.Fprintf(&s, "%d:", v.Epoch)
	}
	s.WriteString(v.Upstream)
	if v.Revision != "" {
		s.WriteByte('-')
		s.WriteString(v.Revision)
	}
	return s.String()
}

// Compare orders v against w: -1, 0 or +1.
func (v Version) Compare(w Version) int {
	switch {
	case v.Epoch < w.Epoch:
		return -1
	case v.Epoch > w.Epoch:
		return 1
	}
	if c := verrevcmp(v.Upstream, w.Upstream); c != 0 {
		return c
	}
	return verrevcmp(v.Revision, w.Revision)
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// parse fills r and returns "" or the reason dpkg refuses s. It reads s
// once: blanks, the first ':' and the last '-' are found on the way.
func parse(s string, r *Version) string {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i == len(s) {
		return "version string is empty"
	}
	end, colon, hyphen := len(s), -1, -1
	for j := i; j < len(s); j++ {
		switch c := s[j]; {
		case c == 0:
			return "version string has a NUL byte" // a C string would end there
		case isBlank(c):
			end = min(end, j)
		case end < len(s):
			return "version string has embedded spaces"
		case c == ':' && colon < 0:
			colon = j
		case c == '-':
			hyphen = j
		}
	}

	r.Epoch = 0
	rest := i
	if colon >= 0 {
		epoch, reason := parseEpoch(s[i:], colon-i)
		if reason != "" {
			return reason
		}
		if colon+1 == end {
			return "nothing after colon in version number"
		}
		r.Epoch = epoch
		rest = colon + 1
	}
	r.Upstream, r.Revision = s[rest:end], ""
	if hyphen >= rest {
		if hyphen+1 == end {
			return "revision number is empty"
		}
		r.Upstream, r.Revision = s[rest:hyphen], s[hyphen+1:end]
	}
	if r.Upstream == "" {
		return "upstream version is empty"
	}
	return ""
}

// parseEpoch reads s[:colon] the way dpkg does with strtol: leading C
// white space, an optional sign, decimal digits, which must end at colon.
func parseEpoch(s string, colon int) (int, string) {
	i := 0
	for i < colon && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < colon && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	overflow := false
	n := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		if n > maxEpoch {
			overflow = true // strtol would report ERANGE or exceed INT_MAX
			continue
		}
		n = n*10 + int(s[i]-'0')
	}
	switch {
	case i == start:
		return 0, "epoch in version is empty"
	case i != colon:
		return 0, "epoch in version is not number"
	case neg && (n != 0 || overflow):
		return 0, "epoch in version is negative"
	case overflow || n > maxEpoch:
		return 0, "epoch in version is too big"
	}
	return n, ""
}

// warning returns the reason dpkg warns about a parsed version, or "".
func (v Version) warning() string {
	if !isDigit(v.Upstream[0]) {
		return "version number does not start with digit"
	}
	for i := 1; i < len(v.Upstream); i++ {
		c := v.Upstream[i]
		if !isDigit(c) && !isAlpha(c) && strings.IndexByte(".-+~:", c) < 0 {
			return "invalid character in version number"
		}
	}
	for i := 0; i < len(v.Revision); i++ {
		c := v.Revision[i]
		if !isDigit(c) && !isAlpha(c) && strings.IndexByte(".+~", c) < 0 {
			return "invalid character in revision number"
		}
	}
	return ""
}

// order ranks a byte inside a non-digit run; 0 stands for the end of the
// string (and digits, which end the run).
func order(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	case c >= 0x80:
		return int(c) // int8(c)+256 with a signed C char
	default:
		return int(c) + 256
	}
}

// verrevcmp is dpkg's comparison of upstream versions and revisions.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := order(a, i), order(b, j)
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		firstDiff := 0
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
