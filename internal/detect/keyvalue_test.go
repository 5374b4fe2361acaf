package detect

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseKeyValues(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"plain", "ID=debian\n", map[string]string{"ID": "debian"}},
		{"double quotes", `NAME="Debian GNU/Linux"`, map[string]string{"NAME": "Debian GNU/Linux"}},
		{"single quotes keep backslashes", `V='a\"b $x'`, map[string]string{"V": `a\"b $x`}},
		{"escapes in double quotes", `V="a\"b\\c\$d\` + "`" + `e\nf"`, map[string]string{"V": "a\"b\\c$d`e\\nf"}},
		{"escape outside quotes", `V=a\ b`, map[string]string{"V": "a b"}},
		{"concatenation", `V="a"'b'c`, map[string]string{"V": "abc"}},
		{"empty values", "A=\nB=\"\"\nC=''", map[string]string{"A": "", "B": "", "C": ""}},
		{"comments, blanks, CRLF, indentation", "# c\r\n\r\n  ID=x\r\n\t# d\nV=1 # trailing\n", map[string]string{"ID": "x", "V": "1"}},
		{"hash inside a word", "V=a#b", map[string]string{"V": "a#b"}},
		{"last wins", "ID=a\nID=b", map[string]string{"ID": "b"}},
		{"blank kept inside quotes", `VERSION="15.1 "`, map[string]string{"VERSION": "15.1 "}},
		{"utf-8", `NAME="Façade ✓"`, map[string]string{"NAME": "Façade ✓"}},
		{"empty file", "", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKeyValues([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseKeyValuesErrors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"ID=x\njust words\n", "line 2: not a KEY=VALUE assignment"},
		{"export ID=x", `line 1: invalid key "export ID"`},
		{"1ID=x", `invalid key "1ID"`},
		{"=x", `invalid key ""`},
		{`NAME="Debian`, "line 1: NAME: unterminated double quote"},
		{`NAME='Debian`, "unterminated single quote"},
		{`NAME="a\"`, "unterminated double quote"},
		{`NAME=Debian GNU`, `unquoted blank before "GNU"`},
		{`NAME=x\`, "trailing backslash"},
		{"ID=a\x00b", "NUL byte at offset 4"},
		{"ID=\xff\xfe", "not valid UTF-8"},
		{"ID=" + strings.Repeat("a", maxLine), "longer than"},
	} {
		_, err := parseKeyValues([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseKeyValues(%.40q) error = %v, want one containing %q", tc.in, err, tc.err)
		}
	}
}
