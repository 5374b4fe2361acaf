package version

import (
	"github.com/vigil-scanner/vigil/internal/version/apk"
	"github.com/vigil-scanner/vigil/internal/version/dpkg"
	"github.com/vigil-scanner/vigil/internal/version/rpm"
)

// Version formats known to Lookup. The first three equal the model.Kind*
// package kinds.
const (
	FormatDpkg = "dpkg" // Debian, Ubuntu: dpkg 1.21
	FormatRPM  = "rpm"  // RHEL family, SUSE, Fedora, ...: rpm 4.18 rpmverCmp
	FormatAPK  = "apk"  // Alpine 3.x with apk-tools 3, Wolfi
	FormatAPK2 = "apk2" // Alpine releases shipping apk-tools 2.x
)

var comparators = map[string]Comparator{
	FormatDpkg: dpkg.Comparator{},
	FormatRPM:  rpm.Comparator{},
	FormatAPK:  apk.V3,
	FormatAPK2: apk.V2,
}

// Lookup returns the comparator of a version format.
func Lookup(format string) (Comparator, bool) {
	c, ok := comparators[format]
	return c, ok
}
