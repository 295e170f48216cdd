package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/admin"
	"causeway.dev/causeway/internal/agent"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/proxy"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/upstream"
)

// runProxy runs a data plane configured by a control plane.
func runProxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	var (
		control    = fs.String("control", "", "control-plane addresses, comma-separated host:port (replicas; required)")
		id         = fs.String("id", "", "node id, unique per proxy (default: hostname)")
		role       = fs.String("role", "gateway", "role: gateway or sidecar")
		gateways   = fs.String("gateways", "", "Gateways served, comma-separated namespace/name (required)")
		token      = fs.String("token", "", "bootstrap token (or $CAUSEWAY_TOKEN, or --token-file)")
		tokenFile  = fs.String("token-file", "", "file holding the bootstrap token")
		caFile     = fs.String("ca", "", "CA certificate (PEM) that signs the control plane's certificate (required)")
		certFile   = fs.String("cert", "", "client certificate (PEM) naming the Gateways served, instead of a token (see causeway control --client-ca)")
		keyFile    = fs.String("key", "", "private key (PEM) of --cert")
		serverName = fs.String("server-name", "", "name verified in the control plane's certificate (default: the host of each address)")
		listenAddr = fs.String("listen-address", "", "bind every listener to this IP instead of the Gateway's address")
		backoffMax = fs.Duration("reconnect-max", 5*time.Second, "longest wait between reconnection attempts")
	)
	// The gateway's process flags, less --config: a proxy has no files.
	var f gatewayFlags
	gf := flag.NewFlagSet("", flag.ContinueOnError)
	f.register(gf)
	gf.VisitAll(func(fl *flag.Flag) {
		if fl.Name != "config" {
			fs.Var(fl.Value, fl.Name, fl.Usage)
		}
	})
	_ = fs.Parse(args)
	if *control == "" || *gateways == "" || *caFile == "" {
		return errors.New("proxy: --control, --gateways and --ca are required")
	}
	if *role != "gateway" && *role != "sidecar" {
		return fmt.Errorf("proxy: --role %q: want gateway or sidecar", *role)
	}
	if *id == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("proxy: --id: %w", err)
		}
		*id = h
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: *serverName}
	var tok string
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("proxy: --cert/--key: %w", err)
		}
		// Sent whatever CAs the control plane asks for (Go would send
		// none if its issuer is not among them), so that an untrusted
		// certificate fails the handshake plainly rather than falling
		// back to a missing token.
		tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		tok, _ = bootstrapToken(*token, *tokenFile) // optional beside a certificate
	} else {
		var err error
		if tok, err = bootstrapToken(*token, *tokenFile); err != nil {
			return err
		}
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("--ca: %w", err)
	}
	tlsCfg.RootCAs = x509.NewCertPool()
	if !tlsCfg.RootCAs.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("--ca %s: no PEM certificate", *caFile)
	}
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
	uo := f.upstreamOptions()
	uo.Logger = log
	ups := upstream.NewManager(uo)
	po := f.proxyOptions(metrics, accessLog)
	po.Upstreams, po.Logger = ups, log
	px := proxy.New(po)
	ag, err := agent.New(agent.Options{
		Addrs: splitList(*control),
		Node: &pb.Node{Id: *id, Role: *role, Gateways: splitList(*gateways), Token: tok, Build: version,
			Locality: &pb.Locality{Zone: f.zone, Region: f.region}},
		TLS:           tlsCfg,
		Apply:         px.Apply,
		ListenAddress: *listenAddr,
		BackoffMax:    *backoffMax,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	adm := admin.New(proxySource{px}, admin.Options{Addr: f.adminAddr, Metrics: metrics.Handler(), Logger: log})
	if err := adm.Start(); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	log.Info("admin API listening", "addr", adm.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go releaseStartupPages(ctx, f, px.Ready, log)
	_ = ag.Run(ctx)

	drain(f, log, func(ctx context.Context) error {
		defer ups.Close()
		return px.Shutdown(ctx)
	}, adm)
	return nil
}

// proxySource shows a remotely configured proxy in the admin API; its
// statuses live in the control plane.
type proxySource struct{ p *proxy.Proxy }

func (s proxySource) Config() *ir.Config     { return s.p.Config() }
func (s proxySource) Status() *status.Report { return nil }
func (s proxySource) Ready() bool            { return s.p.Ready() }

// bootstrapToken takes the token from the flag, the file or the
// environment, in that order.
func bootstrapToken(flagValue, file string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if t := os.Getenv("CAUSEWAY_TOKEN"); t != "" {
		return t, nil
	}
	return "", errors.New("proxy: a bootstrap token (--token, --token-file or $CAUSEWAY_TOKEN) or a client certificate (--cert, --key) is required")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
