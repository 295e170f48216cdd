// Package provision creates, in the cluster, the objects that stand for
// each accepted Gateway: it sits after the translator in Kubernetes mode,
// beside the status writer, and like it acts only on the leader.
//
// In Deployment mode each Gateway gets its own proxy: a ServiceAccount, a
// Secret holding the control plane's CA and bootstrap token, a Deployment
// running `causeway proxy --control ADDR --gateways NS/NAME` and a Service
// (LoadBalancer or ClusterIP) in front of its pods. In InProcess mode the
// controller is the proxy, and each Gateway gets a headless, selector-less
// Service and the EndpointSlices listing the address it is bound to, so
// that in-cluster clients reach a Gateway by name.
//
// Every object carries the Gateway's spec.infrastructure labels and
// annotations, the gateway.networking.k8s.io/gateway-name label and an
// owner reference to the Gateway (the garbage collector deletes them with
// it). Objects are written with server-side apply (field manager
// "causeway"), only when the hash of their desired state changed; those of
// Gateways gone or no longer accepted are deleted. Only the dynamic client
// is used: cmd/causeway links no typed clientset.
package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

// Mode says what is provisioned for each Gateway.
type Mode string

const (
	// Off provisions nothing and deletes nothing.
	Off Mode = "off"
	// InProcess publishes the Gateways the controller serves itself: a
	// headless Service and EndpointSlices per Gateway.
	InProcess Mode = "inprocess"
	// Deployment runs a proxy Deployment per Gateway, with its
	// ServiceAccount, Secret and Service.
	Deployment Mode = "deployment"
)

// FieldManager is the server-side apply field manager of every write.
const FieldManager = "causeway"

// Options configure a Provisioner.
type Options struct {
	// Config reaches the API server (required unless Mode is Off).
	Config *rest.Config
	// Mode; "" means Off.
	Mode Mode
	// Instance tells this provisioner's objects from another's (label
	// causeway.dev/provisioner): two installations in one cluster must use
	// different ones. "" means "causeway".
	Instance string

	// Image of the proxy containers (Deployment mode, required).
	Image string
	// ControlAddress is the proxies' --control: the host:port of `causeway
	// control`'s gRPC stream (Deployment mode, required).
	ControlAddress string
	// ControlCA is the PEM certificate the proxies trust for the control
	// plane (their --ca; Deployment mode, required).
	ControlCA []byte
	// ControlToken is the proxies' bootstrap token (their --token-file;
	// Deployment mode, required). It must allow every provisioned Gateway
	// in `causeway control --tokens`.
	ControlToken string
	// ServiceType of the proxies' Services: "LoadBalancer" or "ClusterIP";
	// "" means LoadBalancer.
	ServiceType string
	// ExtraArgs are appended to the proxies' arguments (e.g.
	// "--log-level=debug"); nil adds none.
	ExtraArgs []string

	// PodIPs are published for Gateways bound on all interfaces (InProcess
	// mode); nil publishes no endpoint for them, only their ports.
	PodIPs []string

	// Resync is the interval between full comparisons with the cluster,
	// which repair objects deleted or edited by hand; 0 means 10 minutes.
	Resync time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Provisioner keeps the cluster's provisioned objects in line with the
// accepted Gateways. Update may be called from any goroutine, at any time;
// Run applies the latest state while its context lasts (while leading).
type Provisioner struct {
	opts Options
	log  *slog.Logger
	dyn  dynamic.Interface

	mu      sync.Mutex
	desired []Gateway // latest Update; nil before the first
	seen    bool      // an Update arrived
	wake    chan struct{}
}

// The kinds provisioned, in creation order (deletion goes the other way).
var kinds = []schema.GroupVersionResource{
	{Version: "v1", Resource: "serviceaccounts"},
	{Version: "v1", Resource: "secrets"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Version: "v1", Resource: "services"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
}

var kindGVR = map[string]schema.GroupVersionResource{
	"ServiceAccount": kinds[0], "Secret": kinds[1], "Deployment": kinds[2], "Service": kinds[3], "EndpointSlice": kinds[4],
}

// New checks opts; nothing is sent until Run.
func New(opts Options) (*Provisioner, error) {
	if opts.Mode == "" {
		opts.Mode = Off
	}
	if opts.Instance == "" {
		opts.Instance = "causeway"
	}
	if opts.ServiceType == "" {
		opts.ServiceType = "LoadBalancer"
	}
	if opts.Resync <= 0 {
		opts.Resync = 10 * time.Minute
	}
	p := &Provisioner{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.Default()
	}
	switch opts.Mode {
	case Off:
		return p, nil
	case InProcess:
	case Deployment:
		switch {
		case opts.Image == "":
			return nil, errors.New("provision: the proxy image is required in deployment mode")
		case opts.ControlAddress == "":
			return nil, errors.New("provision: the control-plane address is required in deployment mode")
		case len(opts.ControlCA) == 0:
			return nil, errors.New("provision: the control plane's CA is required in deployment mode")
		case opts.ControlToken == "":
			return nil, errors.New("provision: a bootstrap token is required in deployment mode")
		}
		if opts.ServiceType != "LoadBalancer" && opts.ServiceType != "ClusterIP" {
			return nil, fmt.Errorf("provision: service type %q: want LoadBalancer or ClusterIP", opts.ServiceType)
		}
	default:
		return nil, fmt.Errorf("provision: mode %q: want inprocess, deployment or off", opts.Mode)
	}
	if opts.Config == nil {
		return nil, errors.New("provision: no API server configuration")
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	p.dyn = dyn
	return p, nil
}

// Update records the Gateways of a translation (the signature of the
// status writer's, so that both take the same reports). It does not block.
func (p *Provisioner) Update(snap *resource.Snapshot, rep *status.Report, addrs func(*gwv1.Gateway) []string) {
	if p == nil || p.opts.Mode == Off {
		return
	}
	p.Set(Gateways(snap, rep, addrs))
}

// Set records the desired Gateways. It does not block.
func (p *Provisioner) Set(gws []Gateway) {
	if p == nil || p.opts.Mode == Off {
		return
	}
	p.mu.Lock()
	p.desired, p.seen = gws, true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends: after each Update (bursts coalesce), every
// Options.Resync, and with a growing delay after a failure. Nothing is
// written before the first Update, so that a fresh leader does not delete
// everything on an empty view. It returns nil when ctx ends.
func (p *Provisioner) Run(ctx context.Context) error {
	if p == nil || p.opts.Mode == Off {
		<-ctx.Done()
		return nil
	}
	var known map[objKey]string // what the cluster holds; nil: list it
	resync := time.NewTimer(p.opts.Resync)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := time.Second
	for first := true; ; first = false {
		// A new term starts with what the replica saw while following.
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-p.wake:
			case <-resync.C:
				known = nil
				resync.Reset(p.opts.Resync)
			case <-retry.C:
			}
		}
		p.mu.Lock()
		gws, seen := p.desired, p.seen
		p.mu.Unlock()
		if !seen {
			continue
		}
		var err error
		known, err = p.reconcile(ctx, gws, known)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("provisioning", "error", err, "retry", backoff.String())
			known = nil
			retry.Reset(backoff)
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
	}
}

// objKey names one provisioned object.
type objKey struct {
	kind, namespace, name string
}

// reconcile applies what differs from known (listing the cluster first
// when known is nil) and deletes what is no longer desired. It returns the
// state it leaves.
func (p *Provisioner) reconcile(ctx context.Context, gws []Gateway, known map[objKey]string) (map[objKey]string, error) {
	if known == nil {
		var err error
		if known, err = p.list(ctx); err != nil {
			return nil, err
		}
	}
	desired := map[objKey]*unstructured.Unstructured{}
	var order []objKey
	for _, g := range gws {
		for _, u := range p.objects(g) {
			k := objKey{u.GetKind(), u.GetNamespace(), u.GetName()}
			desired[k] = u
			order = append(order, k)
		}
	}
	var errs []error
	for _, k := range order {
		u := desired[k]
		h := hashOf(u)
		if known[k] == h {
			continue
		}
		if err := p.apply(ctx, k, u); err != nil {
			errs = append(errs, err)
			delete(known, k)
			continue
		}
		p.log.Info("provisioned", "kind", k.kind, "namespace", k.namespace, "name", k.name)
		known[k] = h
	}
	var gone []objKey
	for k := range known {
		if desired[k] == nil {
			gone = append(gone, k)
		}
	}
	// Dependents first: a Deployment before its Secret and ServiceAccount.
	rank := map[string]int{"EndpointSlice": 0, "Service": 1, "Deployment": 2, "Secret": 3, "ServiceAccount": 4}
	sort.Slice(gone, func(i, j int) bool { return rank[gone[i].kind] < rank[gone[j].kind] })
	bg := metav1.DeletePropagationBackground
	for _, k := range gone {
		err := p.dyn.Resource(kindGVR[k.kind]).Namespace(k.namespace).Delete(ctx, k.name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s %s/%s: %w", k.kind, k.namespace, k.name, err))
			continue
		}
		p.log.Info("deprovisioned", "kind", k.kind, "namespace", k.namespace, "name", k.name)
		delete(known, k)
	}
	return known, errors.Join(errs...)
}

// apply writes u with server-side apply. A Service whose immutable
// clusterIP must change (InProcess's headless one and Deployment's are
// the same name) is deleted and created again.
func (p *Provisioner) apply(ctx context.Context, k objKey, u *unstructured.Unstructured) error {
	ri := p.dyn.Resource(kindGVR[k.kind]).Namespace(k.namespace)
	ao := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	_, err := ri.Apply(ctx, k.name, u, ao)
	if err != nil && k.kind == "Service" && apierrors.IsInvalid(err) {
		if derr := ri.Delete(ctx, k.name, metav1.DeleteOptions{}); derr == nil || apierrors.IsNotFound(derr) {
			_, err = ri.Apply(ctx, k.name, u, ao)
		}
	}
	if err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", k.kind, k.namespace, k.name, err)
	}
	return nil
}

// list returns this provisioner's objects in the cluster with their hash.
func (p *Provisioner) list(ctx context.Context) (map[objKey]string, error) {
	known := map[objKey]string{}
	sel := metav1.ListOptions{LabelSelector: LabelProvisioner + "=" + p.opts.Instance}
	for kind, gvr := range kindGVR {
		l, err := p.dyn.Resource(gvr).List(ctx, sel)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", gvr.Resource, err)
		}
		for i := range l.Items {
			u := &l.Items[i]
			known[objKey{kind, u.GetNamespace(), u.GetName()}] = hashOf(u)
		}
	}
	return known, nil
}
