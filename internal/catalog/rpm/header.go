package rpm

import (
	"bytes"
	"encoding/binary"
	"fmt"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// Bounds go-rpmdb (its header.c port, entry.go) puts on an rpm header.
const (
	headerMaxBytes = 256 << 20 // blob size go-rpmdb refuses
	regionSize     = 16        // a region tag's count and trailer size
	minTag         = rpmdb.HEADER_I18NTABLE
)

// typeSize and typeAlign are go-rpmdb's sizes (0 for strings, whose
// length is measured) and alignments of the types RPM_NULL_TYPE to
// RPM_I18NSTRING_TYPE.
var (
	typeSize  = [...]int64{0, 1, 1, 2, 4, 8, 0, 1, 0, 0}
	typeAlign = [...]int64{1, 1, 1, 2, 4, 8, 1, 1, 1, 1}
)

// tagTypes are the types, as bit masks, that go-rpmdb's getNEVRA requires
// of the tags it reads.
var tagTypes = map[int32]uint32{
	rpmdb.RPMTAG_DIRINDEXES:      1 << rpmdb.RPM_INT32_TYPE,
	rpmdb.RPMTAG_DIRNAMES:        1 << rpmdb.RPM_STRING_ARRAY_TYPE,
	rpmdb.RPMTAG_BASENAMES:       1 << rpmdb.RPM_STRING_ARRAY_TYPE,
	rpmdb.RPMTAG_MODULARITYLABEL: 1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_NAME:            1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_EPOCH:           1 << rpmdb.RPM_INT32_TYPE,
	rpmdb.RPMTAG_VERSION:         1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_RELEASE:         1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_ARCH:            1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_SOURCERPM:       1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_PROVIDENAME:     1 << rpmdb.RPM_STRING_ARRAY_TYPE,
	rpmdb.RPMTAG_REQUIRENAME:     1 << rpmdb.RPM_STRING_ARRAY_TYPE,
	rpmdb.RPMTAG_LICENSE:         1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_VENDOR:          1 << rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_SIZE:            1 << rpmdb.RPM_INT32_TYPE,
	rpmdb.RPMTAG_FILEDIGESTALGO:  1 << rpmdb.RPM_INT32_TYPE,
	rpmdb.RPMTAG_FILESIZES:       1 << rpmdb.RPM_INT32_TYPE,
	rpmdb.RPMTAG_FILEDIGESTS:     1 << rpmdb.RPM_STRING_ARRAY_TYPE,
	rpmdb.RPMTAG_FILEMODES:       1 << rpmdb.RPM_INT16_TYPE,
	rpmdb.RPMTAG_FILEFLAGS:       1 << rpmdb.RPM_INT32_TYPE,
	rpmdb.RPMTAG_FILEUSERNAME:    1 << rpmdb.RPM_STRING_ARRAY_TYPE,
	rpmdb.RPMTAG_FILEGROUPNAME:   1 << rpmdb.RPM_STRING_ARRAY_TYPE,
	rpmdb.RPMTAG_SUMMARY:         1<<rpmdb.RPM_I18NSTRING_TYPE | 1<<rpmdb.RPM_STRING_TYPE,
	rpmdb.RPMTAG_INSTALLTIME:     1 << rpmdb.RPM_INT32_TYPE,
	rpmdb.RPMTAG_RSAHEADER:       1 << rpmdb.RPM_BIN_TYPE,
	rpmdb.RPMTAG_PGP:             1 << rpmdb.RPM_BIN_TYPE,
}

// checkHeader vets an rpm header blob for go-rpmdb, so that go-rpmdb
// accepts every header checkHeader passes: ListPackages gives up at the
// first header it rejects and strands its reader goroutine. go-rpmdb's
// headerImport, moreover, allocates 16 bytes for each entry the blob
// claims (up to 32 GiB, and the runtime dies when that fails) and, its
// overlap check shadowed away, scans data as often as entries claim it:
// 2^32 times for strings that lack their NUL. checkHeader requires
//   - counts that fill the blob exactly (8 bytes, 16 an entry, the data),
//     less than 256 MiB in all (go-rpmdb's hdrblobInit);
//   - a first entry of tag 61 to 63 to be a region (type bin, count 16)
//     whose 16-byte trailer lies inside the data, naming, as minus 16 an
//     entry, at most all the entries, and one at least if the region is
//     not at offset 0, where go-rpmdb panics (hdrblobVerifyRegion);
//   - every other entry to have a tag of 100 or more and a known type,
//     aligned for it, its data (strings NUL-terminated, one for the
//     string type) not empty and inside the data, each after the one
//     before (hdrblobVerifyInfo, which, unlike rpm, forgets the order);
//   - the entries, packed as go-rpmdb's regionSwab packs them, to fill
//     the data exactly (hdrblobImport);
//   - and the tags getNEVRA reads to have the types it wants, and PGP and
//     RSA signatures the bytes it decodes (parsePGP).
func checkHeader(b []byte) error {
	be := binary.BigEndian
	if len(b) < 8 {
		return fmt.Errorf("rpm header of %d bytes", len(b))
	}
	il, dl := int64(int32(be.Uint32(b))), int64(int32(be.Uint32(b[4:])))
	if il < 1 || dl < 0 || 8+16*il+dl != int64(len(b)) {
		return fmt.Errorf("rpm header of %d entries and %d data bytes in %d bytes", il, dl, len(b))
	}
	if len(b) >= headerMaxBytes {
		return fmt.Errorf("rpm header of %d bytes, not under %d", len(b), headerMaxBytes)
	}
	index, data := b[8:8+16*il], b[8+16*il:]
	entry := func(i int64) (tag int32, typ uint32, off int64, count int64) {
		e := index[16*i:]
		return int32(be.Uint32(e)), be.Uint32(e[4:]), int64(int32(be.Uint32(e[8:]))), int64(be.Uint32(e[12:]))
	}
	// Entries [first, il) are checked; regionSwab packs [first, ril) and,
	// when dribble, [ril, il).
	first, ril, dribble := int64(0), il, false
	if tag, typ, off, count := entry(0); tag >= rpmdb.RPMTAG_HEADERIMAGE && tag <= rpmdb.RPMTAG_HEADERIMMUTABLE {
		if typ != rpmdb.RPM_BIN_TYPE || count != regionSize {
			return fmt.Errorf("rpm header region tag %d of type %d and count %d, want %d and %d", tag, typ, count, rpmdb.RPM_BIN_TYPE, regionSize)
		}
		if off < -regionSize || off > dl-regionSize {
			return fmt.Errorf("rpm header region trailer at data offset %d, outside %d to %d", off, -regionSize, dl-regionSize)
		}
		trailer := -int64(int32(be.Uint32(b[8+16*il+off+8:])))
		n := trailer / 16
		if trailer%16 != 0 || n < 0 || n > il || off != 0 && n < 1 {
			return fmt.Errorf("rpm header region trailer offset %d, want minus 16 times 1 to %d", -trailer, il)
		}
		first, dribble = 1, n < il-1
		if off != 0 {
			ril = n
		}
	}
	sizes := make([]int32, il)
	end := int64(0)
	for i := first; i < il; i++ {
		tag, typ, off, count := entry(i)
		if tag < minTag {
			return fmt.Errorf("rpm header entry %d: tag %d, under %d", i, tag, minTag)
		}
		if off < end || off > dl {
			return fmt.Errorf("rpm header entry %d at data offset %d, outside %d to %d", i, off, end, dl)
		}
		if typ > rpmdb.RPM_MAX_TYPE {
			return fmt.Errorf("rpm header entry %d: type %d", i, typ)
		}
		if off%typeAlign[typ] != 0 {
			return fmt.Errorf("rpm header entry %d: type %d at data offset %d, not %d-aligned", i, typ, off, typeAlign[typ])
		}
		if typ == rpmdb.RPM_STRING_TYPE && count != 1 {
			return fmt.Errorf("rpm header entry %d: %d strings of the string type", i, count)
		}
		end = off + typeSize[typ]*count
		if stringType(typ) {
			for range count {
				j := bytes.IndexByte(data[end:], 0)
				if j < 0 {
					return fmt.Errorf("rpm header entry %d: %d strings unterminated", i, count)
				}
				end += int64(j) + 1
			}
		}
		if end > dl {
			return fmt.Errorf("rpm header entry %d: data offset %d to %d beyond %d", i, off, end, dl)
		}
		if end == off {
			return fmt.Errorf("rpm header entry %d: no data", i)
		}
		sizes[i] = int32(end - off)
		if want, ok := tagTypes[tag]; ok && want&(1<<typ) == 0 {
			return fmt.Errorf("rpm header entry %d: tag %d of type %d", i, tag, typ)
		}
		if tag == rpmdb.RPMTAG_RSAHEADER || tag == rpmdb.RPMTAG_PGP {
			if sig, n := data[off:end], pgpSize(data[off:end]); len(sig) < n {
				return fmt.Errorf("rpm header entry %d: signature of %d bytes, want %d", i, len(sig), n)
			}
		}
	}
	// regionSwab: each entry takes its type's size, or, a string type not
	// last, the bytes up to the next; the integers are aligned.
	swab := func(from, to, n int64) int64 {
		for i := from; i < to; i++ {
			_, typ, off, _ := entry(i)
			size := int64(sizes[i])
			if i < to-1 && stringType(typ) {
				_, _, next, _ := entry(i + 1)
				size = next - off
			}
			if a := typeSize[typ]; a > 1 && n%a != 0 {
				n += a - n%a
			}
			n += size
		}
		return n
	}
	n := swab(first, ril, 0)
	if first == 1 {
		if dribble {
			n = swab(ril, il, n)
		}
		n += regionSize
	}
	if n != dl {
		return fmt.Errorf("rpm header entries packing %d data bytes, not %d", n, dl)
	}
	return nil
}

// stringType reports whether type t holds NUL-terminated strings.
func stringType(t uint32) bool {
	return t == rpmdb.RPM_STRING_TYPE || t == rpmdb.RPM_STRING_ARRAY_TYPE || t == rpmdb.RPM_I18NSTRING_TYPE
}

// pgpSize is the number of bytes of signature sig that go-rpmdb's parsePGP
// decodes: tag, signature type and version, then a version 3 text
// signature (24 bytes), a version 4 signature (35) or an older one (17).
func pgpSize(sig []byte) int {
	if len(sig) < 3 || sig[1] != 1 && sig[1] != 2 {
		return 3
	}
	switch {
	case sig[1] == 1 && sig[2] == 0x1c:
		return 3 + 24
	case sig[2] > 0x15:
		return 3 + 35
	}
	return 3 + 17
}
