package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"causeway.dev/causeway/internal/admin"
	"causeway.dev/causeway/internal/gateway"
	"causeway.dev/causeway/internal/proxy"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/upstream"
)

// gatewayFlags are the process-level settings of a gateway; everything else
// comes from the resources.
type gatewayFlags struct {
	config       string
	adminAddr    string
	accessLog    string
	logLevel     string
	trustedHops  int
	drain        time.Duration
	maxHeader    int
	maxBody      int64
	maxConns     int
	idleTimeout  time.Duration
	headerTimout time.Duration
	zone, region string
	releasePages bool
}

func (f *gatewayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "directory of YAML resources (watched for changes)")
	fs.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:9901", "admin API address (/ready, /healthz, /config, /status, /metrics)")
	fs.StringVar(&f.accessLog, "access-log", "stdout", "access log: off, stdout or a file path")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.IntVar(&f.trustedHops, "trusted-hops", 0, "number of proxies in front whose X-Forwarded-* headers are trusted")
	fs.DurationVar(&f.drain, "drain-timeout", 15*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	fs.IntVar(&f.maxHeader, "max-header-bytes", 64<<10, "limit on the size of request headers")
	fs.Int64Var(&f.maxBody, "max-body-bytes", 64<<30, "limit on the size of a request body")
	fs.IntVar(&f.maxConns, "max-connections", 10000, "limit on open connections per listener")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 120*time.Second, "close idle client connections after this")
	fs.DurationVar(&f.headerTimout, "read-header-timeout", 10*time.Second, "limit on the time to read request headers")
	fs.StringVar(&f.zone, "zone", "", "this gateway's zone: endpoints of the same zone are preferred, then the same --region")
	fs.StringVar(&f.region, "region", "", "this gateway's region (see --zone)")
	fs.BoolVar(&f.releasePages, "release-startup-pages", true, "once serving, unmap the executable's pages only start-up touched (they stay in the page cache)")
}

func runGateway(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	var f gatewayFlags
	f.register(fs)
	_ = fs.Parse(args)
	if f.config == "" {
		return errors.New("gateway: --config DIR is required (or try `causeway quickstart`)")
	}
	return serve(f)
}

func serve(f gatewayFlags) error {
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	accessLog, closeLog, err := openAccessLog(f.accessLog)
	if err != nil {
		return err
	}
	defer closeLog()

	metrics := telemetry.NewMetrics()
	gw := gateway.New(gateway.Options{
		ConfigDir: f.config,
		Logger:    log,
		Proxy:     f.proxyOptions(metrics, accessLog),
		Upstream:  f.upstreamOptions(),
	})
	adm := admin.New(gw, admin.Options{Addr: f.adminAddr, Metrics: metrics.Handler(), Logger: log})
	if err := adm.Start(); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	log.Info("admin API listening", "addr", adm.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go releaseStartupPages(ctx, f, gw.Ready, log)
	runErr := gw.Run(ctx)
	drain(f, log, gw.Shutdown, adm)
	return runErr
}

// drain, once a signal ended the run, gives requests in flight f.drain to
// finish (shutdown stops accepting and waits), then stops the admin API.
func drain(f gatewayFlags, log *slog.Logger, shutdown func(context.Context) error, adm *admin.Server) {
	log.Info("draining", "timeout", f.drain.String())
	ctx, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.Warn("drain deadline passed with requests in flight", "error", err)
	}
	_ = adm.Shutdown(ctx)
	log.Info("stopped")
}

// proxyOptions are the data plane's settings from the flags.
func (f gatewayFlags) proxyOptions(m *telemetry.Metrics, al *telemetry.AccessLog) proxy.Options {
	return proxy.Options{
		Metrics:           m,
		AccessLog:         al,
		TrustedHops:       f.trustedHops,
		MaxHeaderBytes:    f.maxHeader,
		MaxBodyBytes:      f.maxBody,
		MaxConnections:    f.maxConns,
		ReadHeaderTimeout: f.headerTimout,
		IdleTimeout:       f.idleTimeout,
	}
}

// upstreamOptions are the endpoint manager's settings from the flags.
func (f gatewayFlags) upstreamOptions() upstream.Options {
	return upstream.Options{Zone: f.zone, Region: f.region}
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func openAccessLog(where string) (*telemetry.AccessLog, func(), error) {
	var w io.Writer
	var file *os.File
	switch strings.ToLower(where) {
	case "off", "":
		return nil, func() {}, nil
	case "stdout":
		w = os.Stdout
	default:
		var err error
		file, err = os.OpenFile(where, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--access-log: %w", err)
		}
		w = file
	}
	al := telemetry.NewAccessLog(w)
	return al, func() {
		_ = al.Close()
		if file != nil {
			_ = file.Close()
		}
	}, nil
}
