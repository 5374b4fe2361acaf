package rpm

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// The NDB layout (rpm's lib/backend/ndb/rpmpkg.c), little-endian: a 32-byte
// header (magic, version, generation, slot page count); the slot pages, 4096
// bytes of 16-byte slots, the header taking the first two (magic, package
// index or 0 when free, blob offset and block count in 16-byte blocks); the
// blobs, each a 16-byte blob header (magic, package index, checksum, length)
// before an rpm header of that length.
const (
	ndbHeaderSize = 32
	ndbPageSize   = 4096
	ndbSlotSize   = 16   // also the block size and the blob header size
	ndbMaxPages   = 2048 // go-rpmdb refuses more
	ndbSlotMagic  = "Slot"
	ndbBlobMagic  = "BlbS"
)

// errNDB reports an NDB structure go-rpmdb would mishandle.
var errNDB = errors.New("corrupt NDB")

// ndbSlot is a used slot: its number, package index, blob's first block and
// the length of the rpm header in the blob.
type ndbSlot struct{ n, pkg, blk, len uint32 }

// header and end are the offsets of the slot's rpm header and of its end.
func (s ndbSlot) header() int64 { return int64(s.blk)*ndbSlotSize + ndbSlotSize }
func (s ndbSlot) end() int64    { return s.header() + int64(s.len) }

// checkNDB walks an NDB file the way go-rpmdb's reader does and returns its
// used slots in reading order. go-rpmdb allocates slot pages and blobs of
// the sizes the file states (16 MiB, 4 GiB) before reading them, pads a
// blob cut short by the end of the file with zeros, prints a bad slot magic
// to stdout, reads a file of another version as Berkeley DB, and strands
// its reader goroutine on a blob of the wrong magic or package. checkNDB
// requires version 0; 1 to 2048 slot pages inside the file; the magic on
// every slot; at most MaxPackages used slots, each naming a blob past the
// slot pages with the right magic and package, inside the file and
// overlapping no other; and rpm headers that checkHeader accepts.
func checkNDB(f *os.File, size int64) ([]ndbSlot, error) {
	le := binary.LittleEndian
	if size < ndbHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, less than a header", errNDB, size)
	}
	hdr := make([]byte, ndbHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errNDB, err)
	}
	version, pages := le.Uint32(hdr[4:]), le.Uint32(hdr[12:])
	slotsEnd := int64(pages) * ndbPageSize
	switch {
	case version != 0:
		return nil, fmt.Errorf("%w: version %d", errNDB, version)
	case pages == 0 || pages > ndbMaxPages:
		return nil, fmt.Errorf("%w: %d slot pages, want 1 to %d", errNDB, pages, ndbMaxPages)
	case slotsEnd > size:
		return nil, fmt.Errorf("%w: %d slot pages beyond the %d-byte file", errNDB, pages, size)
	}
	var slots []ndbSlot
	page, head := make([]byte, ndbPageSize), make([]byte, ndbSlotSize)
	for p := range int64(pages) {
		if _, err := f.ReadAt(page, p*ndbPageSize); err != nil {
			return nil, fmt.Errorf("%w: slot page %d: %v", errNDB, p, err)
		}
		for i := 0; i < ndbPageSize; i += ndbSlotSize {
			if p == 0 && i < ndbHeaderSize {
				continue
			}
			n, s := uint32((p*ndbPageSize+int64(i))/ndbSlotSize), page[i:i+ndbSlotSize]
			if string(s[:4]) != ndbSlotMagic {
				return nil, fmt.Errorf("%w: slot %d: magic %q", errNDB, n, s[:4])
			}
			slot := ndbSlot{n: n, pkg: le.Uint32(s[4:]), blk: le.Uint32(s[8:])}
			if slot.pkg == 0 {
				continue
			}
			if len(slots) == MaxPackages {
				return nil, fmt.Errorf("%w: more than %d packages", errNDB, MaxPackages)
			}
			at := int64(slot.blk) * ndbSlotSize
			if at < slotsEnd || at+ndbSlotSize > size {
				return nil, fmt.Errorf("%w: slot %d: blob at offset %d, outside %d to %d", errNDB, n, at, slotsEnd, size)
			}
			if _, err := f.ReadAt(head, at); err != nil {
				return nil, fmt.Errorf("%w: slot %d: %v", errNDB, n, err)
			}
			if string(head[:4]) != ndbBlobMagic {
				return nil, fmt.Errorf("%w: slot %d: blob magic %q", errNDB, n, head[:4])
			}
			if pkg := le.Uint32(head[4:]); pkg != slot.pkg {
				return nil, fmt.Errorf("%w: slot %d: blob of package %d, want %d", errNDB, n, pkg, slot.pkg)
			}
			slot.len = le.Uint32(head[12:])
			if slot.end() > size {
				return nil, fmt.Errorf("%w: slot %d: blob of %d bytes at offset %d beyond the %d-byte file", errNDB, n, slot.len, at, size)
			}
			slots = append(slots, slot)
		}
	}
	// Blobs apart bound what go-rpmdb reads to the file size.
	sorted := slices.SortedFunc(slices.Values(slots), func(a, b ndbSlot) int { return cmp.Compare(a.blk, b.blk) })
	var longest uint32
	for k, s := range sorted {
		if k > 0 && sorted[k-1].end() > int64(s.blk)*ndbSlotSize {
			return nil, fmt.Errorf("%w: slots %d and %d share blob bytes", errNDB, sorted[k-1].n, s.n)
		}
		longest = max(longest, s.len)
	}
	buf := make([]byte, longest)
	for _, s := range slots {
		h := buf[:s.len]
		if _, err := f.ReadAt(h, s.header()); err != nil {
			return nil, fmt.Errorf("%w: slot %d: %v", errNDB, s.n, err)
		}
		if err := checkHeader(h); err != nil {
			return nil, fmt.Errorf("%w: slot %d: %v", errNDB, s.n, err)
		}
	}
	return slots, nil
}

// listNDB lists the packages of the NDB file f, a temporary copy that it
// rewrites, once checkNDB passes it. go-rpmdb's reader goroutine sends each
// header on an unbuffered channel that ListPackages stops receiving from at
// the first header it rejects, which strands the reader; checkHeader
// refuses all such headers, and, in case go-rpmdb changes, listNDB runs
// go-rpmdb once a package, the first slot page rewritten to name that
// package alone, and the reader ends after its one header whatever becomes
// of it. That costs about 0.2 ms a package.
func listNDB(f *os.File, size int64) ([]*rpmdb.PackageInfo, error) {
	slots, err := checkNDB(f, size)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	page := make([]byte, ndbPageSize)
	copy(page, ndbMagic)
	le.PutUint32(page[12:], 1) // one slot page
	for i := ndbHeaderSize; i < ndbPageSize; i += ndbSlotSize {
		copy(page[i:], ndbSlotMagic)
	}
	slot := page[ndbHeaderSize:]
	var infos []*rpmdb.PackageInfo
	for _, s := range slots {
		le.PutUint32(slot[4:], s.pkg)
		le.PutUint32(slot[8:], s.blk)
		if _, err := f.WriteAt(page, 0); err != nil {
			return nil, err
		}
		in, err := read(f.Name())
		if err != nil {
			return nil, err
		}
		infos = append(infos, in...)
	}
	return infos, nil
}
