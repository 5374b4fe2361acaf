package rpm

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"

	"github.com/vigil-scanner/vigil/internal/catalog/internal/cattest"
	"github.com/vigil-scanner/vigil/internal/testdata"
)

// rpmEntry is an entry of an rpm header: its data follows the previous
// entry's.
type rpmEntry struct {
	tag, typ, count uint32
	data            []byte
}

// str is a string entry.
func str(tag uint32, s string) rpmEntry {
	return rpmEntry{tag, rpmdb.RPM_STRING_TYPE, 1, []byte(s + "\x00")}
}

// rpmHeader builds an rpm header without a region, which go-rpmdb reads as
// a legacy one, each entry's data aligned for its type.
func rpmHeader(entries ...rpmEntry) []byte { return buildHeader(false, entries) }

// regionHeader builds an rpm header whose immutable region holds entries.
func regionHeader(entries ...rpmEntry) []byte { return buildHeader(true, entries) }

// buildHeader builds an rpm header of entries, in a region if region.
func buildHeader(region bool, entries []rpmEntry) []byte {
	be := binary.BigEndian
	var index, data []byte
	add := func(vs ...uint32) {
		for _, v := range vs {
			index = be.AppendUint32(index, v)
		}
	}
	for _, e := range entries {
		for e.typ < uint32(len(typeAlign)) && int64(len(data))%typeAlign[e.typ] != 0 {
			data = append(data, 0)
		}
		add(e.tag, e.typ, uint32(len(data)), e.count)
		data = append(data, e.data...)
	}
	if region {
		n := int32(len(entries) + 1)
		index = append(be32(rpmdb.RPMTAG_HEADERIMMUTABLE, rpmdb.RPM_BIN_TYPE, uint32(len(data)), regionSize), index...)
		data = append(data, be32(rpmdb.RPMTAG_HEADERIMMUTABLE, rpmdb.RPM_BIN_TYPE, uint32(-16*n), regionSize)...)
	}
	b := be32(uint32(len(index)/16), uint32(len(data)))
	return append(append(b, index...), data...)
}

// pkgHeader is the header of package name-1-2.x86_64.
func pkgHeader(name string) []byte {
	return rpmHeader(str(rpmdb.RPMTAG_NAME, name), str(rpmdb.RPMTAG_VERSION, "1"),
		str(rpmdb.RPMTAG_RELEASE, "2"), str(rpmdb.RPMTAG_ARCH, "x86_64"))
}

// ndbFile builds an NDB file of pages slot pages: header i is package i+1
// in slot i+2, its blob (and a zero tail) after the slot pages.
func ndbFile(pages int, headers ...[]byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, pages*ndbPageSize)
	copy(b, ndbMagic)
	le.PutUint32(b[12:], uint32(pages))
	for i := ndbHeaderSize; i < len(b); i += ndbSlotSize {
		copy(b[i:], ndbSlotMagic)
	}
	for i, h := range headers {
		slot := b[ndbHeaderSize+i*ndbSlotSize:]
		blob := make([]byte, (2*ndbSlotSize+len(h)+12-1)/ndbSlotSize*ndbSlotSize)
		le.PutUint32(slot[4:], uint32(i+1))
		le.PutUint32(slot[8:], uint32(len(b)/ndbSlotSize))
		le.PutUint32(slot[12:], uint32(len(blob)/ndbSlotSize))
		copy(blob, ndbBlobMagic)
		le.PutUint32(blob[4:], uint32(i+1))
		le.PutUint32(blob[12:], uint32(len(h)))
		copy(blob[ndbSlotSize:], h)
		b = append(b, blob...)
	}
	return b
}

// hostileNDB is an NDB file go-rpmdb mishandles, and the error Parse gives.
type hostileNDB struct {
	name string
	b    []byte
	err  string
}

// hostileNDBs returns broken variants of a two-package NDB file; the
// comments say what go-rpmdb by itself does with them.
func hostileNDBs() []hostileNDB {
	le := binary.LittleEndian
	good := ndbFile(1, pkgHeader("a"), pkgHeader("b"))
	with := func(mutate func(b []byte)) []byte {
		b := slices.Clone(good)
		mutate(b)
		return b
	}
	second := func(h []byte) []byte { return ndbFile(1, h, pkgHeader("b")) }
	noNUL := append(be32(1, 1<<10, rpmdb.RPMTAG_BASENAMES, rpmdb.RPM_STRING_ARRAY_TYPE, 0, 0xffffffff), bytes.Repeat([]byte("a"), 1<<10)...)
	overlap := pkgHeader("a")
	binary.BigEndian.PutUint32(overlap[8+16+8:], 0) // entry 1's data offset
	many := make([][]byte, MaxPackages+1)
	return []hostileNDB{
		// go-rpmdb reads it as Berkeley DB.
		{"version", with(func(b []byte) { le.PutUint32(b[4:], 1) }), "corrupt NDB: version 1"},
		{"no slot pages", with(func(b []byte) { le.PutUint32(b[12:], 0) }), "corrupt NDB: 0 slot pages, want 1 to 2048"},
		// go-rpmdb refuses these itself.
		{"too many slot pages", with(func(b []byte) { le.PutUint32(b[12:], 2049) }), "corrupt NDB: 2049 slot pages, want 1 to 2048"},
		// go-rpmdb allocates 16 MiB for the slots.
		{"header cut short", good[:20], "corrupt NDB: 20 bytes, less than a header"},
		{"blob beyond the file", with(func(b []byte) { le.PutUint32(b[ndbHeaderSize+8:], 1<<31) }), "corrupt NDB: slot 2: blob at offset 34359738368, outside 4096 to 4352"},
		// go-rpmdb allocates 16 MiB for the slots.
		{"slot pages beyond the file", with(func(b []byte) { le.PutUint32(b[12:], 2048) }), "corrupt NDB: 2048 slot pages beyond the 4352-byte file"},
		// go-rpmdb prints the magic to stdout.
		{"free slot magic", with(func(b []byte) { copy(b[4*ndbSlotSize:], "XXXX") }), `corrupt NDB: slot 4: magic "XXXX"`},
		// go-rpmdb reads a slot as the blob header and leaks its reader.
		{"blob in the slot pages", with(func(b []byte) { le.PutUint32(b[ndbHeaderSize+8:], 2) }), "corrupt NDB: slot 2: blob at offset 32, outside 4096 to 4352"},
		// go-rpmdb allocates 3.75 GiB and leaks its reader.
		{"blob length beyond the file", with(func(b []byte) { le.PutUint32(b[ndbPageSize+12:], 0xf0000000) }),
			"corrupt NDB: slot 2: blob of 4026531840 bytes at offset 4096 beyond the 4352-byte file"},
		// go-rpmdb pads the blob with zeros.
		{"file cut short", good[:len(good)-40], "corrupt NDB: slot 3: blob of 85 bytes at offset 4224 beyond the 4312-byte file"},
		// go-rpmdb leaks its reader.
		{"blob magic", with(func(b []byte) { copy(b[ndbPageSize:], "XXXX") }), `corrupt NDB: slot 2: blob magic "XXXX"`},
		{"blob package", with(func(b []byte) { b[ndbPageSize+4] = 9 }), "corrupt NDB: slot 2: blob of package 9, want 1"},
		// go-rpmdb lists the package again for every slot naming it.
		{"slots sharing a blob", with(func(b []byte) { copy(b[ndbHeaderSize+ndbSlotSize:], b[ndbHeaderSize:ndbHeaderSize+ndbSlotSize]) }),
			"share blob bytes"},
		// go-rpmdb has no bound on packages.
		{"too many packages", ndbFile(MaxPackages/256+1, many...), "corrupt NDB: more than 100000 packages"},
		// go-rpmdb allocates 4 GiB.
		{"header entry count", second(be32(1<<28, 0)), "corrupt NDB: slot 2: rpm header of 268435456 entries and 0 data bytes in 8 bytes"},
		// go-rpmdb scans the data 2^32 times.
		{"unterminated strings", second(noNUL), "corrupt NDB: slot 2: rpm header entry 0: 4294967295 strings unterminated"},
		// go-rpmdb reads them, scanning the data once for each.
		{"overlapping entries", second(overlap), "corrupt NDB: slot 2: rpm header entry 1 at data offset 0, outside 2 to 13"},
		// go-rpmdb rejects these itself, and leaks its reader.
		{"entry beyond the data", second(rpmHeader(rpmEntry{rpmdb.RPMTAG_NAME, rpmdb.RPM_INT32_TYPE, 1 << 30, make([]byte, 4)})),
			"corrupt NDB: slot 2: rpm header entry 0: data offset 0 to 4294967296 beyond 4"},
		{"entry type", second(rpmHeader(rpmEntry{rpmdb.RPMTAG_NAME, 10, 1, []byte("a")})), "corrupt NDB: slot 2: rpm header entry 0: type 10"},
		{"name of type int32", second(rpmHeader(rpmEntry{rpmdb.RPMTAG_NAME, rpmdb.RPM_INT32_TYPE, 1, make([]byte, 4)})),
			"corrupt NDB: slot 2: rpm header entry 0: tag 1000 of type 4"},
	}
}

// be32 is vs in big-endian order.
func be32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// settled reports whether the goroutine count falls back to before within
// a second.
func settled(before int) bool {
	for range 1000 {
		if runtime.NumGoroutine() <= before {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// parseAlloc parses b as the file name, reporting the bytes it allocated.
func parseAlloc(name string, b []byte) (pkgs []string, alloc uint64, err error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	p, err := Cataloger{}.Parse(name, bytes.NewReader(b))
	runtime.ReadMemStats(&ms)
	for _, p := range p {
		pkgs = append(pkgs, row(p))
	}
	return pkgs, ms.TotalAlloc - before, err
}

// parseHostile parses b as the file name and returns Parse's error, failing
// t if Parse lists packages, takes more than 10 seconds, allocates more
// than 64 MiB or leaves a goroutine behind.
func parseHostile(t *testing.T, name string, b []byte) error {
	t.Helper()
	before := runtime.NumGoroutine()
	type result struct {
		pkgs  []string
		err   error
		alloc uint64
	}
	done := make(chan result)
	go func() {
		pkgs, alloc, err := parseAlloc(name, b)
		done <- result{pkgs, err, alloc}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Parse hangs")
	}
	if r.pkgs != nil {
		t.Errorf("listed %v", r.pkgs)
	}
	if r.alloc > 64<<20 {
		t.Errorf("%d MiB allocated", r.alloc>>20)
	}
	if !settled(before) {
		t.Errorf("goroutines %d -> %d", before, runtime.NumGoroutine())
	}
	return r.err
}

func TestHostileNDB(t *testing.T) {
	for _, tc := range hostileNDBs() {
		t.Run(tc.name, func(t *testing.T) {
			if err := parseHostile(t, "Packages.db", tc.b); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v; want an error containing %q", err, tc.err)
			}
		})
	}
}

// TestNDBAsGoRpmdb checks that valid NDB files list as go-rpmdb lists them
// by itself, in slot order.
func TestNDBAsGoRpmdb(t *testing.T) {
	swapped := ndbFile(2, pkgHeader("a"), pkgHeader("b"), pkgHeader("c"))
	s := swapped[ndbHeaderSize:]
	for i := range ndbSlotSize { // slots 2 and 4; slot 3 freed
		s[i], s[2*ndbSlotSize+i] = s[2*ndbSlotSize+i], s[i]
	}
	clear(s[ndbSlotSize+4 : 2*ndbSlotSize])
	for _, tc := range []struct {
		name string
		b    []byte
		want []string
	}{
		{"two", ndbFile(1, pkgHeader("a"), pkgHeader("b")), []string{"a 1-2 x86_64 (none)", "b 1-2 x86_64 (none)"}},
		{"swapped, with a free slot", swapped, []string{"c 1-2 x86_64 (none)", "a 1-2 x86_64 (none)"}},
		{"empty", ndbFile(1), nil},
		{"fixture headers", ndbFile(1, fixtureHeaders(t, 3)...), []string{
			"system-user-root 20190513-3.3.1 noarch system-user-root-20190513-3.3.1.src.rpm",
			"skelcd-EULA-bci 2021.05.14-150300.4.8.1 x86_64 skelcd-bci-2021.05.14-150300.4.8.1.src.rpm",
			"libbz2-1 1.0.6-5.11.1 x86_64 bzip2-1.0.6-5.11.1.src.rpm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "Packages.db")
			if err := os.WriteFile(name, tc.b, 0o600); err != nil {
				t.Fatal(err)
			}
			infos, err := read(name)
			if err != nil {
				t.Fatal(err)
			}
			var direct []string
			for _, in := range infos {
				direct = append(direct, in.Name)
			}
			pkgs, err := Cataloger{}.Parse("Packages.db", bytes.NewReader(tc.b))
			cattest.Expect(t, pkgs, err, "Packages.db", row, tc.want, "")
			var names []string
			for _, p := range pkgs {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, direct) {
				t.Errorf("listed %v, go-rpmdb %v", names, direct)
			}
		})
	}
}

// fixtureHeaders returns the n smallest rpm headers of the shared NDB
// fixture (the whole 1.4 MB file is too slow a fuzz seed).
func fixtureHeaders(t testing.TB, n int) [][]byte {
	t.Helper()
	f, err := os.Open(testdata.Path(t, "pkgdb", "rpm", "ndb", "sle15-bci", "Packages.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := checkNDB(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(slots, func(a, b ndbSlot) int { return cmp.Compare(a.len, b.len) })
	var headers [][]byte
	for _, s := range slots[:n] {
		h := make([]byte, s.len)
		if _, err := f.ReadAt(h, s.header()); err != nil {
			t.Fatal(err)
		}
		headers = append(headers, h)
	}
	return headers
}

// FuzzNDB feeds mutated NDB files to checkNDB, whose own panics surface
// here, and to Parse: it must return packages or an error (checkNDB's, if
// any), never hang, leave a goroutine or allocate more than 64 MiB and 64
// bytes a byte of the file.
func FuzzNDB(f *testing.F) {
	for _, h := range hostileNDBs() {
		if h.name != "too many packages" {
			f.Add(h.b)
		}
	}
	f.Add(ndbFile(1, pkgHeader("a"), pkgHeader("b")))
	f.Add(ndbFile(1, fixtureHeaders(f, 2)...))
	name := filepath.Join(f.TempDir(), "Packages.db")
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append([]byte(ndbMagic), b[min(len(b), len(ndbMagic)):]...)
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		_, checkErr := checkNDB(file, int64(len(b)))
		file.Close()
		before := runtime.NumGoroutine()
		pkgs, alloc, err := parseAlloc("Packages.db", b)
		switch {
		case err != nil && pkgs != nil:
			t.Fatal("packages with an error")
		case checkErr != nil && (err == nil || !strings.HasSuffix(err.Error(), checkErr.Error())):
			t.Fatalf("checkNDB: %v; Parse: %v", checkErr, err)
		case alloc > 64<<20+64*uint64(len(b)):
			t.Fatalf("%d bytes allocated for %d", alloc, len(b))
		case !settled(before):
			t.Fatalf("goroutines %d -> %d", before, runtime.NumGoroutine())
		}
	})
}
