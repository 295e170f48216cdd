// Package leader elects one leader among the replicas of `causeway
// controller`. Every replica watches the API server and serves traffic; only
// the leader writes status (and, later, provisions). The election is a
// coordination.k8s.io/v1 Lease reached through the dynamic client: client-go's
// tools/leaderelection links the typed clientsets that cmd/causeway keeps out
// (see test/arch.TestNoTypedClientsets).
//
// Clock skew between replicas does not matter: a replica never compares the
// times written in the Lease with its own clock. It notes, on its own
// monotonic clock, when it last saw the Lease change (its resourceVersion),
// and holds the Lease expired once it has seen no change for the holder's
// leaseDurationSeconds. The leader gives up leadership when it has not
// renewed for RenewDeadline, which is shorter than the lease duration, so it
// stops before another replica can take over.
package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Config configures an Elector.
type Config struct {
	// Config reaches the API server (required).
	Config *rest.Config
	// Namespace of the Lease (required).
	Namespace string
	// Name of the Lease; "" means "causeway-controller". Replicas that
	// share a name elect one leader among them.
	Name string
	// Identity of this replica, written as the Lease's holder; "" means
	// the hostname (the pod name in a cluster) and a random suffix.
	Identity string
	// LeaseDuration is how long followers wait, after they last saw the
	// Lease renewed, before they take it over; 0 means 15s. It bounds the
	// time without a leader when a leader dies without releasing.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// steps down; 0 means 10s. Less than LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts to acquire or renew;
	// 0 means 2s. Less than RenewDeadline.
	RetryPeriod time.Duration
	// Logger receives leadership changes; nil means slog.Default().
	Logger *slog.Logger
}

// Elector takes part in one election. Its methods are safe for concurrent
// use; Run is called once.
type Elector struct {
	cfg     Config
	log     *slog.Logger
	leases  dynamic.ResourceInterface
	leading atomic.Bool

	obs observer // touched by Run's goroutine only
}

var leaseGVR = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// New checks cfg and returns an Elector; nothing is sent until Run.
func New(cfg Config) (*Elector, error) {
	if cfg.Config == nil {
		return nil, errors.New("leader: no rest config")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("leader: no namespace")
	}
	if cfg.Name == "" {
		cfg.Name = "causeway-controller"
	}
	if cfg.Identity == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.Identity = host + "_" + hex.EncodeToString(b)
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 15 * time.Second
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = 10 * time.Second
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = 2 * time.Second
	}
	if cfg.RenewDeadline >= cfg.LeaseDuration || cfg.RetryPeriod >= cfg.RenewDeadline {
		return nil, fmt.Errorf("leader: want retry period (%v) < renew deadline (%v) < lease duration (%v)",
			cfg.RetryPeriod, cfg.RenewDeadline, cfg.LeaseDuration)
	}
	if cfg.LeaseDuration < time.Second {
		return nil, errors.New("leader: lease duration under 1s")
	}
	dyn, err := dynamic.NewForConfig(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	e := &Elector{cfg: cfg, log: cfg.Logger, leases: dyn.Resource(leaseGVR).Namespace(cfg.Namespace)}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
	return e, nil
}

// Identity is the holder name this replica writes in the Lease.
func (e *Elector) Identity() string { return e.cfg.Identity }

// IsLeader reports whether this replica holds the Lease now.
func (e *Elector) IsLeader() bool { return e.leading.Load() }

// Run takes part in the election until ctx ends. Each time this replica
// becomes leader, it calls lead in a new goroutine with a context that ends
// when leadership is lost or ctx ends; lead must return soon after. Run
// waits for lead to return before it competes again, and, when ctx ends,
// before it releases the Lease, so that a follower can take over at once:
// nothing lead does overlaps the next leader. The error is that of the
// release.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) error {
	for {
		if !e.acquire(ctx) {
			return nil
		}
		lctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { lead(lctx) })
		e.renew(ctx)
		e.leading.Store(false)
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return e.release()
		}
		e.log.Warn("lost leadership")
	}
}

// acquire tries every RetryPeriod until this replica holds the Lease
// (true) or ctx ends (false).
func (e *Elector) acquire(ctx context.Context) bool {
	t := time.NewTicker(e.cfg.RetryPeriod)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
		ok, err := e.tryAcquireOrRenew(actx)
		cancel()
		if err != nil && ctx.Err() == nil {
			e.log.Debug("lease not acquired", "error", err)
		}
		if ok {
			e.leading.Store(true)
			e.log.Info("became leader")
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// renew renews every RetryPeriod until a renewal has failed for
// RenewDeadline, another replica holds the Lease, or ctx ends.
func (e *Elector) renew(ctx context.Context) {
	t := time.NewTicker(e.cfg.RetryPeriod)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		deadline := last.Add(e.cfg.RenewDeadline)
		rctx, cancel := context.WithDeadline(ctx, deadline)
		ok, err := e.tryAcquireOrRenew(rctx)
		cancel()
		switch {
		case ok:
			last = time.Now()
		case ctx.Err() != nil:
			return
		case err == nil: // someone else holds it
			return
		case !time.Now().Before(deadline):
			e.log.Warn("lease not renewed in time", "error", err)
			return
		}
	}
}

// tryAcquireOrRenew makes this replica the Lease's holder, or renews it.
// It reports false with a nil error when another replica holds it.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) (bool, error) {
	now := metav1.NewMicroTime(time.Now())
	dur := int32((e.cfg.LeaseDuration + time.Second - 1) / time.Second)
	u, err := e.leases.Get(ctx, e.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := &coordv1.Lease{
			TypeMeta:   metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
			ObjectMeta: metav1.ObjectMeta{Name: e.cfg.Name, Namespace: e.cfg.Namespace},
			Spec: coordv1.LeaseSpec{HolderIdentity: &e.cfg.Identity, LeaseDurationSeconds: &dur,
				AcquireTime: &now, RenewTime: &now, LeaseTransitions: new(int32(0))},
		}
		obj, err := toUnstructured(l)
		if err != nil {
			return false, err
		}
		if _, err := e.leases.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("creating lease: %w", err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("getting lease: %w", err)
	}
	var l coordv1.Lease
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &l); err != nil {
		return false, fmt.Errorf("decoding lease: %w", err)
	}
	rec := recordOf(&l)
	e.obs.observe(rec, time.Now())
	if rec.holder != "" && rec.holder != e.cfg.Identity && !e.obs.expired(time.Now()) {
		return false, nil
	}
	if rec.holder != e.cfg.Identity {
		l.Spec.AcquireTime = &now
		l.Spec.LeaseTransitions = new(deref(l.Spec.LeaseTransitions) + 1)
	}
	l.Spec.HolderIdentity = &e.cfg.Identity
	l.Spec.LeaseDurationSeconds = &dur
	l.Spec.RenewTime = &now
	obj, err := toUnstructured(&l)
	if err != nil {
		return false, err
	}
	// The resourceVersion read above makes this a compare-and-swap: of two
	// replicas taking over the same expired Lease, one gets a conflict.
	if _, err := e.leases.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("updating lease: %w", err)
	}
	return true, nil
}

// release hands the Lease back (no holder), so that a follower takes it at
// its next attempt rather than after the lease duration.
func (e *Elector) release() error {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RenewDeadline)
	defer cancel()
	u, err := e.leases.Get(ctx, e.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("leader: releasing lease: %w", err)
	}
	var l coordv1.Lease
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &l); err != nil {
		return fmt.Errorf("leader: releasing lease: %w", err)
	}
	if deref(l.Spec.HolderIdentity) != e.cfg.Identity {
		return nil
	}
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity = nil
	l.Spec.LeaseDurationSeconds = new(int32(1))
	l.Spec.RenewTime = &now
	obj, err := toUnstructured(&l)
	if err != nil {
		return err
	}
	if _, err := e.leases.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("leader: releasing lease: %w", err)
	}
	e.log.Info("released leadership")
	return nil
}

func toUnstructured(l *coordv1.Lease) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(l)
	if err != nil {
		return nil, fmt.Errorf("encoding lease: %w", err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion("coordination.k8s.io/v1")
	u.SetKind("Lease")
	return u, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// record is what the election reads of a Lease.
type record struct {
	holder          string
	durationSeconds int32
	// version changes on every write to the Lease (its resourceVersion).
	version string
}

func recordOf(l *coordv1.Lease) record {
	return record{holder: deref(l.Spec.HolderIdentity), durationSeconds: deref(l.Spec.LeaseDurationSeconds), version: l.ResourceVersion}
}

// observer remembers when, on the local monotonic clock, the Lease was last
// seen to change: expiry is judged from that, never from the times the
// holder wrote, so clocks that disagree between replicas do not matter.
type observer struct {
	rec  record
	seen time.Time
}

// observe notes rec, read at now.
func (o *observer) observe(rec record, now time.Time) {
	if rec != o.rec || o.seen.IsZero() {
		o.rec, o.seen = rec, now
	}
}

// expired reports whether the observed holder has let its lease run out:
// no change seen for its lease duration.
func (o *observer) expired(now time.Time) bool {
	return now.Sub(o.seen) > time.Duration(o.rec.durationSeconds)*time.Second
}
