package index

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/vigil-scanner/vigil/internal/detect"
	"github.com/vigil-scanner/vigil/internal/layer"
	"github.com/vigil-scanner/vigil/internal/model"
)

// entry is one path of the composed view.
type entry struct {
	file []byte          // release file contents
	pkgs []model.Package // parsed package database
	link string          // symlink target
	isDB bool
}

// view is the composed filesystem, restricted to the paths of interest.
type view map[string]entry

// removeTree deletes p and everything below it.
func (v view) removeTree(p string) {
	delete(v, p)
	prefix := p + "/"
	for k := range v {
		if strings.HasPrefix(k, prefix) {
			delete(v, k)
		}
	}
}

// removeBelow deletes everything below dir, keeping dir itself.
func (v view) removeBelow(dir string) {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	for k := range v {
		if strings.HasPrefix(k, prefix) {
			delete(v, k)
		}
	}
}

// apply lays one layer's result over the view: first what it hides of the
// layers below (opaque directories, whiteouts), then what it adds. A path
// the layer adds replaces whatever lower layers had at and below it (a file
// or link over a directory hides the directory's contents).
func (v view) apply(res *Result) {
	for _, d := range res.Opaque {
		v.removeBelow(d)
	}
	for _, w := range res.Whiteouts {
		v.removeTree(w)
	}
	for p, b := range res.Files {
		v.removeTree(p)
		v[p] = entry{file: b}
	}
	for p, pk := range res.Packages {
		v.removeTree(p)
		v[p] = entry{pkgs: pk, isDB: true}
	}
	for p, t := range res.Links {
		v.removeTree(p)
		v[p] = entry{link: t}
	}
}

// lookupLink is the view's answer to layer.ResolveLink.
func (v view) lookupLink(p string) (string, bool) {
	e, ok := v[p]
	if !ok || e.link == "" {
		return "", false
	}
	return e.link, true
}

// packages returns the packages of every database in the view, in path
// order, each record once.
func (v view) packages() []model.Package {
	var paths []string
	for p, e := range v {
		if e.isDB {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	seen := map[string]bool{}
	var out []model.Package
	for _, p := range paths {
		for _, pk := range v[p].pkgs {
			k := recordKey(pk)
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, pk)
		}
	}
	return out
}

// releaseFS returns the release files of the view as a filesystem, with
// symlinks at release-file paths resolved inside the image root.
func (v view) releaseFS() (fs.FS, error) {
	fsys := fstest.MapFS{}
	for p, e := range v {
		if e.file != nil {
			fsys[p] = &fstest.MapFile{Data: e.file}
		}
	}
	for p, e := range v {
		if e.link == "" || !matchAny(detect.Patterns, p) {
			continue
		}
		target, err := layer.ResolveLink(p, v.lookupLink)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if t, ok := v[target]; ok && t.file != nil {
			fsys[p] = &fstest.MapFile{Data: t.file}
		}
	}
	return fsys, nil
}

// recordKey identifies a package record for introducing-layer purposes.
func recordKey(p model.Package) string {
	return strings.Join([]string{p.Kind, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.Module}, "\x00")
}

// Compose builds an image from its layers' results, bottom first, into r
// (whose Layers must list those layers): the OS of the top view and every
// package with its introducing layer.
func Compose(r *Report, results []*Result) error {
	if len(r.Layers) != len(results) {
		return fmt.Errorf("compose: %d layers but %d layer results", len(r.Layers), len(results))
	}
	v := view{}
	present := make([]map[string]bool, len(results)) // record keys per composed state
	var top []model.Package
	for i, res := range results {
		v.apply(res)
		top = v.packages()
		present[i] = make(map[string]bool, len(top))
		for _, p := range top {
			present[i][recordKey(p)] = true
		}
	}
	for _, p := range top {
		k := recordKey(p)
		at := len(results) - 1
		for at > 0 && present[at-1][k] {
			at--
		}
		p.Layer = r.Layers[at].DiffID
		if p.Layer == "" {
			p.Layer = r.Layers[at].Digest
		}
		r.Packages = append(r.Packages, p)
	}
	sort.SliceStable(r.Packages, func(i, j int) bool {
		a, b := r.Packages[i], r.Packages[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return a.Version < b.Version
	})
	fsys, err := v.releaseFS()
	if err != nil {
		r.Warnings = append(r.Warnings, "release files: "+err.Error())
		return nil
	}
	d, ok, err := detect.Detect(fsys)
	if err != nil {
		r.Warnings = append(r.Warnings, err.Error())
		return nil
	}
	if ok {
		r.Distribution = &d
	}
	return nil
}
