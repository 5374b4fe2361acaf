// Package rpm lists the packages of an rpm database, in any of its three
// formats — Berkeley DB (Packages), NDB (Packages.db) and SQLite
// (rpmdb.sqlite), under var/lib/rpm or usr/lib/sysimage/rpm — read in pure
// Go by github.com/knqyf263/go-rpmdb, and of a Red Hat rpm-manifest (the
// installed-rpm list the Container Catalog publishes per image).
//
// Rules applied:
//   - go-rpmdb opens a file by name, so Parse copies the stream to a
//     temporary file (at most MaxDBSize bytes, else an error) that is
//     always removed. An empty file holds no packages. SQLite is opened
//     read-only and immutable: a -wal file beside the database is not read.
//   - go-rpmdb loops, leaks goroutines or allocates without bound on
//     hostile input, so each file is vetted first, by format: SQLite is
//     queried (checkSQLite); Berkeley DB's hash and overflow pages are
//     walked (checkBDB); NDB's header, slot pages and blobs are walked
//     (checkNDB): version 0, 1 to 2048 slot pages, at most MaxPackages
//     packages, each blob inside the file and apart from the others. In
//     all three formats every rpm header is then vetted (checkHeader)
//     before go-rpmdb parses any: its entries inside its data and in
//     order, strings terminated, since go-rpmdb's parser allocates 16
//     bytes an entry claimed (the runtime dies on 2^31) and scans data as
//     often as a string array claims strings; and everything else
//     go-rpmdb's header import checks up to a package (region and
//     trailer, tags, types, alignment, packing, the types of the tags it
//     reads, signature lengths), for at the first header it rejects
//     ListPackages returns and leaves its reader goroutine blocked for
//     good on an unbuffered channel (with an open SQLite connection).
//     FuzzHeaderAgreement checks that go-rpmdb accepts every header
//     checkHeader passes. A failing header refuses the database, naming
//     it ("header N": position from 1 in Berkeley DB, hnum in SQLite;
//     "slot N" in NDB). Berkeley DB and SQLite are then read in one
//     go-rpmdb run; NDB packages one at a time (listNDB), so that not
//     even a header go-rpmdb rejected could strand its reader.
//   - Version is "[epoch:]version-release", the epoch written whenever the
//     Epoch tag is present, even as 0 (0:1-2 and 1-2 compare equal); a
//     missing tag means no epoch.
//   - SourceName and SourceVersion ("version-release") come from the
//     source rpm file name, name-version-release.src.rpm (or .nosrc.rpm); a
//     package without one (rpm prints "(none)") has them empty, a malformed
//     one is an error.
//   - Module is the modularity label, name:stream:version:context.
//   - gpg-pubkey entries are skipped: they are imported signing keys that
//     rpm stores as pseudo-packages, not installed software.
package rpm

import (
	"database/sql"
	"fmt"
	"io"
	"os"
	"strings"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver go-rpmdb opens

	"github.com/vigil-scanner/vigil/internal/catalog/internal/linescan"
	"github.com/vigil-scanner/vigil/internal/model"
)

// Bounds on untrusted input.
const (
	MaxDBSize       = 512 << 20 // bytes of one database file
	MaxManifestSize = 64 << 20  // bytes of one rpm-manifest document
	MaxPackages     = 100000    // packages of one database or manifest
)

// Cataloger reads rpm databases.
type Cataloger struct{}

// Kind is model.KindRPM.
func (Cataloger) Kind() string { return model.KindRPM }

// Patterns are the three database files in both rpm database directories.
func (Cataloger) Patterns() []string {
	var p []string
	for _, dir := range []string{"var/lib/rpm/", "usr/lib/sysimage/rpm/"} {
		for _, f := range []string{"Packages", "Packages.db", "rpmdb.sqlite"} {
			p = append(p, dir+f)
		}
	}
	return p
}

// Parse lists the packages of one rpm database read from r; path names it
// in errors and in DBPath.
func (Cataloger) Parse(path string, r io.Reader) ([]model.Package, error) {
	tmp, err := os.CreateTemp("", "vigil-rpmdb-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, linescan.LimitReader(r, MaxDBSize))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: copying the database: %w", path, err)
	}
	if n == 0 {
		return nil, nil
	}
	infos, err := list(tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(infos) > MaxPackages {
		return nil, fmt.Errorf("%s: more than %d packages", path, MaxPackages)
	}
	var pkgs []model.Package
	for _, in := range infos {
		if in.Name == "gpg-pubkey" {
			continue
		}
		p := model.Package{
			Kind:    model.KindRPM,
			Name:    in.Name,
			Version: evr(in.Epoch, in.Version, in.Release),
			Arch:    in.Arch,
			Module:  in.Modularitylabel,
			DBPath:  path,
		}
		if p.Name == "" || in.Version == "" || in.Release == "" {
			return nil, fmt.Errorf("%s: package %q without name, version or release", path, p.Name+"-"+p.Version)
		}
		if in.SourceRpm != "" && in.SourceRpm != "(none)" {
			name, _, version, release, ok := splitSource(strings.TrimSuffix(in.SourceRpm, ".rpm"))
			if !ok || !strings.HasSuffix(in.SourceRpm, ".rpm") {
				return nil, fmt.Errorf("%s: package %s: malformed source rpm %q", path, p.Name, linescan.Clip(in.SourceRpm))
			}
			p.SourceName, p.SourceVersion = name, version+"-"+release
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// list reads every header of the database file at name, a temporary copy
// that it may rewrite, vetting it by format first (go-rpmdb tries SQLite,
// then NDB, then Berkeley DB), its structure and each of its rpm headers
// (checkHeader): see checkSQLite, listNDB, and checkBDB then
// checkBDBHeaders. go-rpmdb may panic on a corrupt header; that is
// returned as an error.
func list(name string) (infos []*rpmdb.PackageInfo, err error) {
	defer func() {
		if v := recover(); v != nil {
			infos, err = nil, fmt.Errorf("corrupt rpm database: %v", v)
		}
	}()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	magic := make([]byte, len(sqliteMagic))
	n, _ := io.ReadFull(f, magic)
	switch {
	case string(magic[:n]) == sqliteMagic:
		err = checkSQLite(name, st.Size())
	case n >= len(ndbMagic) && string(magic[:len(ndbMagic)]) == ndbMagic:
		return listNDB(f, st.Size())
	default:
		if err = checkBDB(f, st.Size()); err == nil {
			err = checkBDBHeaders(name)
		}
	}
	if err != nil {
		return nil, err
	}
	return read(name)
}

// read lists the packages of the database file at name with go-rpmdb.
func read(name string) ([]*rpmdb.PackageInfo, error) {
	db, err := rpmdb.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening rpm database: %w", err)
	}
	defer db.Close()
	infos, err := db.ListPackages()
	if err != nil {
		return nil, fmt.Errorf("reading rpm database: %w", err)
	}
	return infos, nil
}

// checkSQLite vets an SQLite database before go-rpmdb reads it: on a
// failing query go-rpmdb's reader goroutine sends a second error nobody
// receives and never ends, and go-rpmdb's header parser allocates and
// loops without bound on a hostile header. checkSQLite requires Packages
// to be an ordinary table, bounds the package count, requires the header
// blobs to total at most size (the file's), and runs checkHeader on each,
// naming a failing one by its hnum.
func checkSQLite(name string, size int64) error {
	db, err := sql.Open("sqlite", "file:"+name+"?mode=ro&immutable=1")
	if err != nil {
		return fmt.Errorf("opening rpm database: %w", err)
	}
	defer db.Close()
	// A view or a virtual table could loop forever or show these checks
	// other rows than go-rpmdb reads.
	var kind, ddl string
	if err := db.QueryRow("SELECT type, coalesce(sql, '') FROM sqlite_schema WHERE name = 'Packages'").Scan(&kind, &ddl); err != nil {
		return fmt.Errorf("reading rpm database: no Packages table: %w", err)
	}
	if kind == "table" && strings.HasPrefix(strings.ToUpper(strings.Join(strings.Fields(ddl), " ")), "CREATE VIRTUAL") {
		kind = "virtual table"
	}
	if kind != "table" {
		return fmt.Errorf("corrupt rpm database: Packages is a %s, not a table", kind)
	}
	var n, total int64
	if err := db.QueryRow("SELECT count(*), coalesce(sum(octet_length(blob)), 0) FROM Packages").Scan(&n, &total); err != nil {
		return fmt.Errorf("reading rpm database: %w", err)
	}
	if n > MaxPackages {
		return fmt.Errorf("more than %d packages", MaxPackages)
	}
	if total > size {
		return fmt.Errorf("corrupt rpm database: %d bytes of headers in a %d-byte file", total, size)
	}
	rows, err := db.Query("SELECT hnum, blob FROM Packages")
	if err != nil {
		return fmt.Errorf("reading rpm database: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var hnum int64
		var blob sql.RawBytes
		if err := rows.Scan(&hnum, &blob); err != nil {
			return fmt.Errorf("reading rpm database: %w", err)
		}
		if err := checkHeader(blob); err != nil {
			return fmt.Errorf("corrupt rpm database: header %d: %w", hnum, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading rpm database: %w", err)
	}
	return nil
}

const ndbMagic = "RpmP" // NDB header magic, little-endian 'R'|'p'<<8|'m'<<16|'P'<<24

const sqliteMagic = "SQLite format 3\x00"

// evr formats [epoch:]version-release.
func evr(epoch *int, version, release string) string {
	if epoch == nil {
		return version + "-" + release
	}
	return fmt.Sprintf("%d:%s-%s", *epoch, version, release)
}

// splitSource splits a source rpm "name-[epoch:]version-release.arch",
// arch being src or nosrc: a source rpm file name without ".rpm", or a
// srpm_nevra.
func splitSource(s string) (name, epoch, version, release string, ok bool) {
	rest, arch, found := cut(s, ".")
	if !found || (arch != "src" && arch != "nosrc") {
		return "", "", "", "", false
	}
	rest, release, found = cut(rest, "-")
	if !found {
		return "", "", "", "", false
	}
	name, version, found = cut(rest, "-")
	if !found {
		return "", "", "", "", false
	}
	if e, v, hasEpoch := strings.Cut(version, ":"); hasEpoch {
		epoch, version = e, v
		if epoch == "" || strings.Trim(epoch, "0123456789") != "" {
			return "", "", "", "", false
		}
	}
	if name == "" || version == "" || release == "" || strings.ContainsAny(version+release, ":") {
		return "", "", "", "", false
	}
	return name, epoch, version, release, true
}

// cut splits s around the last sep.
func cut(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
