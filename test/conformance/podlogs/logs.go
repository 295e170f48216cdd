package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// The fake kubelet's log files are plain stdout/stderr with no timestamp per
// line, which sinceTime and timestamps need. The index stamps them: it polls
// every file's size, and each time a file has grown it records a chunk (the
// offset where the new bytes begin, and the file's modification time). A
// line's time is that of the chunk holding its first byte: no earlier than
// the write, and at most one poll later.

// chunk is a run of bytes first seen at the same time.
type chunk struct {
	off int64
	at  time.Time
}

// logFile is what the index knows about one log file.
type logFile struct {
	mu     sync.Mutex
	size   int64   // bytes stamped so far
	chunks []chunk // ascending in off and at
}

// index stamps the log files under dir (<dir>/<pod uid>/<container>.log).
type index struct {
	dir string

	mu    sync.Mutex
	files map[string]*logFile // by path
}

func newIndex(dir string) *index {
	return &index{dir: dir, files: make(map[string]*logFile)}
}

// scan stamps every log file's new bytes and forgets files that are gone.
func (x *index) scan() {
	paths, _ := filepath.Glob(filepath.Join(x.dir, "*", "*.log"))
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		seen[p] = true
		_, _ = x.stamp(p)
	}
	x.mu.Lock()
	for p := range x.files {
		if !seen[p] {
			delete(x.files, p)
		}
	}
	x.mu.Unlock()
}

// run scans every interval until ctx ends.
func (x *index) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		x.scan()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stamp records path's bytes beyond those already stamped and returns the
// file's entry and its stamped size.
func (x *index) stamp(path string) (*logFile, int64) {
	fi, err := os.Stat(path)
	x.mu.Lock()
	lf := x.files[path]
	if err != nil {
		x.mu.Unlock()
		return nil, 0
	}
	if lf == nil {
		lf = &logFile{}
		x.files[path] = lf
	}
	x.mu.Unlock()

	lf.mu.Lock()
	defer lf.mu.Unlock()
	size := fi.Size()
	if size < lf.size { // truncated or recreated: start over
		lf.size, lf.chunks = 0, lf.chunks[:0]
	}
	if size > lf.size {
		at := fi.ModTime()
		if n := len(lf.chunks); n > 0 && at.Before(lf.chunks[n-1].at) {
			at = lf.chunks[n-1].at // keep chunk times ascending
		}
		lf.chunks = append(lf.chunks, chunk{off: lf.size, at: at})
		lf.size = size
	}
	return lf, lf.size
}

// timeAt returns the time of the byte at off.
func (lf *logFile) timeAt(off int64) time.Time {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	i := sort.Search(len(lf.chunks), func(i int) bool { return lf.chunks[i].off > off })
	if i == 0 {
		return time.Time{}
	}
	return lf.chunks[i-1].at
}

// sinceOffset returns the offset of the first byte stamped at or after t,
// or end if there is none.
func (lf *logFile) sinceOffset(t time.Time, end int64) int64 {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	i := sort.Search(len(lf.chunks), func(i int) bool { return !lf.chunks[i].at.Before(t) })
	if i == len(lf.chunks) || lf.chunks[i].off > end {
		return end
	}
	return lf.chunks[i].off
}

// logOptions are the kubelet's containerLogs query parameters.
type logOptions struct {
	since      time.Time // zero: all lines
	tail       int64     // < 0: all lines
	limit      int64     // <= 0: no limit
	timestamps bool
	follow     bool
}

// lineStart returns the first line start at or after off in f: off itself
// if the byte before it ends a line.
func lineStart(f io.ReaderAt, off, end int64) (int64, error) {
	if off == 0 || off >= end {
		return off, nil
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], off-1); err != nil {
		return 0, err
	}
	if b[0] == '\n' {
		return off, nil
	}
	r := bufio.NewReader(io.NewSectionReader(f, off, end-off))
	skip, err := r.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		var more []byte
		more, err = r.ReadSlice('\n')
		skip = append(skip[:len(skip):len(skip)], more...)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return off + int64(len(skip)), nil
}

// tailStart returns the offset where the last n lines of f[:end] begin.
func tailStart(f io.ReaderAt, n, end int64) (int64, error) {
	if n == 0 {
		return end, nil
	}
	const block = 32 << 10
	buf := make([]byte, block)
	pos := end
	skipLast := true // the newline ending the last line does not start a line
	var count int64
	for pos > 0 {
		k := min(int64(block), pos)
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			if count++; count == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil
}

// streamer writes one file's lines to an HTTP response.
type streamer struct {
	w       io.Writer
	flusher http.Flusher
	lf      *logFile
	opts    logOptions
	written int64
}

var errLimit = errors.New("limitBytes reached")

// write copies the lines of f[from:to] and returns the offset it stopped at:
// to, or the start of an unfinished last line when partial is false.
func (s *streamer) write(f io.ReaderAt, from, to int64, partial bool) (int64, error) {
	r := bufio.NewReader(io.NewSectionReader(f, from, to-from))
	off := from
	for {
		line, err := r.ReadSlice('\n')
		full := err == nil
		for errors.Is(err, bufio.ErrBufferFull) {
			var more []byte
			more, err = r.ReadSlice('\n')
			line = append(line[:len(line):len(line)], more...)
			full = err == nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return off, err
		}
		if len(line) == 0 || (!full && !partial) {
			return off, nil
		}
		if s.opts.timestamps {
			if err := s.out([]byte(s.lf.timeAt(off).UTC().Format(time.RFC3339Nano) + " ")); err != nil {
				return off, err
			}
		}
		if err := s.out(line); err != nil {
			return off, err
		}
		off += int64(len(line))
		if !full {
			return off, nil
		}
	}
}

// out writes b, cut at limitBytes.
func (s *streamer) out(b []byte) error {
	if s.opts.limit > 0 {
		left := s.opts.limit - s.written
		if int64(len(b)) > left {
			b = b[:left]
		}
	}
	n, err := s.w.Write(b)
	s.written += int64(n)
	if err != nil {
		return err
	}
	if s.opts.limit > 0 && s.written >= s.opts.limit {
		return errLimit
	}
	return nil
}

// serveLog writes path's log to w as opts ask; with follow it keeps writing
// new lines, polling every interval, until ctx ends or the file is removed.
func (x *index) serveLog(ctx context.Context, w io.Writer, path string, opts logOptions, interval time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	lf, end := x.stamp(path)
	if lf == nil {
		return fmt.Errorf("podlogs: %s vanished", path)
	}
	start := int64(0)
	if !opts.since.IsZero() {
		if start, err = lineStart(f, lf.sinceOffset(opts.since, end), end); err != nil {
			return err
		}
	}
	if opts.tail >= 0 {
		t, err := tailStart(f, opts.tail, end)
		if err != nil {
			return err
		}
		start = max(start, t)
	}
	s := &streamer{w: w, lf: lf, opts: opts}
	s.flusher, _ = w.(http.Flusher)
	off, err := s.write(f, start, end, !opts.follow)
	if err != nil || !opts.follow {
		return ignoreLimit(err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s.flusher != nil {
			s.flusher.Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := os.Stat(path); err != nil { // pod deleted
			return nil
		}
		_, end := x.stamp(path)
		if end < off { // recreated
			return nil
		}
		if off, err = s.write(f, off, end, false); err != nil {
			return ignoreLimit(err)
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}
