package detect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// parseKeyValues reads os-release and lsb-release syntax: the shell-style
// KEY=VALUE lines of the freedesktop os-release specification. Blank lines
// and lines starting with "#" are skipped and surrounding whitespace is
// trimmed. A value may be unquoted, "double-quoted" (where \ escapes $ ` " \
// and is otherwise literal) or 'single-quoted' (no escapes); outside quotes \
// escapes any character. Adjacent pieces concatenate as in the shell, an
// unquoted blank ends the value and only a "#" comment may follow. No
// expansion is done. The last assignment of a key wins.
//
// A line that is not an assignment, a key that is not a shell name, an
// unterminated quote, a NUL byte or invalid UTF-8 is an error naming the line:
// such a file is not os-release, and guessing from it could misidentify the
// system.
func parseKeyValues(data []byte) (map[string]string, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, fmt.Errorf("NUL byte at offset %d", i)
	}
	out := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: not a KEY=VALUE assignment", n)
		}
		if !isShellName(key) {
			return nil, fmt.Errorf("line %d: invalid key %q", n, key)
		}
		value, err := unquote(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, key, err)
		}
		out[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, lineError(err)
	}
	return out, nil
}

// isShellName reports whether s is a shell variable name.
func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote turns the right-hand side of an assignment into its value, by the
// rules of parseKeyValues.
func unquote(raw string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case ' ', '\t':
			if rest := strings.TrimLeft(raw[i:], " \t"); rest != "" && rest[0] != '#' {
				return "", fmt.Errorf("unquoted blank before %q", rest)
			}
			return b.String(), nil
		case '\\':
			if i+1 == len(raw) {
				return "", errors.New("trailing backslash")
			}
			i++
			b.WriteByte(raw[i])
		case '\'':
			end := strings.IndexByte(raw[i+1:], '\'')
			if end < 0 {
				return "", errors.New("unterminated single quote")
			}
			b.WriteString(raw[i+1 : i+1+end])
			i += 1 + end
		case '"':
			j := i + 1
			for ; j < len(raw) && raw[j] != '"'; j++ {
				if raw[j] == '\\' && j+1 < len(raw) && strings.IndexByte("$`\"\\", raw[j+1]) >= 0 {
					j++
				}
				b.WriteByte(raw[j])
			}
			if j == len(raw) {
				return "", errors.New("unterminated double quote")
			}
			i = j
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
