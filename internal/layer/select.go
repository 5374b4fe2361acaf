package layer

import (
	"fmt"
	"path"
	"strings"
)

// Selector says which paths of a layer matter. Paths are clean,
// slash-separated and relative to the image root, with no leading "/" or
// "./"; the root itself is "".
type Selector interface {
	// Want reports whether the contents of the file at path are needed.
	Want(path string) bool
	// MayContain reports whether dir is an ancestor of some wanted path,
	// so that whiteouts, opaque markers and links on it matter.
	MayContain(dir string) bool
}

// NewSelector returns a Selector wanting the paths that match any of the
// path.Match patterns, such as "etc/os-release" or
// "var/lib/dpkg/status.d/*" (a "*" never crosses a "/"). Patterns are
// written by programmers, not read from input: NewSelector panics on a
// malformed or non-relative pattern, like regexp.MustCompile.
func NewSelector(patterns []string) Selector {
	s := make(patternSelector, 0, len(patterns))
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || p == "" || p != path.Clean(p) || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") {
			panic(fmt.Sprintf("layer: bad selector pattern %q: want a clean relative path.Match pattern", p))
		}
		s = append(s, strings.Split(p, "/"))
	}
	return s
}

// patternSelector holds each pattern split into its path components.
type patternSelector [][]string

func (s patternSelector) Want(p string) bool {
	parts := strings.Split(p, "/")
	for _, pat := range s {
		if matchParts(pat, parts) {
			return true
		}
	}
	return false
}

func (s patternSelector) MayContain(dir string) bool {
	if dir == "" {
		return len(s) > 0
	}
	parts := strings.Split(dir, "/")
	for _, pat := range s {
		if len(parts) < len(pat) && matchParts(pat[:len(parts)], parts) {
			return true
		}
	}
	return false
}

func matchParts(pat, parts []string) bool {
	if len(pat) != len(parts) {
		return false
	}
	for i, p := range pat {
		// Patterns were validated by NewSelector, so Match cannot fail.
		if ok, _ := path.Match(p, parts[i]); !ok {
			return false
		}
	}
	return true
}
