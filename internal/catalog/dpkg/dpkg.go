// Package dpkg lists the packages of a Debian/Ubuntu dpkg database: the
// status file var/lib/dpkg/status and the distroless layout
// var/lib/dpkg/status.d/<package> (one control paragraph per file).
//
// Format rules applied (deb822, as dpkg writes it):
//   - Paragraphs are separated by empty lines (whitespace-only lines count
//     as empty); a missing final newline is fine. A trailing "\r" is
//     stripped from every line, so CRLF files read like LF ones (dpkg never
//     writes CRLF; this only tolerates copies made on other systems).
//   - "Field: value" lines; lines starting with a space or tab continue the
//     previous field. Package, Version, Architecture, Source and Status are
//     simple fields: a continuation line after one of them is an error, as
//     is a repeated one with a different value (dpkg rejects duplicates;
//     an identical repeat is accepted). Other fields are not interpreted.
//   - A package is listed when its Status package state says its files are
//     on disk: installed, or the in-between states half-installed, unpacked,
//     half-configured, triggers-awaited and triggers-pending, whatever the
//     selection ("hold ok installed" and "deinstall ok installed" are still
//     installed). not-installed and config-files are skipped. This is wider
//     than "install ok installed" on purpose: a held package is as
//     vulnerable as any other. A malformed Status is an error.
//   - A paragraph without Status is listed as installed: distroless writes
//     status.d files only for installed packages and without Status, while
//     dpkg always writes Status into the status file.
//   - Package and, for a listed package, Version are required (dpkg
//     itself refuses a database without them); a paragraph lacking them is
//     an error naming its line.
//   - "Source: name (version)" gives the source package and version (a
//     binNMU such as bash 5.2.15-2+b13 names source version 5.2.15-2);
//     "Source: name" gives the name with the binary version; no Source means
//     the binary name and version — dpkg-query's ${source:Package} and
//     ${source:Version}.
//   - status.d/*.md5sums files are file checksum lists, not control files:
//     Parse returns no packages for them without reading (path.Match cannot
//     exclude them from Patterns).
//   - vcpkg (the C++ package manager) writes a status file in the same
//     syntax; its paragraphs carry the vcpkg-only fields Abi or Feature.
//     Such a file is rejected with ErrNotDpkg rather than read as Debian
//     packages.
package dpkg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-scanner/vigil/internal/catalog/internal/linescan"
	"github.com/vigil-scanner/vigil/internal/model"
)

// MaxPackages bounds the paragraphs of one file.
const MaxPackages = 100000

// ErrNotDpkg reports a file in dpkg status syntax that is not a dpkg
// database (a vcpkg status file).
var ErrNotDpkg = errors.New("not a dpkg database")

// Cataloger reads dpkg status databases.
type Cataloger struct{}

// Kind is model.KindDpkg.
func (Cataloger) Kind() string { return model.KindDpkg }

// Patterns are the status file and the distroless status.d files.
func (Cataloger) Patterns() []string {
	return []string{"var/lib/dpkg/status", "var/lib/dpkg/status.d/*"}
}

// Parse lists the installed packages of one status or status.d file.
func (Cataloger) Parse(path string, r io.Reader) ([]model.Package, error) {
	if strings.HasSuffix(path, ".md5sums") {
		return nil, nil
	}
	return parse(path, r)
}

// The fields read, which must hold one line.
const (
	fPackage = iota
	fVersion
	fArch
	fSource
	fStatus
	nFields
)

var fieldNames = [nFields]string{"Package", "Version", "Architecture", "Source", "Status"}

// field maps a field name to its index among the fields read.
var field = map[string]int{"Package": fPackage, "Version": fVersion, "Architecture": fArch, "Source": fSource, "Status": fStatus}

// paragraph is one control paragraph being read.
type paragraph struct {
	start int             // line of its first field, 0 before one
	vals  [nFields]string // values of the fields read
	lines [nFields]int    // line of each field read, 0 when absent
	last  int             // field read that continuation lines would join, or -1
}

// parse reads a status or status.d file from r; path names it in errors and
// in DBPath.
func parse(path string, r io.Reader) ([]model.Package, error) {
	sc := linescan.New(path, r)
	var pkgs []model.Package
	var p paragraph
	end := func() error {
		if p.start == 0 {
			return nil
		}
		pkg, ok, err := p.pkg(path, sc)
		p = paragraph{}
		if err != nil || !ok {
			return err
		}
		if len(pkgs) == MaxPackages {
			return sc.Errorf(sc.Line(), "more than %d packages", MaxPackages)
		}
		pkgs = append(pkgs, pkg)
		return nil
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimLeft(line, " \t")) == 0 {
			if err := end(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if p.start == 0 {
				return nil, sc.Errorf(sc.Line(), "continuation line outside a field")
			}
			if p.last >= 0 {
				return nil, sc.Errorf(sc.Line(), "continuation line in single-line field %s", fieldNames[p.last])
			}
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return nil, sc.Errorf(sc.Line(), "malformed field line %q", linescan.Clip(string(line)))
		}
		if p.start == 0 {
			p.start = sc.Line()
		}
		if string(name) == "Abi" || string(name) == "Feature" {
			return nil, sc.Errorf(sc.Line(), "%w: vcpkg field %s (a vcpkg status file)", ErrNotDpkg, name)
		}
		f, ok := field[string(name)]
		if !ok {
			p.last = -1
			continue
		}
		p.last = f
		v := string(bytes.TrimSpace(value))
		if p.lines[f] != 0 && p.vals[f] != v {
			return nil, sc.Errorf(sc.Line(), "duplicate field %s (%q, first %q at line %d)", fieldNames[f], linescan.Clip(v), linescan.Clip(p.vals[f]), p.lines[f])
		}
		p.vals[f], p.lines[f] = v, sc.Line()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// pkg turns a finished paragraph into a package; ok is false for a package
// whose files are not installed.
func (p *paragraph) pkg(path string, sc *linescan.Scanner) (model.Package, bool, error) {
	name := p.vals[fPackage]
	if name == "" {
		return model.Package{}, false, sc.Errorf(p.start, "paragraph without a Package value")
	}
	if p.lines[fStatus] != 0 {
		installed, err := parseStatus(p.vals[fStatus])
		if err != nil {
			return model.Package{}, false, sc.Errorf(p.lines[fStatus], "package %s: %v", name, err)
		}
		if !installed {
			return model.Package{}, false, nil
		}
	}
	version := p.vals[fVersion]
	if version == "" {
		return model.Package{}, false, sc.Errorf(p.start, "installed package %s without a Version value", name)
	}
	if hasControl(name) || hasControl(version) {
		return model.Package{}, false, sc.Errorf(p.start, "package %q: control character in its Package or Version value", name)
	}
	srcName, srcVersion, err := parseSource(p.vals[fSource])
	if err != nil {
		return model.Package{}, false, sc.Errorf(p.lines[fSource], "package %s: %v", name, err)
	}
	if srcName == "" {
		srcName = name
	}
	if srcVersion == "" {
		srcVersion = version
	}
	return model.Package{
		Kind:          model.KindDpkg,
		Name:          name,
		Version:       version,
		Arch:          p.vals[fArch],
		SourceName:    srcName,
		SourceVersion: srcVersion,
		DBPath:        path,
	}, true, nil
}

// hasControl reports a control byte (NUL, escape...), which dpkg never
// writes in a package name or version.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

var (
	wants  = map[string]bool{"unknown": true, "install": true, "hold": true, "deinstall": true, "purge": true}
	eflags = map[string]bool{"ok": true, "reinstreq": true}
	// states maps each package state to whether its files are on disk.
	states = map[string]bool{
		"not-installed": false, "config-files": false,
		"half-installed": true, "unpacked": true, "half-configured": true,
		"triggers-awaited": true, "triggers-pending": true, "installed": true,
	}
)

// parseStatus reads "want eflag state" and reports whether the package's
// files are installed.
func parseStatus(s string) (bool, error) {
	w := strings.Fields(s)
	if len(w) != 3 || !wants[w[0]] || !eflags[w[1]] {
		return false, fmt.Errorf("malformed Status %q", linescan.Clip(s))
	}
	installed, ok := states[w[2]]
	if !ok {
		return false, fmt.Errorf("malformed Status %q", linescan.Clip(s))
	}
	return installed, nil
}

// parseSource splits "name" or "name (version)"; both are empty for an
// empty field.
func parseSource(s string) (name, version string, err error) {
	name, rest, hasVersion := strings.Cut(s, " ")
	if !hasVersion {
		return name, "", nil
	}
	rest = strings.TrimSpace(rest)
	if len(rest) < 3 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return "", "", fmt.Errorf("malformed Source %q", linescan.Clip(s))
	}
	version = strings.TrimSpace(rest[1 : len(rest)-1])
	if version == "" || strings.ContainsAny(version, " \t()") {
		return "", "", fmt.Errorf("malformed Source %q", linescan.Clip(s))
	}
	return name, version, nil
}
