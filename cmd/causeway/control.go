package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"causeway.dev/causeway/internal/admin"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/provider/file"
	"causeway.dev/causeway/internal/provider/kube"
	"causeway.dev/causeway/internal/push"
	"causeway.dev/causeway/internal/push/lease"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
)

// runControl serves the resources of a directory to remote proxies.
func runControl(args []string) error {
	fs := flag.NewFlagSet("control", flag.ExitOnError)
	var (
		config    = fs.String("config", "", "directory of YAML resources (watched for changes)")
		listen    = fs.String("listen", "127.0.0.1:18000", "address of the gRPC stream to proxies")
		adminAddr = fs.String("admin-addr", "127.0.0.1:9902", "admin API address (/status, /ready, /healthz); keep it on localhost")
		tokens    = fs.String("tokens", "", "file of bootstrap tokens: one line per token, \"TOKEN ns/gateway-pattern...\"")
		clientCA  = fs.String("client-ca", "", "CA certificates (PEM) that sign proxies' client certificates; a verified certificate's SANs name the Gateways its proxy may serve (spiffe://TRUST-DOMAIN/gateway/NS/NAME or NAME.NS.gateway.TRUST-DOMAIN)")
		trustDom  = fs.String("trust-domain", push.DefaultTrustDomain, "trust domain of the proxies' client certificates")
		kubecfg   = fs.String("kubeconfig", "", "read resources from this cluster (\"in-cluster\" for the pod's service account) instead of --config, and write their status there")
		certFile  = fs.String("tls-cert", "", "server certificate (PEM); without it a self-signed one is made")
		keyFile   = fs.String("tls-key", "", "server private key (PEM), with --tls-cert")
		tlsDir    = fs.String("tls-dir", "", "without --tls-cert: directory of the control plane's own CA (ca.pem, ca-key.pem), made on first start; proxies trust DIR/ca.pem (--ca)")
		hosts     = fs.String("tls-hosts", "", "comma-separated extra names or IPs of the certificate issued from --tls-dir")
		debounce  = fs.Duration("debounce", 100*time.Millisecond, "coalesce changes within this window before streaming")
		logLevel  = fs.String("log-level", "info", "log level: debug, info, warn, error")
		// Kubernetes mode: the fleet across replicas (internal/push/lease).
		fleetLeases = fs.Bool("fleet-leases", true, "with --kubeconfig: publish this replica's proxies in a Lease and count every live replica's proxies in Gateway status; off, each replica writes its own proxies' view (one replica only)")
		leaseNS     = fs.String("lease-namespace", "", "namespace of the replicas' fleet Leases; \"\" means $POD_NAMESPACE, the pod's namespace, or default")
		identity    = fs.String("identity", "", "this replica's name in its fleet Lease (causeway-control-IDENTITY); \"\" means the hostname and a random suffix")
		leaseDur    = fs.Duration("lease-duration", 15*time.Second, "how long a replica's proxies still count after its last Lease renewal (it renews every third of that)")
	)
	_ = fs.Parse(args)
	if (*config == "") == (*kubecfg == "") {
		return errors.New("control: one of --config DIR and --kubeconfig PATH is required")
	}
	if *tokens == "" && *clientCA == "" {
		return errors.New("control: --tokens FILE, --client-ca FILE or both are required")
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	var tok *push.Tokens
	if *tokens != "" {
		if tok, err = push.LoadTokens(*tokens); err != nil {
			return err
		}
	}
	tlsCfg, err := controlTLS(*certFile, *keyFile, *tlsDir, *listen, *hosts)
	if err != nil {
		return err
	}
	if *clientCA != "" {
		pem, err := os.ReadFile(*clientCA)
		if err != nil {
			return fmt.Errorf("--client-ca: %w", err)
		}
		tlsCfg.ClientCAs = x509.NewCertPool()
		if !tlsCfg.ClientCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--client-ca %s: no PEM certificate", *clientCA)
		}
		// Proxies with a token present no certificate; one that does
		// present a certificate must present a valid one.
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	}

	srv := push.NewServer(push.Options{Tokens: tok, TrustDomain: *trustDom, Debounce: *debounce, Logger: log})
	defer srv.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// Statuses: translation's, with each Gateway's Programmed condition
	// following its proxies; written to the cluster in Kubernetes mode.
	var sink push.StatusSink
	var fleet push.FleetView = srv
	var fleetLease *lease.Fleet
	var prov interface {
		Run(context.Context, func(*resource.Snapshot)) error
	}
	if *kubecfg != "" {
		path := *kubecfg
		if path == "in-cluster" {
			path = ""
		}
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return fmt.Errorf("control: kubeconfig: %w", err)
		}
		rc.QPS, rc.Burst = 200, 400
		rc.UserAgent = "causeway-control/" + version
		kp, err := kube.New(kube.Options{Config: rc, Logger: log})
		if err != nil {
			return err
		}
		sw, err := kube.NewStatusWriter(kube.StatusOptions{Config: rc, Logger: log, SupportedFeatures: supportedFeatures})
		if err != nil {
			return err
		}
		go func() { _ = sw.Run(ctx) }()
		prov, sink = kp, sw
		if *fleetLeases {
			fleetLease, err = lease.New(srv, lease.Options{Config: rc, Namespace: podNamespace(*leaseNS),
				Identity: *identity, Duration: *leaseDur, Logger: log})
			if err != nil {
				return err
			}
			fleet = fleetLease
		}
	}
	reporter := push.NewReporter(fleet, sink)
	go reporter.Run(ctx)
	var served atomic.Pointer[ir.Config]
	publish := func(snap *resource.Snapshot) {
		cfg, report := translate.Translate(snap, translate.Options{})
		for _, p := range report.Problems() {
			log.Warn("invalid configuration", "problem", p.Error())
		}
		served.Store(cfg)
		srv.Update(cfg, push.SecretOwners(snap))
		reporter.Update(snap, report)
	}
	if *config != "" {
		fp := file.New(file.Options{Dir: *config, Logger: log})
		snap, err := fp.Load()
		if err != nil {
			return err
		}
		publish(snap)
		prov = fp
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	g := grpc.NewServer(append(push.ServerOptions(), grpc.Creds(credentials.NewTLS(tlsCfg)))...)
	srv.Register(g)

	// The admin API (internal/admin: /status with the fleet's Programmed,
	// /config, /ready, pprof) and the fleet table at /proxies.
	mux := http.NewServeMux()
	mux.Handle("GET /proxies", srv.Handler())
	mux.Handle("/", admin.New(controlSource{srv: srv, served: &served, reporter: reporter}, admin.Options{Logger: log}).Handler())
	adm := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	aln, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		return fmt.Errorf("--admin-addr: %w", err)
	}
	go func() { _ = adm.Serve(aln) }()
	go func() { _ = g.Serve(ln) }()
	log.Info("control plane listening", "addr", ln.Addr().String(), "admin", aln.Addr().String())
	leaseDone := make(chan struct{})
	if fleetLease != nil {
		go func() {
			defer close(leaseDone)
			if err := fleetLease.Run(ctx); err != nil {
				log.Warn("fleet lease", "error", err)
			}
		}()
		// No status before the other replicas' fleets are known: this
		// replica's alone would undo what they wrote.
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := fleetLease.WaitSynced(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("control: %w (RBAC: get, list, watch, create, update, patch, delete leases.coordination.k8s.io there; or --fleet-leases=false)", err)
		}
		log.Info("sharing the fleet view", "lease", fleetLease.Name())
	} else {
		close(leaseDone)
	}

	err = prov.Run(ctx, publish)
	// Proxies keep serving and reconnect elsewhere: no need to wait for
	// their streams to end.
	g.Stop()
	_ = adm.Close()
	stop()
	<-leaseDone // its Lease deleted: the others stop counting this replica's proxies
	log.Info("stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// podNamespace is ns, else the namespace the pod runs in, else default.
func podNamespace(ns string) string {
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		ns = "default"
	}
	return ns
}

// controlSource shows the control plane in the admin API: the whole IR it
// streams, and statuses whose Programmed follows the fleet.
type controlSource struct {
	srv      *push.Server
	served   *atomic.Pointer[ir.Config]
	reporter *push.Reporter
}

func (s controlSource) Config() *ir.Config     { return s.served.Load() }
func (s controlSource) Status() *status.Report { return s.reporter.Status() }
func (s controlSource) Ready() bool            { return s.srv.Version() != "" }

// controlTLS loads the server certificate, or issues one from the CA kept
// in dir (made there on first start), so that a restarted control plane
// keeps the identity its proxies trust.
func controlTLS(certFile, keyFile, dir, listen, extra string) (*tls.Config, error) {
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}, nil
	}
	if dir == "" {
		return nil, errors.New("control: --tls-cert and --tls-key, or --tls-dir, are required")
	}
	ca, err := loadOrMakeCA(dir)
	if err != nil {
		return nil, err
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if extra != "" {
		hosts = append(hosts, splitList(extra)...)
	}
	return ca.ServerTLS(hosts)
}

func loadOrMakeCA(dir string) (*push.CA, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	c, cerr := os.ReadFile(certPath)
	k, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil {
		return &push.CA{CertPEM: c, KeyPEM: k}, nil
	}
	if !errors.Is(cerr, os.ErrNotExist) || !errors.Is(kerr, os.ErrNotExist) {
		return nil, fmt.Errorf("--tls-dir: want both ca.pem and ca-key.pem, or neither: %w", errors.Join(cerr, kerr))
	}
	ca, err := push.NewCA()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--tls-dir: %w", err)
	}
	if err := os.WriteFile(keyPath, ca.KeyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("--tls-dir: %w", err)
	}
	if err := os.WriteFile(certPath, ca.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("--tls-dir: %w", err)
	}
	return ca, nil
}
