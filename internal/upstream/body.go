package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

// maxDrain is how much of an unread response body Close discards to save
// the connection, and only from what has already arrived.
const maxDrain = 64 << 10

var errBodyClosed = errors.New("read on closed response body")

// respBody is the Body of a response read by the HTTP/1.1 client. At EOF
// it returns the connection to the pool; Close before EOF closes the
// connection unless the rest of the body has already arrived.
type respBody struct {
	mu     sync.Mutex // held by Read; Close uses it to tell whether a Read is in flight
	c      *conn
	rc     io.ReadCloser // the body as parsed by http.ReadResponse
	ctx    context.Context
	stop   func() bool
	wdone  chan error
	keep   bool // the connection may be reused after this response
	done   bool // the connection has been released
	closed bool
	err    error   // sticky error after done
	tr     tracker // the request's accounting, ended with the exchange
}

func (b *respBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.done {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(b.keep, io.EOF)
	case err != nil:
		err = b.c.wrap(b.ctx, err)
		b.finish(false, err)
	}
	return n, err
}

func (b *respBody) finish(keep bool, err error) {
	b.done = true
	b.err = err
	b.c.release(keep, b.stop, b.wdone)
	b.tr.done()
}

// Close releases the connection. It may be called while a Read is blocked,
// to abort it.
func (b *respBody) Close() error {
	if !b.mu.TryLock() {
		b.c.nc.Close() // a Read is in flight: make it return
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.done {
		return nil
	}
	if !b.keep {
		b.finish(false, errBodyClosed)
		return nil
	}
	// Discard the rest if it has already arrived (or nothing is left).
	b.c.noBlock = true
	_, err := io.CopyN(io.Discard, b.rc, maxDrain)
	b.c.noBlock = false
	b.finish(err == io.EOF, errBodyClosed)
	return nil
}

// upgraded is the Body of a 101 response: the raw connection, readable,
// writable and closable, never pooled again.
type upgraded struct {
	c    *conn
	stop func() bool
	once sync.Once
	tr   tracker
}

var _ io.ReadWriteCloser = (*upgraded)(nil)

// Read reads first what the response reader had buffered, then the socket.
func (u *upgraded) Read(p []byte) (int, error) { return u.c.br.Read(p) }

func (u *upgraded) Write(p []byte) (int, error) { return u.c.nc.Write(p) }

// CloseWrite half-closes the connection when the transport allows it.
func (u *upgraded) CloseWrite() error {
	if cw, ok := u.c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (u *upgraded) Close() error {
	var err error
	u.once.Do(func() {
		if u.stop != nil {
			u.stop()
		}
		err = u.c.nc.Close()
		u.tr.done()
	})
	return err
}

// Conn returns the underlying connection, for deadlines.
func (u *upgraded) Conn() net.Conn { return u.c.nc }
