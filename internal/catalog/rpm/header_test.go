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
