// Command tcp is the load program of bench/tcp/run.sh: a sink that reads
// and discards what each connection sends, and a sender that opens a few
// parallel streams to a target (the sink, or a proxy in front of it) and
// writes until a byte budget or a time limit is reached, then prints what
// it measured as one line of key=value pairs. The sender counts bytes the
// sink confirmed (it answers each stream's byte count at EOF), so bytes
// still in socket buffers are not counted.
//
//	tcp sink -listen 127.0.0.1:9000
//	tcp send -target 127.0.0.1:9001 -streams 4 -bytes 3GiB -duration 10s
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tcp sink|send [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sink":
		err = sink(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcp:", err)
		os.Exit(1)
	}
}

// sink discards everything a connection sends and, at EOF, answers the
// byte count as 8 bytes big-endian.
func sink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	addr := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; _ = ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 256<<10)
			var n int64
			for {
				m, err := c.Read(buf)
				n += int64(m)
				if err != nil {
					break
				}
			}
			var out [8]byte
			binary.BigEndian.PutUint64(out[:], uint64(n))
			_, _ = c.Write(out[:])
		}()
	}
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	target := fs.String("target", "", "host:port to send to")
	streams := fs.Int("streams", 4, "parallel connections")
	budget := fs.String("bytes", "3GiB", "total bytes to send over all streams (suffix KiB, MiB or GiB)")
	dur := fs.Duration("duration", 10*time.Second, "stop sending after this long even if bytes remain")
	chunk := fs.Int("chunk", 256<<10, "bytes per write")
	_ = fs.Parse(args)
	total, err := parseSize(*budget)
	if err != nil {
		return err
	}
	if *target == "" {
		return errors.New("send: -target is required")
	}
	var (
		left    atomic.Int64
		wg      sync.WaitGroup
		moved   atomic.Int64
		errMu   sync.Mutex
		firstEr error
	)
	left.Store(total)
	fail := func(err error) {
		errMu.Lock()
		if firstEr == nil {
			firstEr = err
		}
		errMu.Unlock()
	}
	buf := make([]byte, *chunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	ru0 := cpuTime()
	start := time.Now()
	end := start.Add(*dur)
	for range *streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", *target)
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			for time.Now().Before(end) {
				n := min(int64(len(buf)), left.Add(-int64(len(buf)))+int64(len(buf)))
				if n <= 0 {
					break
				}
				if _, err := c.Write(buf[:n]); err != nil {
					fail(err)
					return
				}
			}
			_ = c.(*net.TCPConn).CloseWrite()
			var got [8]byte
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadFull(c, got[:]); err != nil {
				fail(fmt.Errorf("sink count: %w", err))
				return
			}
			moved.Add(int64(binary.BigEndian.Uint64(got[:])))
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - ru0
	if firstEr != nil {
		return firstEr
	}
	gib := float64(moved.Load()) / (1 << 30)
	fmt.Printf("bytes=%d seconds=%.3f gib_per_s=%.3f client_cpu_s=%.3f\n", moved.Load(), elapsed.Seconds(), gib/elapsed.Seconds(), cpu.Seconds())
	return nil
}

// parseSize reads 123, 123KiB, 123MiB or 123GiB.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
