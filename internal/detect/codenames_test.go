package detect

import (
	"encoding/csv"
	"os"
	"strings"
	"testing"

	"github.com/vigil-scanner/vigil/internal/testdata"
)

// TestCodenameTables checks the built-in tables against distro-info-data,
// row by row, both ways.
func TestCodenameTables(t *testing.T) {
	for _, tc := range []struct {
		file          string
		version       func(string) (string, bool)
		codename      func(string) (string, bool)
		builtInLength int
	}{
		{"debian.csv", DebianVersion, DebianCodename, len(debianReleases)},
		{"ubuntu.csv", UbuntuVersion, UbuntuCodename, len(ubuntuReleases)},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(testdata.Path(t, "osrelease", "distro-info-data", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := csv.NewReader(f)
			r.FieldsPerRecord = -1
			rows, err := r.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) < 2 || rows[0][0] != "version" || rows[0][2] != "series" {
				t.Fatalf("unexpected header %v", rows[0])
			}
			numbered := 0
			for _, row := range rows[1:] {
				version, series := strings.TrimSuffix(row[0], " LTS"), row[2]
				v, ok := tc.version(series)
				if version == "" {
					if ok {
						t.Errorf("%s has no version in the CSV, table gives %q", series, v)
					}
					continue
				}
				numbered++
				if !ok || v != version {
					t.Errorf("version of %s = %q, %v; CSV %q", series, v, ok, version)
				}
				if c, ok := tc.codename(version); !ok || c != series {
					t.Errorf("codename of %s = %q, %v; CSV %q", version, c, ok, series)
				}
				// distro-info capitalises the codename column; lookups ignore case.
				if v, ok := tc.version(row[1]); !strings.Contains(row[1], " ") && (!ok || v != version) {
					t.Errorf("version of %q = %q, %v; CSV %q", row[1], v, ok, version)
				}
			}
			if numbered != tc.builtInLength {
				t.Errorf("CSV has %d numbered releases, the table %d", numbered, tc.builtInLength)
			}
		})
	}
}

func TestCodenameLookups(t *testing.T) {
	for _, tc := range []struct {
		fn      func(string) (string, bool)
		in, out string
		ok      bool
	}{
		{DebianCodename, "12.15", "bookworm", true},
		{DebianCodename, "6.0.10", "squeeze", true},
		{DebianCodename, "3.1r8", "sarge", true},
		{DebianCodename, "5.0", "lenny", true},
		{DebianCodename, "6", "", false},
		{DebianCodename, "99", "", false},
		{DebianCodename, "", "", false},
		{DebianVersion, "Bookworm", "12", true},
		{DebianVersion, "sid", "", false},
		{DebianVersion, "jammy", "", false},
		{UbuntuCodename, "18.04.6", "bionic", true},
		{UbuntuCodename, "6.06 LTS", "dapper", true},
		{UbuntuCodename, "18", "", false},
		{UbuntuCodename, "12", "", false},
		{UbuntuVersion, "NOBLE", "24.04", true},
		{UbuntuVersion, "bookworm", "", false},
	} {
		if out, ok := tc.fn(tc.in); out != tc.out || ok != tc.ok {
			t.Errorf("lookup(%q) = %q, %v; want %q, %v", tc.in, out, ok, tc.out, tc.ok)
		}
	}
}
