package catalog

import (
	"path"
	"testing"

	"github.com/vigil-scanner/vigil/internal/model"
)

func TestAll(t *testing.T) {
	kinds := map[string]bool{}
	for _, c := range All() {
		kinds[c.Kind()] = true
		if len(c.Patterns()) == 0 {
			t.Errorf("%s: no patterns", c.Kind())
		}
		for _, p := range c.Patterns() {
			if _, err := path.Match(p, ""); err != nil || p[0] == '/' || p[0] == '.' {
				t.Errorf("%s: bad pattern %q", c.Kind(), p)
			}
		}
	}
	for _, k := range []string{model.KindDpkg, model.KindAPK, model.KindRPM} {
		if !kinds[k] {
			t.Errorf("no %s cataloger", k)
		}
	}
}
