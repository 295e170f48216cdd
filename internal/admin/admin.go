// Package admin serves the admin HTTP API: liveness and readiness, the
// effective IR the proxy runs, the statuses of the last translation, the
// Prometheus metrics and pprof. It sits beside the data flow and only reads
// from it (through Source); it listens on localhost unless told otherwise,
// because /config and /debug/pprof reveal internals.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// DefaultAddr is where the admin server listens when Options.Addr is "".
const DefaultAddr = "127.0.0.1:9901"

// Source is the runtime state the admin server shows. Its methods are called
// from request goroutines, concurrently with updates: they must be safe for
// concurrent use and return values that are not modified afterwards.
type Source interface {
	// Config is the effective IR currently served (nil before the first).
	Config() *ir.Config
	// Status is the report of the last translation (nil before the first).
	Status() *status.Report
	// Ready reports whether the first configuration is applied and its
	// listeners are bound.
	Ready() bool
}

// Options configure the admin server.
type Options struct {
	// Addr is the address to listen on; "" means DefaultAddr
	// ("127.0.0.1:9901"). Use port 0 for any free port (see Server.Addr).
	Addr string
	// Metrics serves /metrics; nil answers 404 there.
	Metrics http.Handler
	// Logger receives serve errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	src  Source
	opts Options
	log  *slog.Logger
	srv  *http.Server

	mu sync.Mutex
	ln net.Listener
}

// New returns a server showing src. It does not listen until Start.
func New(src Source, opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	s := &Server{src: src, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s
}

// Handler returns the admin API's handler. Only GET (and HEAD) are served;
// other methods get 405. Its mux is private: nothing is read from
// http.DefaultServeMux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { text(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /config", s.config)
	mux.HandleFunc("GET /status", s.status)
	metrics := s.opts.Metrics
	if metrics == nil {
		metrics = http.NotFoundHandler()
	}
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // named profiles: heap, goroutine, ...
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return onlyGET(mux)
}

// onlyGET refuses every method but GET and HEAD, on every path (the mux
// alone would answer 404 rather than 405 on unknown paths).
func onlyGET(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			text(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Start binds the address now, so that the caller sees a bind error, and
// serves in a goroutine until Shutdown.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("admin server already started")
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr returns the bound address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops listening and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	text(w, http.StatusOK, "causeway admin\n\n"+
		"/healthz        liveness\n"+
		"/ready          readiness (503 until the first configuration is served)\n"+
		"/config         effective configuration (IR) as JSON\n"+
		"/status         resource statuses as JSON; ?problems=1 for the problems only\n"+
		"/metrics        Prometheus metrics\n"+
		"/debug/pprof/   profiles\n")
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if !s.src.Ready() {
		text(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	text(w, http.StatusOK, "ready")
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	cfg := s.src.Config()
	if cfg == nil {
		text(w, http.StatusServiceUnavailable, "no configuration yet")
		return
	}
	writeJSON(w, cfg)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	rep := s.src.Status()
	if rep == nil {
		text(w, http.StatusServiceUnavailable, "no status yet")
		return
	}
	if v := r.URL.Query().Get("problems"); v != "" && v != "0" && v != "false" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, p := range rep.Problems() {
			fmt.Fprintln(w, p.Error())
		}
		return
	}
	writeJSON(w, rep)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		text(w, http.StatusInternalServerError, "encoding JSON: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}
