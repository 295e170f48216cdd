package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/admin"
	"causeway.dev/causeway/internal/gateway"
	"causeway.dev/causeway/internal/leader"
	"causeway.dev/causeway/internal/provider/kube"
	"causeway.dev/causeway/internal/provision"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/translate"
)

// runController is the in-process Kubernetes mode: Causeway watches an API
// server, serves the Gateways of its GatewayClasses itself, each on its
// spec.addresses or on one address of the pool, and writes their status.
func runController(args []string) error {
	fs := flag.NewFlagSet("controller", flag.ExitOnError)
	var f gatewayFlags
	f.register(fs)
	_ = fs.Set("access-log", "off")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file; \"\" means in-cluster")
	poolFlag := fs.String("gateway-address-pool", "127.0.2.0/24", "addresses for Gateways without spec.addresses: CIDRs and IPs, comma-separated; \"\" binds them on all interfaces")
	feats := fs.String("supported-features", strings.Join(supportedFeatures, ","), "Gateway API features published in the GatewayClass status")
	class := fs.String("gateway-class", "causeway", "GatewayClass to create if missing, naming this controller; \"\" creates none")
	var le leader.Flags
	le.Register(fs)
	var pf provision.Flags
	pf.Register(fs)
	_ = fs.Parse(args)
	if f.config != "" {
		return errors.New("controller: --config is for `causeway gateway`; resources come from the API server")
	}
	pool, err := parsePool(*poolFlag)
	if err != nil {
		return fmt.Errorf("controller: --gateway-address-pool: %w", err)
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("controller: kubeconfig: %w", err)
	}
	// Status writes come in bursts of one per object: client-go's default
	// of 5 requests per second would take minutes.
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "causeway/" + version

	accessLog, closeLog, err := openAccessLog(f.accessLog)
	if err != nil {
		return err
	}
	defer closeLog()

	prov, err := kube.New(kube.Options{Config: cfg, Logger: log})
	if err != nil {
		return err
	}
	pv, err := pf.Provisioner(cfg, log)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if pf.Mode == string(provision.Deployment) {
		return runProvisioner(prov, pv, cfg, le, *class, f.adminAddr, log)
	}
	var featList []string
	for _, f := range strings.Split(*feats, ",") {
		if f = strings.TrimSpace(f); f != "" {
			featList = append(featList, f)
		}
	}
	sw, err := kube.NewStatusWriter(kube.StatusOptions{Config: cfg, Logger: log, SupportedFeatures: featList})
	if err != nil {
		return err
	}
	statusOut := &leaderStatus{sw: sw, pv: pv}
	metrics := telemetry.NewMetrics()
	gw := gateway.New(gateway.Options{
		Provider:    prov,
		Status:      statusOut,
		AddressPool: pool,
		Logger:      log,
		Proxy:       f.proxyOptions(metrics, accessLog),
		// --zone and --region were registered here but never applied.
		Upstream: f.upstreamOptions(),
	})
	adm := admin.New(gw, admin.Options{Addr: f.adminAddr, Metrics: metrics.Handler(), Logger: log})
	if err := adm.Start(); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	log.Info("admin API listening", "addr", adm.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go releaseStartupPages(ctx, f, gw.Ready, log)
	if *class != "" {
		if err := ensureClass(ctx, cfg, *class, log); err != nil {
			return err
		}
	}
	elector, err := le.Elector(cfg, log)
	if err != nil {
		return err
	}
	if elector == nil {
		go statusOut.lead(ctx)
	} else {
		// Every replica serves; only the leader writes status. Run returns
		// after releasing the Lease, before the process exits.
		done := make(chan struct{})
		defer func() { stop(); <-done }()
		go func() {
			defer close(done)
			if err := elector.Run(ctx, statusOut.lead); err != nil {
				log.Warn("leader election", "error", err)
			}
		}()
	}
	runErr := gw.Run(ctx)
	drain(f, log, gw.Shutdown, adm)
	return runErr
}

// supportedFeatures are the Gateway API features Causeway claims: the core
// features of the GATEWAY-HTTP, -GRPC, -TLS and -TCP conformance profiles,
// and the extended features that pass the conformance suite.
//
// The request-mirror tests read the mirror backend's pod logs, which the
// test bed's fake kubelet does not serve: test/conformance/run.sh serves
// them with test/conformance/podlogs.
var supportedFeatures = []string{
	// Core features of the four profiles.
	"Gateway", "HTTPRoute", "ReferenceGrant", "GRPCRoute", "TLSRoute", "TCPRoute",
	// Gateway.
	"GatewayPort8080", "GatewayStaticAddresses", "GatewayHTTPListenerIsolation", "GatewayAddressEmpty",
	"GatewayFrontendClientCertificateValidation", "GatewayFrontendClientCertificateValidationInsecureFallback",
	"GatewayBackendClientCertificate",
	"GatewayHTTPSListenerDetectMisdirectedRequests",
	"GatewayInfrastructure", // spec.infrastructure on provisioned objects (internal/provision)
	"ListenerSet",
	// HTTPRoute.
	"HTTPRoute303RedirectStatusCode", "HTTPRoute307RedirectStatusCode", "HTTPRoute308RedirectStatusCode",
	"HTTPRouteBackendProtocolH2C", "HTTPRouteBackendProtocolWebSocket", "HTTPRouteBackendRequestHeaderModification",
	"HTTPRouteBackendTimeout", "HTTPRouteRequestTimeout", "HTTPRouteDestinationPortMatching",
	"HTTPRouteHostRewrite", "HTTPRoutePathRewrite", "HTTPRoutePathRedirect", "HTTPRoutePortRedirect", "HTTPRouteSchemeRedirect",
	"HTTPRouteMethodMatching", "HTTPRouteQueryParamMatching", "HTTPRouteNamedRouteRule", "HTTPRouteParentRefPort",
	"HTTPRouteResponseHeaderModification", "HTTPRouteRetry", "HTTPRouteRetryBackendTimeout", "HTTPRouteRetryConnectionError",
	"HTTPRouteCORS",
	"HTTPRouteRequestMirror", "HTTPRouteRequestMultipleMirrors", "HTTPRouteRequestPercentageMirror",
	// GRPCRoute, TLSRoute, BackendTLSPolicy.
	"GRPCRouteNamedRouteRule",
	"TLSRouteModeTerminate", "TLSRouteModeMixed",
	"BackendTLSPolicy", "BackendTLSPolicySANValidation",
}

// ensureClass creates the GatewayClass name for this controller unless it
// exists (whoever its controller is: an existing class is left alone).
func ensureClass(ctx context.Context, cfg *rest.Config, name string, log *slog.Logger) error {
	// The dynamic client, not the typed clientset: see internal/provider/kube.
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	gc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"controllerName": translate.ControllerName},
	}}
	gvr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
	_, err = c.Resource(gvr).Create(ctx, gc, metav1.CreateOptions{})
	switch {
	case err == nil:
		log.Info("created GatewayClass", "name", name)
	case apierrors.IsAlreadyExists(err):
	case apierrors.IsNotFound(err):
		log.Warn("cannot create the GatewayClass: the Gateway API CRDs are not installed", "name", name)
	default:
		return fmt.Errorf("controller: creating GatewayClass %s: %w", name, err)
	}
	return nil
}

// parsePool expands "127.0.2.0/24,10.0.0.5" into addresses; a prefix gives
// its host addresses (not the network and broadcast ones of an IPv4
// prefix shorter than /31).
func parsePool(s string) ([]netip.Addr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		p = p.Masked()
		if p.Addr().BitLen()-p.Bits() > 16 {
			return nil, fmt.Errorf("%s is too large (at most 65536 addresses)", p)
		}
		first, last := p.Addr(), lastAddr(p)
		if p.Addr().Is4() && p.Bits() < 31 {
			first, last = first.Next(), last.Prev()
		}
		for a := first; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
			out = append(out, a)
		}
	}
	return out, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	host := p.Addr().BitLen() - p.Bits()
	for i := len(b) - 1; host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// leaderStatus passes reports to the status writer and keeps the latest,
// so that each leadership term starts by writing it: the term before may
// have been cut short in the middle of writing it.
type leaderStatus struct {
	sw   *kube.StatusWriter
	pv   *provision.Provisioner // provisions while leading too
	mu   sync.Mutex
	last func()
}

func (l *leaderStatus) Update(snap *resource.Snapshot, rep *status.Report, addrs func(*gwv1.Gateway) []string) {
	l.mu.Lock()
	l.last = func() { l.sw.Update(snap, rep, addrs) }
	l.mu.Unlock()
	l.sw.Update(snap, rep, addrs)
	l.pv.Update(snap, rep, addrs)
}

// lead writes status while ctx lasts (leader.Elector.Run's lead).
func (l *leaderStatus) lead(ctx context.Context) {
	l.mu.Lock()
	if l.last != nil {
		l.last()
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); _ = l.pv.Run(ctx) }()
	_ = l.sw.Run(ctx)
	<-done
}
