package detect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Bounds on what Detect reads from an image: release files are a few hundred
// bytes, apt sources a few kilobytes (more with an embedded Signed-By key).
const (
	maxReleaseFile = 64 << 10
	maxSourcesFile = 256 << 10
	maxSourcesDir  = 128 // files in etc/apt/sources.list.d
	maxLine        = 8 << 10
)

// readFile reads the regular file name of fsys, at most limit bytes. A file
// that does not exist gives (nil, false, nil); anything else that keeps it
// from being read whole (a directory, a file over limit, an I/O error) is an
// error naming it.
func readFile(fsys fs.FS, name string, limit int64) ([]byte, bool, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s: not a regular file (%s)", name, st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, false, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, false, fmt.Errorf("%s: more than the %d bytes allowed", name, limit)
	}
	return data, true, nil
}

// lineError words a bufio.Scanner error.
func lineError(err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("a line is longer than %d bytes", maxLine)
	}
	return err
}
