// Package lease shares the fleet view of `causeway control` replicas
// through the Kubernetes API, so that a Gateway's Programmed condition
// counts the proxies of every replica, not only those of the replica that
// writes it. It sits between push.Server (one replica's proxies) and
// push.Reporter (statuses written to the cluster).
//
// Each replica publishes its push.GatewayFleet by Gateway in a
// coordination.k8s.io/v1 Lease of its own, "causeway-control-IDENTITY",
// renewed every few seconds and on every change of its fleet, and watches
// the Leases of the others. Its Fleet is push.Merge of its own fleet and
// of every live replica's. Every replica computes the same merge from the
// same Leases, so the status writers of all replicas write the same
// condition and converge; a replica that stops renewing drops out after
// its lease duration.
//
// Liveness is judged as in internal/leader: on the local monotonic clock,
// from when a Lease was last seen to change, so that replicas' clocks need
// not agree. Only a Lease seen for the first time is aged by its
// renewTime, so that a replica starting after another died does not count
// the dead one's proxies for a whole lease duration.
//
// Everything goes through the dynamic client and tools/cache
// (test/arch.TestNoTypedClientsets).
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"causeway.dev/causeway/internal/push"
)

const (
	// NamePrefix starts the name of every replica's Lease.
	NamePrefix = "causeway-control-"
	// Annotation holds a replica's fleet: compact JSON of
	// map[string]push.GatewayFleet, by Gateway.
	Annotation = "causeway.dev/fleet"
	// Label marks the fleet Leases, the only ones watched.
	Label = "causeway.dev/control-fleet"
)

var leaseGVR = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// Local is this replica's fleet: a *push.Server.
type Local interface {
	push.FleetView
	GatewayVersions() map[string]string
}

// Options configure a Fleet.
type Options struct {
	// Config reaches the API server (required).
	Config *rest.Config
	// Namespace of the Leases (required); replicas sharing it share
	// their fleets.
	Namespace string
	// Identity of this replica: its Lease's holder, and its name after
	// NamePrefix (made a valid name). "" means the hostname and a random
	// suffix.
	Identity string
	// Duration is how long after its last renewal a replica's fleet
	// still counts; 0 means 15s.
	Duration time.Duration
	// Renew is how often the Lease is renewed besides on changes; 0
	// means a third of Duration.
	Renew time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Fleet is the fleet across live replicas: a push.FleetView for a
// push.Reporter. It is the only consumer of its Local's Changes. Its
// methods are safe for concurrent use; Run is called once.
type Fleet struct {
	opts     Options
	log      *slog.Logger
	local    Local
	leases   dynamic.ResourceInterface
	name     string
	informer cache.SharedIndexInformer
	synced   chan struct{}
	changed  chan struct{}
	kick     chan struct{}

	mu    sync.Mutex
	peers map[string]*peer // other replicas, by Lease name
}

// peer is what a replica's Lease says, and when it last changed.
type peer struct {
	version  string // resourceVersion
	duration time.Duration
	seen     time.Time // local clock
	fleet    map[string]push.GatewayFleet
	reaped   bool // deletion of the long-expired Lease attempted
}

func (p *peer) live(now time.Time) bool { return now.Sub(p.seen) <= p.duration }

// New returns a Fleet of local; nothing is sent until Run.
func New(local Local, opts Options) (*Fleet, error) {
	if opts.Config == nil {
		return nil, errors.New("lease: no rest config")
	}
	if opts.Namespace == "" {
		return nil, errors.New("lease: no namespace")
	}
	if opts.Identity == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Identity = host + "-" + hex.EncodeToString(b)
	}
	if opts.Duration == 0 {
		opts.Duration = 15 * time.Second
	}
	if opts.Duration < time.Second {
		return nil, errors.New("lease: duration under 1s")
	}
	if opts.Renew == 0 {
		opts.Renew = opts.Duration / 3
	}
	if opts.Renew >= opts.Duration {
		return nil, fmt.Errorf("lease: renewal period %v not under the duration %v", opts.Renew, opts.Duration)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dyn, err := dynamic.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	f := &Fleet{opts: opts, local: local, leases: dyn.Resource(leaseGVR).Namespace(opts.Namespace),
		name:   NamePrefix + dnsName(opts.Identity),
		synced: make(chan struct{}), changed: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		peers: map[string]*peer{}}
	f.log = opts.Logger.With("lease", opts.Namespace+"/"+f.name)
	sel := Label + "=true"
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return f.leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return f.leases.Watch(ctx, o)
		},
	}
	f.informer = cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	_, err = f.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { f.observe(o, time.Now()) },
		UpdateFunc: func(_, o any) { f.observe(o, time.Now()) },
		DeleteFunc: f.forget,
	})
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	return f, nil
}

// Name is the name of this replica's Lease.
func (f *Fleet) Name() string { return f.name }

// Changes receives (coalesced) after Fleet changed.
func (f *Fleet) Changes() <-chan struct{} { return f.changed }

// WaitSynced returns once the Leases of the other replicas have been
// read, so that nothing is written from this replica's fleet alone.
func (f *Fleet) WaitSynced(ctx context.Context) error {
	select {
	case <-f.synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lease: watching fleet leases in %s: %w", f.opts.Namespace, ctx.Err())
	}
}

// Fleet is this replica's fleet merged with every live replica's.
func (f *Fleet) Fleet() map[string]push.GatewayFleet {
	now := time.Now()
	fleets := []map[string]push.GatewayFleet{f.local.Fleet()}
	f.mu.Lock()
	for _, p := range f.peers {
		if p.live(now) {
			fleets = append(fleets, p.fleet)
		}
	}
	f.mu.Unlock()
	return push.Merge(f.local.GatewayVersions(), fleets...)
}

// Run publishes this replica's Lease and watches the others' until ctx
// ends, then deletes its Lease so that the others drop its fleet at once.
func (f *Fleet) Run(ctx context.Context) error {
	go f.informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), f.informer.HasSynced) {
		return nil
	}
	close(f.synced)
	f.publish(ctx)
	renew := time.NewTicker(f.opts.Renew)
	defer renew.Stop()
	// Expiry happens without an event: look once a second.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last map[string]push.GatewayFleet
	check := func() {
		if m := f.Fleet(); !maps.Equal(m, last) {
			last = m
			select {
			case f.changed <- struct{}{}:
			default:
			}
		}
	}
	check()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := f.leases.Delete(dctx, f.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("lease: deleting %s: %w", f.name, err)
			}
			return nil
		case <-f.local.Changes():
			check()
			f.publish(ctx)
		case <-renew.C:
			f.publish(ctx)
		case <-f.kick:
			check()
		case <-tick.C:
			check()
			f.reap(ctx)
		}
	}
}

// publish writes this replica's Lease with its fleet now (server-side
// apply: one request, creating it the first time).
func (f *Fleet) publish(ctx context.Context) {
	b, err := json.Marshal(f.local.Fleet())
	if err != nil {
		f.log.Error("fleet lease not written", "error", err)
		return
	}
	now := metav1.NewMicroTime(time.Now())
	dur := int32((f.opts.Duration + time.Second - 1) / time.Second)
	l := &coordv1.Lease{
		TypeMeta: metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
		ObjectMeta: metav1.ObjectMeta{Name: f.name, Namespace: f.opts.Namespace,
			Labels: map[string]string{Label: "true"}, Annotations: map[string]string{Annotation: string(b)}},
		Spec: coordv1.LeaseSpec{HolderIdentity: &f.opts.Identity, LeaseDurationSeconds: &dur, RenewTime: &now},
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(l)
	if err != nil {
		f.log.Error("fleet lease not written", "error", err)
		return
	}
	delete(m["metadata"].(map[string]any), "creationTimestamp")
	actx, cancel := context.WithTimeout(ctx, f.opts.Renew)
	defer cancel()
	_, err = f.leases.Apply(actx, f.name, &unstructured.Unstructured{Object: m},
		metav1.ApplyOptions{FieldManager: "causeway-control", Force: true})
	if err != nil && ctx.Err() == nil {
		f.log.Warn("fleet lease not renewed", "error", err)
	}
}

// observe records a Lease from the watch.
func (f *Fleet) observe(o any, now time.Time) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok || u.GetName() == f.name {
		return
	}
	var l coordv1.Lease
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &l); err != nil {
		f.log.Warn("fleet lease unreadable", "name", u.GetName(), "error", err)
		return
	}
	f.mu.Lock()
	p := f.peers[l.Name]
	if p != nil && p.version == l.ResourceVersion {
		f.mu.Unlock()
		return
	}
	np := &peer{version: l.ResourceVersion, duration: time.Second, seen: now}
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d > 0 {
		np.duration = time.Duration(*d) * time.Second
	}
	if p == nil {
		np.seen = now.Add(-firstAge(l.Spec.RenewTime, now, np.duration))
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		np.seen = now.Add(-np.duration - time.Second) // released
	}
	if a := l.Annotations[Annotation]; a != "" {
		if err := json.Unmarshal([]byte(a), &np.fleet); err != nil {
			f.log.Warn("fleet lease unreadable", "name", l.Name, "error", err)
		}
	}
	f.peers[l.Name] = np
	f.mu.Unlock()
	f.poke()
}

// firstAge is how old a Lease seen for the first time is taken to be: the
// time since its renewTime by this replica's clock, within [0, d+1s].
func firstAge(renew *metav1.MicroTime, now time.Time, d time.Duration) time.Duration {
	if renew == nil {
		return 0
	}
	return min(max(now.Sub(renew.Time), 0), d+time.Second)
}

func (f *Fleet) forget(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	f.mu.Lock()
	delete(f.peers, u.GetName())
	f.mu.Unlock()
	f.poke()
}

func (f *Fleet) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// reap deletes the Leases of replicas gone for four lease durations (a
// crashed replica never deletes its own), once each; the resourceVersion
// precondition spares a Lease renewed meanwhile.
func (f *Fleet) reap(ctx context.Context) {
	now := time.Now()
	type victim struct{ name, version string }
	var vs []victim
	f.mu.Lock()
	for n, p := range f.peers {
		if !p.reaped && now.Sub(p.seen) > 4*p.duration {
			p.reaped = true
			vs = append(vs, victim{n, p.version})
		}
	}
	f.mu.Unlock()
	for _, v := range vs {
		err := f.leases.Delete(ctx, v.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &v.version}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			f.log.Debug("expired fleet lease not deleted", "name", v.name, "error", err)
		} else if err == nil {
			f.log.Info("deleted the fleet lease of a replica gone", "name", v.name)
		}
	}
}

// dnsName makes s a valid part of an object name: lower case letters,
// digits, '-' and '.', starting and ending alphanumeric.
func dnsName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			b[i] = '-'
		}
	}
	out := strings.Trim(string(b), "-.")
	if len(out) > 253-len(NamePrefix) {
		out = strings.TrimRight(out[:253-len(NamePrefix)], "-.")
	}
	if out == "" {
		out = "replica"
	}
	return out
}
