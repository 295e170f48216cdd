// Package kube is the Provider of resources read from a Kubernetes API
// server, and the writer of their status back to it.
//
// In the data flow it stands where provider/file stands in the standalone
// mode: informers watch the Gateway API kinds, the core kinds the translator
// resolves (Service, EndpointSlice, Secret, ConfigMap, Namespace) and, when
// their CRDs are installed, Causeway's own kinds; every change rebuilds a
// resource.Snapshot from the informer caches after a short quiet period and
// hands it on, latest-wins. StatusWriter closes the loop: it writes the
// translator's status.Report to the objects of Causeway's GatewayClasses.
package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"k8s.io/apimachinery/pkg/watch"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/provider"
	"causeway.dev/causeway/internal/resource"
)

// Options configure a Provider.
type Options struct {
	// Config reaches the API server (required).
	Config *rest.Config
	// Debounce is the quiet period after a change before a snapshot is
	// built, so that a burst of changes (an `apply` of many objects)
	// gives one translation; 0 means 100ms.
	Debounce time.Duration
	// Resync is the informers' resync period; 0 means none (watches
	// are reliable; a resync would only re-translate the same state).
	Resync time.Duration
	// Logger receives discovery and watch events; nil means slog.Default().
	Logger *slog.Logger
}

// Provider watches an API server. It is a provider.Provider.
type Provider struct {
	opts Options
	log  *slog.Logger
	dyn  dynamic.Interface
	http *http.Client // discovery, with the rest config's credentials
}

var _ provider.Provider = (*Provider)(nil)

// New returns a Provider; it does no I/O.
func New(opts Options) (*Provider, error) {
	if opts.Config == nil {
		return nil, fmt.Errorf("kube provider: no rest config")
	}
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	p := &Provider{opts: opts, log: opts.Logger}
	if p.log == nil {
		p.log = slog.Default()
	}
	var err error
	if p.http, err = rest.HTTPClientFor(opts.Config); err != nil {
		return nil, fmt.Errorf("kube provider: %w", err)
	}
	if p.dyn, err = dynamic.NewForConfig(opts.Config); err != nil {
		return nil, fmt.Errorf("kube provider: %w", err)
	}
	return p, nil
}

// source is one watched kind: its informer, and how its cached objects go
// into a snapshot.
type source struct {
	kind     string
	informer cache.SharedIndexInformer
	add      func(s *resource.Snapshot, objs []any) error
	// gatewayAPI kinds have a status Causeway writes: an update that
	// leaves their generation alone is not a change (handler).
	gatewayAPI bool
}

// Run discovers which kinds the server serves, starts informers for them,
// waits for their caches, publishes the first snapshot and then one per
// burst of changes, until ctx ends. It waits (polling) while the Gateway
// API CRDs are not installed.
func (p *Provider) Run(ctx context.Context, publish func(*resource.Snapshot)) error {
	served, err := p.discover(ctx)
	if err != nil {
		return err
	}
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	sources := p.sources(served)
	for _, src := range sources {
		if _, err := src.informer.AddEventHandler(handler(poke, src.gatewayAPI)); err != nil {
			return fmt.Errorf("kube provider: %s: %w", src.kind, err)
		}
		go src.informer.Run(ctx.Done())
	}
	for _, src := range sources {
		if !cache.WaitForCacheSync(ctx.Done(), src.informer.HasSynced) {
			return nil // ctx ended
		}
	}
	p.log.Info("kubernetes caches synced", "kinds", len(sources))

	box := provider.NewLatest()
	done := make(chan struct{})
	go func() {
		defer close(done)
		box.Deliver(ctx, publish)
	}()
	defer func() { <-done }()

	poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		if p.opts.Debounce > 0 {
			t := time.NewTimer(p.opts.Debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			select { // changes during the wait are in this snapshot
			case <-changed:
			default:
			}
		}
		snap := resource.New()
		for _, src := range sources {
			if err := src.add(snap, src.informer.GetStore().List()); err != nil {
				p.log.Error("kube provider: cached object of unexpected type", "kind", src.kind, "err", err)
			}
		}
		box.Put(snap)
	}
}

// serverResources lists the resources of an API group version, as the
// discovery client does, without linking client-go's discovery package (it
// pulls in the typed scheme of every Kubernetes API).
func (p *Provider) serverResources(ctx context.Context, groupVersion string) (*metav1.APIResourceList, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(p.opts.Config.Host, "/")+"/apis/"+groupVersion, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: groupVersion}, "")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /apis/%s: %s", groupVersion, resp.Status)
	}
	var list metav1.APIResourceList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET /apis/%s: %w", groupVersion, err)
	}
	return &list, nil
}

// discover returns the served resources of the Gateway API and causeway.dev
// groups, by plural name, waiting for the Gateway API to be installed.
func (p *Provider) discover(ctx context.Context) (map[string]bool, error) {
	served := map[string]bool{}
	logged := false
	for {
		list, err := p.serverResources(ctx, gwv1.GroupVersion.String())
		if err == nil {
			for _, r := range list.APIResources {
				if !strings.Contains(r.Name, "/") {
					served[r.Name] = true
				}
			}
			break
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("kube provider: discovering %s: %w", gwv1.GroupVersion, err)
		}
		if !logged {
			p.log.Warn("the Gateway API CRDs are not installed; waiting for them", "group", gwv1.GroupVersion)
			logged = true
		}
		t := time.NewTimer(2 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if list, err := p.serverResources(ctx, v1alpha1.Group+"/"+v1alpha1.Version); err == nil {
		for _, r := range list.APIResources {
			if !strings.Contains(r.Name, "/") {
				served["causeway.dev/"+r.Name] = true
			}
		}
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("kube provider: discovering %s: %w", v1alpha1.Group, err)
	}
	var missing []string
	for _, r := range gatewayResources {
		if !served[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		p.log.Warn("some Gateway API kinds are not installed; they are not watched", "missing", missing)
	}
	return served, nil
}

// gatewayResources are the Gateway API kinds watched when served.
var gatewayResources = []string{"gatewayclasses", "gateways", "listenersets", "httproutes", "grpcroutes", "tlsroutes",
	"tcproutes", "udproutes", "referencegrants", "backendtlspolicies"}

// informer watches one resource, cluster-wide, as unstructured objects.
// It is built on the dynamic client and tools/cache alone: client-go's
// informer factories link every typed API client and scheme.
func (p *Provider) informer(gvr schema.GroupVersionResource) cache.SharedIndexInformer {
	ri := p.dyn.Resource(gvr)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return ri.Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, p.opts.Resync, cache.Indexers{})
}

// sources builds the informers of the served kinds.
func (p *Provider) sources(served map[string]bool) []*source {
	// Every kind is watched through dynamic informers and converted to
	// its type: typed clientsets would link schemes that register every
	// Kubernetes API type at init (~30 MB of idle RSS in every mode).
	dyn := func(group, version, plural string) cache.SharedIndexInformer {
		return p.informer(schema.GroupVersionResource{Group: group, Version: version, Resource: plural})
	}
	core := func(plural string) cache.SharedIndexInformer { return dyn("", "v1", plural) }
	gw := func(plural string) cache.SharedIndexInformer { return dyn("gateway.networking.k8s.io", "v1", plural) }
	out := []*source{
		{kind: "Namespace", informer: core("namespaces"), add: converted(func(s *resource.Snapshot, o *corev1.Namespace) { s.Namespaces = append(s.Namespaces, o) })},
		{kind: "Service", informer: core("services"), add: converted(func(s *resource.Snapshot, o *corev1.Service) { s.Services = append(s.Services, o) })},
		{kind: "EndpointSlice", informer: dyn("discovery.k8s.io", "v1", "endpointslices"), add: converted(func(s *resource.Snapshot, o *discoveryv1.EndpointSlice) {
			s.EndpointSlices = append(s.EndpointSlices, o)
		})},
		{kind: "Secret", informer: core("secrets"), add: converted(func(s *resource.Snapshot, o *corev1.Secret) { s.Secrets = append(s.Secrets, o) })},
		{kind: "ConfigMap", informer: core("configmaps"), add: converted(func(s *resource.Snapshot, o *corev1.ConfigMap) { s.ConfigMaps = append(s.ConfigMaps, o) })},
	}
	gwKinds := map[string]*source{
		"gatewayclasses":  {kind: "GatewayClass", informer: gw("gatewayclasses"), add: converted(func(s *resource.Snapshot, o *gwv1.GatewayClass) { s.GatewayClasses = append(s.GatewayClasses, o) })},
		"gateways":        {kind: "Gateway", informer: gw("gateways"), add: converted(func(s *resource.Snapshot, o *gwv1.Gateway) { s.Gateways = append(s.Gateways, o) })},
		"listenersets":    {kind: "ListenerSet", informer: gw("listenersets"), add: converted(func(s *resource.Snapshot, o *gwv1.ListenerSet) { s.ListenerSets = append(s.ListenerSets, o) })},
		"httproutes":      {kind: "HTTPRoute", informer: gw("httproutes"), add: converted(func(s *resource.Snapshot, o *gwv1.HTTPRoute) { s.HTTPRoutes = append(s.HTTPRoutes, o) })},
		"grpcroutes":      {kind: "GRPCRoute", informer: gw("grpcroutes"), add: converted(func(s *resource.Snapshot, o *gwv1.GRPCRoute) { s.GRPCRoutes = append(s.GRPCRoutes, o) })},
		"tlsroutes":       {kind: "TLSRoute", informer: gw("tlsroutes"), add: converted(func(s *resource.Snapshot, o *gwv1.TLSRoute) { s.TLSRoutes = append(s.TLSRoutes, o) })},
		"tcproutes":       {kind: "TCPRoute", informer: gw("tcproutes"), add: converted(func(s *resource.Snapshot, o *gwv1.TCPRoute) { s.TCPRoutes = append(s.TCPRoutes, o) })},
		"udproutes":       {kind: "UDPRoute", informer: gw("udproutes"), add: converted(func(s *resource.Snapshot, o *gwv1.UDPRoute) { s.UDPRoutes = append(s.UDPRoutes, o) })},
		"referencegrants": {kind: "ReferenceGrant", informer: gw("referencegrants"), add: converted(func(s *resource.Snapshot, o *gwv1.ReferenceGrant) { s.ReferenceGrants = append(s.ReferenceGrants, o) })},
		"backendtlspolicies": {kind: "BackendTLSPolicy", informer: gw("backendtlspolicies"), add: converted(func(s *resource.Snapshot, o *gwv1.BackendTLSPolicy) {
			s.BackendTLSPolicies = append(s.BackendTLSPolicies, o)
		})},
	}
	for _, r := range gatewayResources {
		if served[r] {
			gwKinds[r].gatewayAPI = true
			out = append(out, gwKinds[r])
		}
	}
	own := []struct {
		plural string
		src    *source
	}{
		{"backends", &source{kind: "Backend", add: converted(func(s *resource.Snapshot, o *v1alpha1.Backend) { s.Backends = append(s.Backends, o) })}},
		{"clienttrafficpolicies", &source{kind: "ClientTrafficPolicy", add: converted(func(s *resource.Snapshot, o *v1alpha1.ClientTrafficPolicy) {
			s.ClientTrafficPolicies = append(s.ClientTrafficPolicies, o)
		})}},
		{"backendtrafficpolicies", &source{kind: "BackendTrafficPolicy", add: converted(func(s *resource.Snapshot, o *v1alpha1.BackendTrafficPolicy) {
			s.BackendTrafficPolicies = append(s.BackendTrafficPolicies, o)
		})}},
	}
	for _, o := range own {
		if !served["causeway.dev/"+o.plural] {
			continue
		}
		gvr := schema.GroupVersionResource{Group: v1alpha1.Group, Version: v1alpha1.Version, Resource: o.plural}
		o.src.informer = p.informer(gvr)
		out = append(out, o.src)
	}
	return out
}

// converted returns an add function for a dynamic informer's objects:
// it converts them from unstructured to T and sorts them by namespace and
// name so that equal states give equal snapshots.
func converted[T any, PT interface {
	*T
	metav1.Object
}](app func(*resource.Snapshot, PT)) func(*resource.Snapshot, []any) error {
	return func(s *resource.Snapshot, objs []any) error {
		ts := make([]PT, 0, len(objs))
		for _, o := range objs {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				return fmt.Errorf("%T", o)
			}
			t := PT(new(T))
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
				s.Problems = append(s.Problems, resource.Problem{Message: fmt.Sprintf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)})
				continue
			}
			ts = append(ts, t)
		}
		sortObjects(ts)
		for _, t := range ts {
			app(s, t)
		}
		return nil
	}
}

func sortObjects[T metav1.Object](ts []T) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].GetNamespace() != ts[j].GetNamespace() {
			return ts[i].GetNamespace() < ts[j].GetNamespace()
		}
		return ts[i].GetName() < ts[j].GetName()
	})
}

// handler pokes on every change that can matter to the translation. On a
// Gateway API object, an update that leaves generation, labels and
// annotations alone is a status write (ours, mostly): it is not a change.
// Other kinds are not filtered: an EndpointSlice's endpoints turn ready
// without a new generation.
func handler(poke func(), gatewayAPI bool) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		DeleteFunc: func(any) { poke() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(metav1.Object)
			n, ok2 := newObj.(metav1.Object)
			if ok1 && ok2 {
				if o.GetResourceVersion() == n.GetResourceVersion() {
					return // resync
				}
				if gatewayAPI && n.GetGeneration() != 0 && o.GetGeneration() == n.GetGeneration() &&
					reflect.DeepEqual(o.GetLabels(), n.GetLabels()) &&
					reflect.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) &&
					o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) {
					return
				}
			}
			poke()
		},
	}
}
