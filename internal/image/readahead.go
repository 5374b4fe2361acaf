package image

import (
	"io"
	"sync"
)

// Read-ahead of decompressed layer data: inflating a layer and reading it
// (diff-ID hash, tar parsing, cataloging) then use two cores instead of
// one, at the cost of readAheadBufs buffers per open layer.
const (
	readAheadBufs = 4
	readAheadSize = 256 << 10
)

// readAhead reads src in its own goroutine, up to readAheadBufs buffers
// ahead of its reader.
type readAhead struct {
	full   chan chunk
	free   chan []byte
	done   chan struct{}
	exited chan struct{}
	cur    chunk
	off    int
	held   bool // cur.buf belongs to the reader, to be given back
	closer func() error
	once   sync.Once
	cerr   error
}

type chunk struct {
	buf []byte
	err error
}

// newReadAhead starts reading src. stop unblocks a read in progress (it
// closes the stream src reads from); cleanup runs once the reading
// goroutine has exited (it may release src itself).
func newReadAhead(src io.Reader, stop func() error, cleanup func()) *readAhead {
	ra := &readAhead{
		full:   make(chan chunk, readAheadBufs),
		free:   make(chan []byte, readAheadBufs+1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for range readAheadBufs + 1 {
		ra.free <- make([]byte, readAheadSize)
	}
	ra.closer = func() error {
		close(ra.done)
		err := stop()
		<-ra.exited
		cleanup()
		return err
	}
	go ra.fill(src)
	return ra
}

func (ra *readAhead) fill(src io.Reader) {
	defer close(ra.exited)
	for {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.done:
			return
		}
		// Fill the buffer, keeping src's own error: a truncated stream's
		// io.ErrUnexpectedEOF must reach the reader as such.
		n := 0
		var err error
		for n < len(b) && err == nil {
			var k int
			k, err = src.Read(b[n:])
			n += k
		}
		select {
		case ra.full <- chunk{b[:n], err}:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.off == len(ra.cur.buf) {
		if ra.cur.err != nil {
			return 0, ra.cur.err
		}
		if ra.held {
			ra.free <- ra.cur.buf[:cap(ra.cur.buf)]
		}
		ra.cur, ra.off, ra.held = <-ra.full, 0, true
	}
	n := copy(p, ra.cur.buf[ra.off:])
	ra.off += n
	return n, nil
}

// Close stops the reading goroutine and releases the stream.
func (ra *readAhead) Close() error {
	ra.once.Do(func() { ra.cerr = ra.closer() })
	return ra.cerr
}
