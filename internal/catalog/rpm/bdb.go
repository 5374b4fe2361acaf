package rpm

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/knqyf263/go-rpmdb/pkg/bdb"
)

// errBDB reports a Berkeley DB structure go-rpmdb would mishandle.
var errBDB = errors.New("corrupt Berkeley DB")

// checkBDB walks the page structure of a Berkeley DB hash database the way
// go-rpmdb's reader does, before that reader runs: the reader panics in its
// own goroutine on out-of-range offsets and loops forever on an overflow
// chain through a non-overflow page, neither of which a caller can stop.
// It rejects such offsets, chains that leave the file or cycle, and more
// overflow-page visits than four per page of the file. A file whose
// metadata go-rpmdb itself refuses passes, for go-rpmdb to report. Its rpm
// headers are vetted next, by checkBDBHeaders.
func checkBDB(f *os.File, size int64) error {
	meta := make([]byte, 512)
	if _, err := f.ReadAt(meta, 0); err != nil {
		return nil
	}
	m, err := bdb.ParseHashMetadataPage(meta)
	if err != nil {
		return nil
	}
	ps := int64(m.PageSize)
	switch ps {
	case 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536:
	default:
		return nil
	}
	if int64(m.LastPageNo) >= size/ps {
		return fmt.Errorf("%w: last page %d beyond the file", errBDB, m.LastPageNo)
	}
	page := make([]byte, ps)
	next := make([]byte, ps)
	visits, maxVisits := 0, 4*(size/ps+1)
	for n := int64(0); n <= int64(m.LastPageNo); n++ {
		if _, err := f.ReadAt(page, n*ps); err != nil {
			return fmt.Errorf("%w: page %d: %v", errBDB, n, err)
		}
		h, err := bdb.ParseHashPage(page, m.Swapped)
		if err != nil {
			return fmt.Errorf("%w: page %d: %v", errBDB, n, err)
		}
		if h.PageType != bdb.HashUnsortedPageType && h.PageType != bdb.HashPageType {
			continue
		}
		if h.NumEntries%2 != 0 || bdb.PageHeaderSize+2*int64(h.NumEntries) > ps {
			return fmt.Errorf("%w: page %d: %d entries", errBDB, n, h.NumEntries)
		}
		idx, err := bdb.HashPageValueIndexes(page, h.NumEntries, m.Swapped)
		if err != nil {
			return fmt.Errorf("%w: page %d: %v", errBDB, n, err)
		}
		for _, i := range idx {
			if int64(i) >= ps {
				return fmt.Errorf("%w: page %d: entry offset %d", errBDB, n, i)
			}
			if page[i] != bdb.HashOffIndexPageType {
				continue
			}
			// go-rpmdb adds offsets in uint16: stay below 1<<16 too.
			if end := int64(i) + bdb.HashOffPageSize; end > ps || end >= 1<<16 {
				return fmt.Errorf("%w: page %d: entry offset %d", errBDB, n, i)
			}
			e, err := bdb.ParseHashOffPageEntry(page[i:int(i)+bdb.HashOffPageSize], m.Swapped)
			if err != nil {
				return fmt.Errorf("%w: page %d: %v", errBDB, n, err)
			}
			seen := map[uint32]bool{}
			for o := e.PageNo; o != 0; {
				if visits++; int64(visits) > maxVisits {
					return fmt.Errorf("%w: overflow pages visited too often", errBDB)
				}
				if seen[o] || int64(o) > int64(m.LastPageNo) || int64(o)*ps >= 1<<32 {
					return fmt.Errorf("%w: overflow chain from page %d reaches page %d", errBDB, n, o)
				}
				seen[o] = true
				if _, err := f.ReadAt(next, int64(o)*ps); err != nil && err != io.EOF {
					return fmt.Errorf("%w: page %d: %v", errBDB, o, err)
				}
				oh, err := bdb.ParseHashPage(next, m.Swapped)
				if err != nil {
					return fmt.Errorf("%w: page %d: %v", errBDB, o, err)
				}
				if oh.PageType != bdb.OverflowPageType {
					return fmt.Errorf("%w: overflow chain from page %d reaches page %d of type %d", errBDB, n, o, oh.PageType)
				}
				if end := bdb.PageHeaderSize + int64(oh.FreeAreaOffset); oh.NextPageNo == 0 && (end > ps || end >= 1<<16) {
					return fmt.Errorf("%w: page %d: free area offset %d", errBDB, o, oh.FreeAreaOffset)
				}
				o = oh.NextPageNo
			}
		}
	}
	return nil
}

// checkBDBHeaders runs checkHeader on every rpm header go-rpmdb's Berkeley
// DB reader yields, once checkBDB has passed the file (so that the reader
// ends), naming a failing header by its position, counted from 1. It
// drains the reader whatever it finds, so that the reader's goroutine
// ends, and bounds the package count.
func checkBDBHeaders(name string) error {
	db, err := bdb.Open(name)
	if err != nil {
		return fmt.Errorf("opening rpm database: %w", err)
	}
	defer db.Close()
	var first error
	n := 0
	for e := range db.Read() {
		n++
		if first != nil {
			continue
		}
		switch {
		case e.Err != nil:
			first = fmt.Errorf("reading rpm database: %w", e.Err)
		case n > MaxPackages:
			first = fmt.Errorf("more than %d packages", MaxPackages)
		default:
			if err := checkHeader(e.Value); err != nil {
				first = fmt.Errorf("corrupt rpm database: header %d: %w", n, err)
			}
		}
	}
	return first
}
