package layer

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLinkHops is how many symlinks ResolveLink follows before giving up,
// as Linux does (MAXSYMLINKS).
const MaxLinkHops = 40

// ErrLinkLoop is wrapped by ResolveLink's error when resolving needs more
// than MaxLinkHops links.
var ErrLinkLoop = errors.New("too many levels of symbolic links")

// ResolveLink resolves every symlink along p inside an image root, the way
// the kernel would in a chroot: lookup(q) reports whether the root-relative
// path q is a link and its target. A relative target is read from the
// link's directory, an absolute one from the image root, and ".." stops at
// the root, so the result never leaves it. p and the result are clean
// root-relative paths ("" is the root itself). The last component is
// resolved too; components need not exist.
func ResolveLink(p string, lookup func(string) (target string, isLink bool)) (string, error) {
	var resolved []string
	pending := strings.Split(p, "/")
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved = resolved[:len(resolved)-1]
			}
			continue
		}
		resolved = append(resolved, c)
		target, isLink := lookup(strings.Join(resolved, "/"))
		if !isLink {
			continue
		}
		if hops++; hops > MaxLinkHops {
			return "", fmt.Errorf("resolving %s: %w", p, ErrLinkLoop)
		}
		if target == "" {
			return "", fmt.Errorf("resolving %s: link %s has an empty target", p, strings.Join(resolved, "/"))
		}
		resolved = resolved[:len(resolved)-1]
		if strings.HasPrefix(target, "/") {
			resolved = resolved[:0]
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return strings.Join(resolved, "/"), nil
}
