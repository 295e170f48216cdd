//go:build linux

package upstream

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// blackhole returns a loopback address whose accept queue is full, so
// that connecting hangs: Linux drops the SYN of a listener with a full
// queue instead of refusing it.
func blackhole(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	addr := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	// Fill the queue: connections complete but are never accepted.
	for range 4 {
		c, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(c) })
		syscall.Connect(c, addr)
	}
	return "127.0.0.1:" + itoa(port)
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestConnectTimeout(t *testing.T) {
	checkLeaks(t)
	addr := blackhole(t)
	ic := h1Cluster("c", addr)
	ic.ConnectTimeout = ms(200)
	m := newManager(t, Options{}, ic)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // a bound if the address accepted after all
	defer cancel()
	_, err := m.Cluster("c").RoundTrip(newReq(ctx, "GET", "/", nil))
	d := time.Since(start)
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
	if d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("failed after %v, want the 200ms connect timeout", d)
	}
}
