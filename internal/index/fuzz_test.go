package index_test

import (
	"bytes"
	"context"
	"path"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/index"
	"github.com/vigil-scanner/vigil/internal/layer"
)

// FuzzRead reads arbitrary bytes as a layer tar through every cataloger
// and the release-file reader, then composes the result: no panic, paths
// stay inside the root, and every package names the database it came from.
func FuzzRead(f *testing.F) {
	for _, ms := range [][]member{
		base,
		{{name: "var/lib/dpkg/.wh.status"}, {name: "lib/apk/db/installed", body: "P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n"}},
		{{name: "etc/os-release", typ: '2', link: "../usr/lib/os-release"}, {name: "usr/lib/os-release", body: "ID=alpine\nVERSION_ID=3.19.1\n"}},
		{{name: "../../x", body: "escape"}},
	} {
		var b bytes.Buffer
		if err := layerTar(&b, ms); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	ix := index.New(nil, nil)
	ix.Limits = layer.Limits{MaxFileSize: 1 << 20, MaxEntries: 1000, MaxTotalSize: 4 << 20, MaxPathLen: 256, MaxWarnings: 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := ix.Read(context.Background(), bytes.NewReader(data))
		if err != nil {
			return
		}
		inside := func(kind, p string) {
			if p == "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || p == ".." || path.Clean(p) != p {
				t.Errorf("%s path %q leaves the root or is not clean", kind, p)
			}
		}
		for p := range res.Files {
			inside("file", p)
		}
		for p, pkgs := range res.Packages {
			inside("database", p)
			for _, pk := range pkgs {
				if pk.Name == "" || pk.DBPath != p {
					t.Errorf("package %+v from %s", pk, p)
				}
			}
		}
		for _, p := range res.Whiteouts {
			inside("whiteout", p)
		}
		r := &index.Report{Layers: []index.LayerInfo{{DiffID: "sha256:x"}}}
		if err := index.Compose(r, []*index.Result{res}); err != nil {
			t.Errorf("compose: %v", err)
		}
	})
}
