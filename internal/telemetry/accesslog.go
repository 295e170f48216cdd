package telemetry

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// flushInterval bounds how long a written line may wait in the buffer.
const flushInterval = 100 * time.Millisecond

// AccessLog writes one JSON line per finished request. Lines are encoded
// by hand into pooled buffers (no reflection, no per-line allocation) and
// written to a buffered writer that is flushed every 100 ms and on Close.
//
// A nil *AccessLog is off: Log does nothing. Log is safe for concurrent use;
// lines are never interleaved.
type AccessLog struct {
	w    io.Writer
	mu   sync.Mutex
	bw   *bufio.Writer
	err  error // first write error, returned by Close
	done bool

	stop    chan struct{}
	stopped chan struct{}
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// NewAccessLog returns an access log writing to w, and starts its flusher.
// Close stops it; w itself is not closed (the caller owns it).
func NewAccessLog(w io.Writer) *AccessLog {
	l := &AccessLog{
		w:       w,
		bw:      bufio.NewWriterSize(w, 64<<10),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go l.flusher()
	return l
}

func (l *AccessLog) flusher() {
	defer close(l.stopped)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.flushLocked()
			l.mu.Unlock()
		}
	}
}

// flushLocked flushes the buffer. A failed write is remembered and the
// buffer reset, so that a transient error loses lines but not the log.
func (l *AccessLog) flushLocked() {
	if l.bw.Buffered() == 0 {
		return
	}
	if err := l.bw.Flush(); err != nil {
		if l.err == nil {
			l.err = err
		}
		l.bw.Reset(l.w)
	}
}

// Log writes e as one line. A zero e.Time is logged as the current time.
// After Close, Log does nothing.
func (l *AccessLog) Log(e *Entry) {
	if l == nil || e == nil {
		return
	}
	bp := linePool.Get().(*[]byte)
	b := appendEntry((*bp)[:0], e)
	l.mu.Lock()
	if !l.done {
		if _, err := l.bw.Write(b); err != nil {
			if l.err == nil {
				l.err = err
			}
			l.bw.Reset(l.w)
		}
	}
	l.mu.Unlock()
	if cap(b) <= 64<<10 { // do not keep a buffer grown by one huge line
		*bp = b
		linePool.Put(bp)
	}
}

// Close flushes what is buffered and stops the flusher. It returns the first
// write error met since the log was opened. Closing twice is harmless.
func (l *AccessLog) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.done {
		err := l.err
		l.mu.Unlock()
		return err
	}
	l.done = true
	close(l.stop)
	l.mu.Unlock()
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	return l.err
}

// Entry is one access log record. It carries no headers, so that secrets
// (authorization, cookies, API keys) can never reach the log.
type Entry struct {
	Time             time.Time
	Method           string
	Authority        string
	Path             string
	Protocol         string // "HTTP/1.1", "HTTP/2.0"
	Status           int
	Duration         time.Duration
	UpstreamDuration time.Duration
	BytesIn          int64  // request body bytes received
	BytesOut         int64  // response body bytes sent
	Upstream         string // endpoint address
	// Flags are response flags, Envoy style, joined by ",": "UF" upstream
	// connect failure, "UH" no healthy upstream, "UT" upstream timeout,
	// "NR" no route, "DC" downstream closed; "" for none.
	Flags     string
	RequestID string
	Route     string
	Gateway   string
}

// Response flags of Entry.Flags.
const (
	FlagUpstreamConnectFailure = "UF"
	FlagNoHealthyUpstream      = "UH"
	FlagUpstreamTimeout        = "UT"
	FlagNoRoute                = "NR"
	FlagDownstreamClosed       = "DC"
)

// appendEntry appends e as one JSON object and a newline.
func appendEntry(b []byte, e *Entry) []byte {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","method":`...)
	b = appendString(b, e.Method)
	b = append(b, `,"authority":`...)
	b = appendString(b, e.Authority)
	b = append(b, `,"path":`...)
	b = appendString(b, e.Path)
	b = append(b, `,"protocol":`...)
	b = appendString(b, e.Protocol)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, e.Duration)
	b = append(b, `,"upstream_duration_ms":`...)
	b = appendMillis(b, e.UpstreamDuration)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, `,"upstream":`...)
	b = appendString(b, e.Upstream)
	b = append(b, `,"flags":`...)
	b = appendString(b, e.Flags)
	b = append(b, `,"request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"route":`...)
	b = appendString(b, e.Route)
	b = append(b, `,"gateway":`...)
	b = appendString(b, e.Gateway)
	return append(b, "}\n"...)
}

// appendMillis appends d in milliseconds with microsecond precision.
func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Quotes, backslashes and control
// characters are escaped; each byte of invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the line is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
