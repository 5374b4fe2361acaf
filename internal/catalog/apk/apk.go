// Package apk lists the packages of an Alpine apk database,
// lib/apk/db/installed (usr/lib/apk/db/installed once /lib is merged into
// /usr, where /lib is a symlink to usr/lib).
//
// Format rules applied (the apk-tools "installed" text database, written
// by apk-tools 2 and still read by 3):
//   - One record per package, records separated by empty lines; a missing
//     final newline is fine and a trailing "\r" on a line is dropped.
//   - Every other line is "K:value" with a one-character key. Of the keys
//     P (name), V (version), A (architecture) and o (origin, the source
//     package that aports builds it from) each may appear once per record;
//     a repeat means two records lost their separator and is an error.
//     Other keys (files, checksums, dependencies, ...) are not interpreted.
//   - P and V are required. A record without o has its own name as origin.
//   - SourceVersion is the package version: an apk origin is built at the
//     version of its subpackages.
package apk

import (
	"io"
	"strconv"
	"strings"

	"github.com/vigil-scanner/vigil/internal/catalog/internal/linescan"
	"github.com/vigil-scanner/vigil/internal/model"
)

// MaxPackages bounds the records of one file.
const MaxPackages = 100000

// Cataloger reads apk installed databases.
type Cataloger struct{}

// Kind is model.KindAPK.
func (Cataloger) Kind() string { return model.KindAPK }

// Patterns is the installed database, at either place.
func (Cataloger) Patterns() []string {
	return []string{"lib/apk/db/installed", "usr/lib/apk/db/installed"}
}

// record is one package record being read.
type record struct {
	start  int
	fields map[byte]string
}

// used are the keys read; each may appear once per record.
var used = map[byte]bool{'P': true, 'V': true, 'A': true, 'o': true}

// Parse lists the packages of one installed database read from r; path
// names it in errors and in DBPath.
func (Cataloger) Parse(path string, r io.Reader) ([]model.Package, error) {
	sc := linescan.New(path, r)
	var pkgs []model.Package
	var rec *record
	end := func() error {
		if rec == nil {
			return nil
		}
		f := rec.fields
		switch {
		case f['P'] == "":
			return sc.Errorf(rec.start, "record without a package name (P:)")
		case f['V'] == "":
			return sc.Errorf(rec.start, "package %s without a version (V:)", f['P'])
		case len(pkgs) == MaxPackages:
			return sc.Errorf(rec.start, "more than %d packages", MaxPackages)
		}
		origin := f['o']
		if origin == "" {
			origin = f['P']
		}
		pkgs = append(pkgs, model.Package{
			Kind:          model.KindAPK,
			Name:          f['P'],
			Version:       f['V'],
			Arch:          f['A'],
			SourceName:    origin,
			SourceVersion: f['V'],
			DBPath:        path,
		})
		rec = nil
		return nil
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if err := end(); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			return nil, sc.Errorf(sc.Line(), "malformed line %q, want K:value", linescan.Clip(line))
		}
		if rec == nil {
			rec = &record{start: sc.Line(), fields: map[byte]string{}}
		}
		k := line[0]
		if !used[k] {
			continue
		}
		if _, dup := rec.fields[k]; dup {
			return nil, sc.Errorf(sc.Line(), "repeated %c: in the record of line %d (missing empty line between records?)", k, rec.start)
		}
		rec.fields[k] = line[2:]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// APKToolsMajor is the major version (2 or 3) of the apk-tools package
// among pkgs, which selects apk's version comparison rules; 0 when
// apk-tools is not installed or its version does not start with a number.
func APKToolsMajor(pkgs []model.Package) int {
	for _, p := range pkgs {
		if p.Kind != model.KindAPK || p.Name != "apk-tools" {
			continue
		}
		major, _, _ := strings.Cut(p.Version, ".")
		n, err := strconv.Atoi(major)
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
	return 0
}
