package catalog

import (
	"github.com/vigil-scanner/vigil/internal/catalog/apk"
	"github.com/vigil-scanner/vigil/internal/catalog/dpkg"
	"github.com/vigil-scanner/vigil/internal/catalog/rpm"
)

// All returns the operating-system package catalogers: dpkg, apk and rpm.
// The subpackages must not import catalog, or this would be a cycle.
func All() []Cataloger {
	return []Cataloger{dpkg.Cataloger{}, apk.Cataloger{}, rpm.Cataloger{}}
}
