package rpm

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
	"github.com/knqyf263/go-rpmdb/pkg/bdb"

	"github.com/vigil-scanner/vigil/internal/testdata"
)

// hostileHeaders break an rpm header (its first 40 bytes only) the way
// go-rpmdb's header parser dies or hangs on; each returns checkHeader's
// error.
var hostileHeaders = []struct {
	name   string
	mutate func(h []byte) string
}{
	// go-rpmdb allocates 32 GiB for the index: the runtime dies.
	{"entry count", func(h []byte) string {
		binary.BigEndian.PutUint32(h, 1<<31-1)
		return fmt.Sprintf("rpm header of 2147483647 entries and %d data bytes in %d bytes", binary.BigEndian.Uint32(h[4:]), len(h))
	}},
	// go-rpmdb scans the data 2^32 times looking for the missing NULs.
	{"unterminated strings", func(h []byte) string {
		binary.BigEndian.PutUint32(h[8+16+4:], rpmdb.RPM_STRING_ARRAY_TYPE) // entry 1
		binary.BigEndian.PutUint32(h[8+16+12:], 1<<32-1)
		return "rpm header entry 1: 4294967295 strings unterminated"
	}},
	// go-rpmdb rejects it, and leaves its reader goroutine behind.
	{"tag under 100", func(h []byte) string {
		binary.BigEndian.PutUint32(h[8+16:], 99) // entry 1
		return "rpm header entry 1: tag 99, under 100"
	}},
}

// mutated returns a copy of header h that mutate changed, and its result;
// it fails t if mutate changed more than the first 40 bytes.
func mutated(t testing.TB, h []byte, mutate func([]byte) string) ([]byte, string) {
	t.Helper()
	m := slices.Clone(h)
	want := mutate(m)
	if !bytes.Equal(m[40:], h[40:]) {
		t.Fatal("mutation beyond the first 40 bytes")
	}
	return m, want
}

// sqliteWith returns a copy of the shared cbl-mariner rpmdb.sqlite whose
// header hnum mutate rewrote, and mutate's result.
func sqliteWith(t testing.TB, hnum int, mutate func([]byte) string) ([]byte, string) {
	t.Helper()
	orig, err := os.ReadFile(testdata.Path(t, "pkgdb", "rpm", "sqlite", "cbl-mariner-2.0", "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "rpmdb.sqlite")
	if err := os.WriteFile(name, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var h []byte
	if _, err := db.Exec("PRAGMA journal_mode=DELETE"); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT blob FROM Packages WHERE hnum = ?", hnum).Scan(&h); err != nil {
		t.Fatal(err)
	}
	h, want := mutated(t, h, mutate)
	return execAndRead(t, db, name, "UPDATE Packages SET blob = ? WHERE hnum = ?", h, hnum), want
}

// bdbWith returns a copy of the shared centos8-dive Packages whose one
// header mutate rewrote in place, and mutate's result.
func bdbWith(t testing.TB, mutate func([]byte) string) ([]byte, string) {
	t.Helper()
	name := testdata.Path(t, "pkgdb", "rpm", "bdb", "centos8-dive", "Packages")
	orig, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bdb.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var headers [][]byte
	for e := range db.Read() {
		if e.Err != nil {
			t.Fatal(e.Err)
		}
		headers = append(headers, e.Value)
	}
	if len(headers) != 1 {
		t.Fatalf("%d headers, want 1", len(headers))
	}
	h, want := mutated(t, headers[0], mutate)
	i := bytes.Index(orig, headers[0][:40])
	if i < 0 || bytes.Count(orig, headers[0][:40]) != 1 {
		t.Fatal("the header's first 40 bytes are not in the file once")
	}
	b := slices.Clone(orig)
	copy(b[i:], h[:40])
	return b, want
}

// TestHostileHeaders checks that SQLite and Berkeley DB databases with a
// header go-rpmdb would die or hang on are refused, naming the header,
// quickly, in bounded memory and without a goroutine left behind.
func TestHostileHeaders(t *testing.T) {
	for _, h := range hostileHeaders {
		t.Run("sqlite/"+h.name, func(t *testing.T) {
			b, want := sqliteWith(t, 12, h.mutate)
			want = "rpmdb.sqlite: corrupt rpm database: header 12: " + want
			if err := parseHostile(t, "rpmdb.sqlite", b); err == nil || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		})
		t.Run("bdb/"+h.name, func(t *testing.T) {
			b, want := bdbWith(t, h.mutate)
			want = "Packages: corrupt rpm database: header 1: " + want
			if err := parseHostile(t, "Packages", b); err == nil || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}

// TestSQLitePackagesNotTable: a database whose Packages is an endless
// recursive view, or a virtual table, is refused at once.
func TestSQLitePackagesNotTable(t *testing.T) {
	for kind, ddl := range map[string]string{
		"view":          `CREATE VIEW Packages AS WITH RECURSIVE r(hnum, blob) AS (SELECT 1, x'00' UNION ALL SELECT hnum + 1, blob FROM r) SELECT hnum, blob FROM r`,
		"virtual table": `CREATE VIRTUAL TABLE Packages USING fts5(hnum, blob)`,
	} {
		t.Run(kind, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "rpmdb.sqlite")
			db, err := sql.Open("sqlite", name)
			if err != nil {
				t.Fatal(err)
			}
			b := execAndRead(t, db, name, ddl)
			want := "rpmdb.sqlite: corrupt rpm database: Packages is a " + kind + ", not a table"
			if err := parseHostile(t, "rpmdb.sqlite", b); err == nil || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}

// execAndRead runs one statement on db, the SQLite database at name,
// closes it and returns the file's bytes.
func execAndRead(t testing.TB, db *sql.DB, name, query string, args ...any) []byte {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rejectedHeaders are rpm headers that go-rpmdb rejects or panics on, with
// checkHeader's error.
func rejectedHeaders() []struct {
	name, err string
	h         []byte
} {
	be := binary.BigEndian
	// Entries at 8 (region), 24, 40, 56; data at 72: "a", "1", "2" and the
	// trailer, its offset at 86.
	good := regionHeader(str(rpmdb.RPMTAG_NAME, "a"), str(rpmdb.RPMTAG_VERSION, "1"), str(rpmdb.RPMTAG_RELEASE, "2"))
	with := func(h []byte, at int, v uint32) []byte {
		h = slices.Clone(h)
		be.PutUint32(h[at:], v)
		return h
	}
	misaligned := rpmHeader(str(rpmdb.RPMTAG_NAME, "a"), rpmEntry{rpmdb.RPMTAG_EPOCH, rpmdb.RPM_INT32_TYPE, 1, make([]byte, 4)})
	minus := func(n int32) uint32 { return uint32(-n) }
	return []struct {
		name, err string
		h         []byte
	}{
		{"region type", "rpm header region tag 63 of type 4 and count 16, want 7 and 16", with(good, 12, rpmdb.RPM_INT32_TYPE)},
		{"region trailer beyond the data", "rpm header region trailer at data offset 7, outside -16 to 6", with(good, 16, 7)},
		{"region of too many entries", "rpm header region trailer offset -80, want minus 16 times 1 to 4", with(good, 86, minus(80))},
		{"region trailer offset unaligned", "rpm header region trailer offset -40, want minus 16 times 1 to 4", with(good, 86, minus(40))},
		// go-rpmdb panics.
		{"region of no entries", "rpm header region trailer offset 0, want minus 16 times 1 to 4", with(good, 86, 0)},
		{"tag under 100", "rpm header entry 0: tag 99, under 100", rpmHeader(str(99, "a"))},
		{"misaligned", "rpm header entry 1: type 4 at data offset 2, not 4-aligned", with(misaligned, 8+16+8, 2)},
		{"strings of the string type", "rpm header entry 0: 2 strings of the string type",
			rpmHeader(rpmEntry{rpmdb.RPMTAG_NAME, rpmdb.RPM_STRING_TYPE, 2, []byte("a\x00b\x00")})},
		{"null type", "rpm header entry 1: no data", rpmHeader(str(rpmdb.RPMTAG_NAME, "a"), rpmEntry{1100, rpmdb.RPM_NULL_TYPE, 1, nil})},
		{"no strings", "rpm header entry 1: no data", rpmHeader(str(rpmdb.RPMTAG_NAME, "a"), rpmEntry{1100, rpmdb.RPM_STRING_ARRAY_TYPE, 0, nil})},
		{"data not packed", "rpm header entries packing 4 data bytes, not 8", rpmHeader(rpmEntry{rpmdb.RPMTAG_SIZE, rpmdb.RPM_INT32_TYPE, 1, make([]byte, 8)})},
		{"region data not packed", "rpm header entries packing 21 data bytes, not 22", with(good, 8+16+8, 1)},
		{"epoch of type string", "rpm header entry 0: tag 1003 of type 6", rpmHeader(str(rpmdb.RPMTAG_EPOCH, "1"))},
		{"short signature", "rpm header entry 0: signature of 3 bytes, want 20",
			rpmHeader(rpmEntry{rpmdb.RPMTAG_PGP, rpmdb.RPM_BIN_TYPE, 3, []byte{0x89, 2, 4}})},
		{"short v4 signature", "rpm header entry 0: signature of 20 bytes, want 38",
			rpmHeader(rpmEntry{rpmdb.RPMTAG_RSAHEADER, rpmdb.RPM_BIN_TYPE, 20, append([]byte{0x89, 1, 0x20}, make([]byte, 17)...)})},
	}
}

// goRpmdb lists, with go-rpmdb alone, a one-package NDB file at name of
// rpm header h; a panic is an error.
func goRpmdb(name string, h []byte) (infos []*rpmdb.PackageInfo, err error) {
	defer func() {
		if v := recover(); v != nil {
			infos, err = nil, fmt.Errorf("panic: %v", v)
		}
	}()
	if err := os.WriteFile(name, ndbFile(1, h), 0o600); err != nil {
		return nil, err
	}
	return read(name)
}

// TestRejectedHeaders checks that checkHeader refuses, saying why, each
// header that go-rpmdb refuses or panics on, and that go-rpmdb does.
func TestRejectedHeaders(t *testing.T) {
	name := filepath.Join(t.TempDir(), "Packages.db")
	for _, tc := range rejectedHeaders() {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkHeader(tc.h); err == nil || err.Error() != tc.err {
				t.Errorf("checkHeader: got %v, want %q", err, tc.err)
			}
			if _, err := goRpmdb(name, tc.h); err == nil {
				t.Error("go-rpmdb accepts it")
			}
		})
	}
}

// FuzzHeaderAgreement checks that go-rpmdb accepts, as one package, every
// rpm header that checkHeader passes (so checkHeader passes nothing
// go-rpmdb rejects). Refused headers are not given to go-rpmdb, which may
// hang or exhaust memory on them.
func FuzzHeaderAgreement(f *testing.F) {
	fixtures := fixtureHeaders(f, 3)
	for _, h := range fixtures {
		f.Add(h)
	}
	f.Add(pkgHeader("a"))
	// Signatures of the three forms go-rpmdb decodes, just long enough.
	for _, sig := range [][]byte{{0x89, 2, 3}, {0x89, 1, 0x1c}, {0x89, 1, 0x20}} {
		sig = append(sig, make([]byte, pgpSize(sig)-len(sig))...)
		f.Add(regionHeader(str(rpmdb.RPMTAG_NAME, "a"), rpmEntry{rpmdb.RPMTAG_EPOCH, rpmdb.RPM_INT32_TYPE, 1, make([]byte, 4)},
			rpmEntry{rpmdb.RPMTAG_FILEMODES, rpmdb.RPM_INT16_TYPE, 2, make([]byte, 4)},
			rpmEntry{rpmdb.RPMTAG_PGP, rpmdb.RPM_BIN_TYPE, uint32(len(sig)), sig}))
	}
	for _, h := range rejectedHeaders() {
		f.Add(h.h)
	}
	for _, h := range hostileHeaders {
		m, _ := mutated(f, fixtures[0], h.mutate)
		f.Add(m)
	}
	name := filepath.Join(f.TempDir(), "Packages.db")
	f.Fuzz(func(t *testing.T, h []byte) {
		if checkHeader(h) != nil {
			return
		}
		if infos, err := goRpmdb(name, h); err != nil || len(infos) != 1 {
			t.Fatalf("checkHeader passes it; go-rpmdb: %d packages, %v", len(infos), err)
		}
	})
}
