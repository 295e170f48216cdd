// Command tls is the load program of bench/tls/run.sh: it opens TLS
// connections to a target for a fixed time, each one a handshake and one
// small HTTP/1.1 request with Connection: close (so that a TLS 1.3 session
// ticket is received before the connection ends), and prints the
// connections per second as one line of key=value pairs. With -resume the
// client keeps a session cache and every connection after the first of
// each caller resumes; without it every handshake is a full one. The
// server's certificate is not verified: the server's side is what is
// measured.
//
//	tls -target 127.0.0.1:8443 -c 4 -duration 5s [-resume]
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	target := flag.String("target", "", "host:port of the TLS listener")
	conc := flag.Int("c", 4, "concurrent callers")
	dur := flag.Duration("duration", 5*time.Second, "how long to connect")
	resume := flag.Bool("resume", false, "resume sessions (a session cache per caller)")
	host := flag.String("host", "bench.example", "SNI and Host header")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "tls: -target is required")
		os.Exit(2)
	}
	req := []byte("GET /tls-bench HTTP/1.1\r\nHost: " + *host + "\r\nConnection: close\r\n\r\n")
	var (
		done, resumed, errs atomic.Int64
		wg                  sync.WaitGroup
		firstErr            atomic.Value
	)
	ru0 := cpuTime()
	start := time.Now()
	end := start.Add(*dur)
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conf := &tls.Config{ServerName: *host, InsecureSkipVerify: true} // the server side is measured
			if *resume {
				conf.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			}
			for time.Now().Before(end) {
				r, err := connect(*target, conf, req)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				done.Add(1)
				if r {
					resumed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - ru0
	fmt.Printf("conns=%d resumed=%d errors=%d seconds=%.3f conns_per_s=%.0f client_cpu_s=%.3f\n",
		done.Load(), resumed.Load(), errs.Load(), elapsed.Seconds(), float64(done.Load())/elapsed.Seconds(), cpu.Seconds())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "tls: first error:", e)
	}
}

// connect makes one connection: handshake, request, response read to the
// end. It tells whether the session was resumed.
func connect(target string, conf *tls.Config, req []byte) (bool, error) {
	nc, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(nc, conf)
	if err := c.Handshake(); err != nil {
		return false, fmt.Errorf("handshake: %w", err)
	}
	if _, err := c.Write(req); err != nil {
		return false, err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) < 12 || string(line[:5]) != "HTTP/" {
		return false, fmt.Errorf("no HTTP response: %q: %w", line, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, err
	}
	return c.ConnectionState().DidResume, nil
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
