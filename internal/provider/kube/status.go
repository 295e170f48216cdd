package kube

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
)

// StatusOptions configure a StatusWriter.
type StatusOptions struct {
	// Config reaches the API server (required).
	Config *rest.Config
	// ControllerName selects the GatewayClasses whose objects get a
	// status; "" means translate.ControllerName.
	ControllerName string
	// SupportedFeatures are published in the status of Causeway's
	// GatewayClasses (Gateway API feature names; the conformance suite
	// tests those when given no list of its own); nil publishes none.
	SupportedFeatures []string
	// Logger receives write failures; nil means slog.Default().
	Logger *slog.Logger
}

// StatusWriter writes translation reports to the Gateway API objects they
// concern: GatewayClass, Gateway (conditions, listeners, addresses) and the
// parent statuses of routes. It writes only to objects of Causeway's
// GatewayClasses, only what changed (conditions compared without their
// lastTransitionTime), and retries conflicts with the current object while
// its generation is the one translated. Updates are latest-wins: a report
// superseded before it was written is dropped.
type StatusWriter struct {
	opts StatusOptions
	log  *slog.Logger
	dyn  dynamic.Interface
	now  func() metav1.Time

	mu      sync.Mutex
	pending *job
	ready   chan struct{}

	written func(*resource.Snapshot) // test hook: a report was written

	// last holds each object as this writer last wrote it. The snapshot's
	// copy can predate that write (informers lag, and a status-only change
	// starts no translation), and comparing against it would miss a status
	// that returns to an earlier value. Only Run's goroutine uses it.
	last map[string]runtime.Object
	seen map[string]bool // keys put by the current write
}

// job is one report waiting to be written.
type job struct {
	snap  *resource.Snapshot
	rep   *status.Report
	addrs func(*gwv1.Gateway) []string
}

// NewStatusWriter returns a writer; nothing is written until Run.
func NewStatusWriter(opts StatusOptions) (*StatusWriter, error) {
	if opts.Config == nil {
		return nil, fmt.Errorf("status writer: no rest config")
	}
	if opts.ControllerName == "" {
		opts.ControllerName = translate.ControllerName
	}
	w := &StatusWriter{opts: opts, log: opts.Logger, ready: make(chan struct{}, 1),
		now: func() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }}
	if w.log == nil {
		w.log = slog.Default()
	}
	var err error
	if w.dyn, err = dynamic.NewForConfig(opts.Config); err != nil {
		return nil, fmt.Errorf("status writer: %w", err)
	}
	return w, nil
}

// Update queues rep, computed from snap, for writing; it never blocks.
// addrs gives the addresses a Gateway is served on (status.addresses);
// nil means its spec.addresses.
func (w *StatusWriter) Update(snap *resource.Snapshot, rep *status.Report, addrs func(*gwv1.Gateway) []string) {
	w.mu.Lock()
	w.pending = &job{snap: snap, rep: rep, addrs: addrs}
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// Run writes queued reports until ctx ends.
func (w *StatusWriter) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.ready:
		}
		w.mu.Lock()
		j := w.pending
		w.pending = nil
		w.mu.Unlock()
		if j != nil {
			w.write(ctx, j)
			if w.written != nil {
				w.written(j.snap)
			}
		}
	}
}

// write writes every status of one report.
func (w *StatusWriter) write(ctx context.Context, j *job) {
	w.seen = map[string]bool{}
	defer func() {
		for k := range w.last { // objects gone from the snapshot
			if !w.seen[k] {
				delete(w.last, k)
			}
		}
	}()
	index := map[status.Ref]*status.Resource{}
	for _, e := range j.rep.Resources {
		index[e.Ref] = e
	}
	entry := func(kind, ns, name string) *status.Resource {
		return index[status.Ref{Kind: kind, Namespace: ns, Name: name}]
	}
	ours := map[string]bool{}
	for _, gc := range j.snap.GatewayClasses {
		if string(gc.Spec.ControllerName) != w.opts.ControllerName {
			continue
		}
		ours[gc.Name] = true
		e := entry("GatewayClass", "", gc.Name)
		put(ctx, w, gc, func(o *gwv1.GatewayClass) bool { return w.classStatus(o, e) },
			dynGet[gwv1.GatewayClass](w.dyn, gvr("gatewayclasses"), ""), dynUpdate[gwv1.GatewayClass](w.dyn, gvr("gatewayclasses")))
	}
	ourGateways := map[string]bool{}
	for _, g := range j.snap.Gateways {
		if ours[string(g.Spec.GatewayClassName)] {
			ourGateways[g.Namespace+"/"+g.Name] = true
		}
	}
	sets := attachedListenerSets(j.snap, entry)
	for _, g := range j.snap.Gateways {
		if !ours[string(g.Spec.GatewayClassName)] {
			continue
		}
		e := entry("Gateway", g.Namespace, g.Name)
		var addrs []string
		if j.addrs != nil {
			addrs = j.addrs(g)
		}
		n := sets[g.Namespace+"/"+g.Name]
		put(ctx, w, g, func(o *gwv1.Gateway) bool {
			changed := w.gatewayStatus(o, e, addrs)
			return setAttachedListenerSets(o, n) || changed
		},
			dynGet[gwv1.Gateway](w.dyn, gvr("gateways"), g.Namespace), dynUpdate[gwv1.Gateway](w.dyn, gvr("gateways")))
	}
	for _, ls := range j.snap.ListenerSets {
		if !ourGateways[listenerSetParent(ls)] {
			continue
		}
		e := entry("ListenerSet", ls.Namespace, ls.Name)
		put(ctx, w, ls, func(o *gwv1.ListenerSet) bool { return w.listenerSetStatus(o, e) },
			dynGet[gwv1.ListenerSet](w.dyn, gvr("listenersets"), ls.Namespace), dynUpdate[gwv1.ListenerSet](w.dyn, gvr("listenersets")))
	}
	putRoutes(ctx, w, j.snap.HTTPRoutes, "HTTPRoute", "httproutes", entry,
		func(o *gwv1.HTTPRoute) (*gwv1.RouteStatus, []gwv1.ParentReference) {
			return &o.Status.RouteStatus, o.Spec.ParentRefs
		})
	putRoutes(ctx, w, j.snap.GRPCRoutes, "GRPCRoute", "grpcroutes", entry,
		func(o *gwv1.GRPCRoute) (*gwv1.RouteStatus, []gwv1.ParentReference) {
			return &o.Status.RouteStatus, o.Spec.ParentRefs
		})
	putRoutes(ctx, w, j.snap.TLSRoutes, "TLSRoute", "tlsroutes", entry,
		func(o *gwv1.TLSRoute) (*gwv1.RouteStatus, []gwv1.ParentReference) {
			return &o.Status.RouteStatus, o.Spec.ParentRefs
		})
	putRoutes(ctx, w, j.snap.TCPRoutes, "TCPRoute", "tcproutes", entry,
		func(o *gwv1.TCPRoute) (*gwv1.RouteStatus, []gwv1.ParentReference) {
			return &o.Status.RouteStatus, o.Spec.ParentRefs
		})
	for _, p := range j.snap.BackendTLSPolicies {
		e := entry("BackendTLSPolicy", p.Namespace, p.Name)
		put(ctx, w, p, func(o *gwv1.BackendTLSPolicy) bool { return w.policyStatus(&o.Status, o.Namespace, o.Generation, e) },
			dynGet[gwv1.BackendTLSPolicy](w.dyn, gvr("backendtlspolicies"), p.Namespace), dynUpdate[gwv1.BackendTLSPolicy](w.dyn, gvr("backendtlspolicies")))
	}
	putRoutes(ctx, w, j.snap.UDPRoutes, "UDPRoute", "udproutes", entry,
		func(o *gwv1.UDPRoute) (*gwv1.RouteStatus, []gwv1.ParentReference) {
			return &o.Status.RouteStatus, o.Spec.ParentRefs
		})
}

// putRoutes writes the parent statuses of the routes of one kind; parts
// gives a route's status and parentRefs.
func putRoutes[T any, PT interface {
	*T
	object
}](ctx context.Context, w *StatusWriter, routes []PT, kind, plural string,
	entry func(kind, ns, name string) *status.Resource, parts func(PT) (*gwv1.RouteStatus, []gwv1.ParentReference)) {
	for _, r := range routes {
		e := entry(kind, r.GetNamespace(), r.GetName())
		put(ctx, w, r, func(o PT) bool {
			rs, refs := parts(o)
			return w.routeStatus(rs, refs, o.GetGeneration(), e)
		}, dynGet[T, PT](w.dyn, gvr(plural), r.GetNamespace()), dynUpdate[T, PT](w.dyn, gvr(plural)))
	}
}

// object is what put needs of a typed API object.
type object interface {
	metav1.Object
	runtime.Object
}

// put brings obj's status to what desire computes (desire edits a copy and
// reports whether it changed anything) and writes it. On a conflict it
// starts again from the server's object, unless that object's generation is
// no longer the one translated (a newer report will come).
func put[T object](ctx context.Context, w *StatusWriter, obj T, desire func(T) bool,
	get func(context.Context, string) (T, error), update func(context.Context, T) (T, error)) {
	gen := obj.GetGeneration()
	key := fmt.Sprintf("%T/%s/%s", obj, obj.GetNamespace(), obj.GetName())
	w.seen[key] = true
	cur := obj
	if prev, ok := w.last[key].(T); ok && prev.GetGeneration() == gen && newer(prev, obj) {
		cur = prev
	}
	for attempt := 0; attempt < 5; attempt++ {
		o := cur.DeepCopyObject().(T)
		if !desire(o) {
			return
		}
		written, err := update(ctx, o)
		if err == nil {
			if w.last == nil {
				w.last = map[string]runtime.Object{}
			}
			w.last[key] = written
			return
		}
		if !apierrors.IsConflict(err) {
			if !apierrors.IsNotFound(err) && ctx.Err() == nil {
				w.log.Error("writing status", "kind", fmt.Sprintf("%T", obj), "namespace", obj.GetNamespace(), "name", obj.GetName(), "err", err)
			}
			return
		}
		fresh, err := get(ctx, obj.GetName())
		if err != nil || fresh.GetGeneration() != gen {
			return
		}
		cur = fresh
	}
	w.log.Warn("writing status: still conflicting after 5 attempts", "namespace", obj.GetNamespace(), "name", obj.GetName())
}

// newer reports whether a's resourceVersion is later than b's. Versions
// are opaque to clients, but etcd's are increasing integers; anything else
// counts as not newer, and the snapshot's copy is used (a stale base only
// costs a conflict and a fresh read).
func newer(a, b metav1.Object) bool {
	x, err1 := strconv.ParseUint(a.GetResourceVersion(), 10, 64)
	y, err2 := strconv.ParseUint(b.GetResourceVersion(), 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// conditions converts report conditions to API conditions stamped with
// generation; "Ignored" (the translator's note on others' resources) is
// not a Gateway API condition and is left out.
func conditions(in []status.Condition, gen int64) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(in))
	for _, c := range in {
		if c.Type == "Ignored" {
			continue
		}
		st := metav1.ConditionFalse
		if c.Status {
			st = metav1.ConditionTrue
		}
		msg := c.Message
		if len(msg) > 32000 {
			msg = msg[:32000]
		}
		out = append(out, metav1.Condition{Type: c.Type, Status: st, Reason: c.Reason, Message: msg, ObservedGeneration: gen})
	}
	return out
}

// mergeConditions returns want with the lastTransitionTime of cur's
// condition of the same type and status (now otherwise), and whether it
// differs from cur in anything but those times.
func mergeConditions(cur, want []metav1.Condition, now metav1.Time) ([]metav1.Condition, bool) {
	changed := len(cur) != len(want)
	for i := range want {
		w := &want[i]
		w.LastTransitionTime = now
		found := false
		for _, c := range cur {
			if c.Type != w.Type {
				continue
			}
			found = true
			if c.Status == w.Status {
				w.LastTransitionTime = c.LastTransitionTime
			}
			if c.Status != w.Status || c.Reason != w.Reason || c.Message != w.Message || c.ObservedGeneration != w.ObservedGeneration {
				changed = true
			}
		}
		if !found {
			changed = true
		}
	}
	return want, changed
}

// classStatus sets a GatewayClass's conditions: the report's Accepted and
// SupportedVersion (Causeway is built against the CRDs' version).
func (w *StatusWriter) classStatus(gc *gwv1.GatewayClass, e *status.Resource) bool {
	var in []status.Condition
	if e != nil {
		in = e.Conditions
	}
	want := conditions(in, gc.Generation)
	want = append(want, metav1.Condition{Type: string(gwv1.GatewayClassConditionStatusSupportedVersion), Status: metav1.ConditionTrue,
		Reason: string(gwv1.GatewayClassReasonSupportedVersion), Message: "the Gateway API version of the CRDs is supported", ObservedGeneration: gc.Generation})
	conds, changed := mergeConditions(gc.Status.Conditions, want, w.now())
	gc.Status.Conditions = conds
	feats := make([]gwv1.SupportedFeature, 0, len(w.opts.SupportedFeatures))
	for _, f := range w.opts.SupportedFeatures {
		feats = append(feats, gwv1.SupportedFeature{Name: gwv1.FeatureName(f)})
	}
	sort.Slice(feats, func(i, j int) bool { return feats[i].Name < feats[j].Name })
	if len(feats) != len(gc.Status.SupportedFeatures) {
		changed = true
	} else {
		for i := range feats {
			if feats[i].Name != gc.Status.SupportedFeatures[i].Name {
				changed = true
			}
		}
	}
	if len(feats) == 0 {
		feats = nil
	}
	gc.Status.SupportedFeatures = feats
	return changed
}

// gatewayStatus sets a Gateway's conditions, listeners and addresses.
func (w *StatusWriter) gatewayStatus(g *gwv1.Gateway, e *status.Resource, addrs []string) bool {
	if e == nil {
		return false
	}
	now := w.now()
	conds, changed := mergeConditions(g.Status.Conditions, conditions(e.Conditions, g.Generation), now)
	g.Status.Conditions = conds

	var wantAddrs []gwv1.GatewayStatusAddress
	if len(addrs) == 0 {
		for _, a := range g.Spec.Addresses {
			wantAddrs = append(wantAddrs, gwv1.GatewayStatusAddress(a))
		}
	}
	ip := gwv1.IPAddressType
	for _, a := range addrs {
		if a != "" {
			wantAddrs = append(wantAddrs, gwv1.GatewayStatusAddress{Type: &ip, Value: a})
		}
	}
	if !equalAddresses(g.Status.Addresses, wantAddrs) {
		g.Status.Addresses, changed = wantAddrs, true
	}

	ls, c := listenerStatuses(g.Status.Listeners, e.Listeners, g.Generation, now)
	g.Status.Listeners = ls
	return changed || c
}

// listenerStatuses converts report listeners to API listener statuses
// (a Gateway's, or a ListenerSet's after conversion), keeping the
// transition times of cur, and reports whether they differ from cur.
func listenerStatuses(curList []gwv1.ListenerStatus, in []status.Listener, gen int64, now metav1.Time) ([]gwv1.ListenerStatus, bool) {
	changed := false
	ls := make([]gwv1.ListenerStatus, 0, len(in))
	group := gwv1.Group(gwv1.GroupName)
	for _, l := range in {
		var cur *gwv1.ListenerStatus
		for i := range curList {
			if string(curList[i].Name) == l.Name {
				cur = &curList[i]
			}
		}
		st := gwv1.ListenerStatus{Name: gwv1.SectionName(l.Name), AttachedRoutes: l.AttachedRoutes, SupportedKinds: []gwv1.RouteGroupKind{}}
		for _, k := range l.SupportedKinds {
			st.SupportedKinds = append(st.SupportedKinds, gwv1.RouteGroupKind{Group: &group, Kind: gwv1.Kind(k)})
		}
		var curConds []metav1.Condition
		if cur == nil {
			changed = true
		} else {
			curConds = cur.Conditions
			if cur.AttachedRoutes != st.AttachedRoutes || !equalKinds(cur.SupportedKinds, st.SupportedKinds) {
				changed = true
			}
		}
		var c bool
		st.Conditions, c = mergeConditions(curConds, conditions(l.Conditions, gen), now)
		changed = changed || c
		ls = append(ls, st)
	}
	if len(ls) != len(curList) {
		changed = true
	}
	return ls, changed
}

// listenerSetStatus sets a ListenerSet's conditions and listeners.
func (w *StatusWriter) listenerSetStatus(ls *gwv1.ListenerSet, e *status.Resource) bool {
	if e == nil || ignored(e.Conditions) {
		return false
	}
	now := w.now()
	conds, changed := mergeConditions(ls.Status.Conditions, conditions(e.Conditions, ls.Generation), now)
	ls.Status.Conditions = conds
	cur := make([]gwv1.ListenerStatus, len(ls.Status.Listeners))
	for i, l := range ls.Status.Listeners {
		cur[i] = gwv1.ListenerStatus(l)
	}
	want, c := listenerStatuses(cur, e.Listeners, ls.Generation, now)
	ls.Status.Listeners = make([]gwv1.ListenerEntryStatus, len(want))
	for i, l := range want {
		ls.Status.Listeners[i] = gwv1.ListenerEntryStatus(l)
	}
	if len(want) == 0 {
		ls.Status.Listeners = nil
	}
	return changed || c
}

// listenerSetParent is the "namespace/name" of the Gateway a ListenerSet
// names as its parent ("" when the parent is not a Gateway).
func listenerSetParent(ls *gwv1.ListenerSet) string {
	ref := ls.Spec.ParentRef
	if ref.Group != nil && *ref.Group != gwv1.GroupName || ref.Kind != nil && *ref.Kind != "Gateway" {
		return ""
	}
	ns := ls.Namespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	return ns + "/" + string(ref.Name)
}

// attachedListenerSets counts, per Gateway "namespace/name", the
// ListenerSets the report accepts: Gateway API's status.attachedListenerSets.
func attachedListenerSets(snap *resource.Snapshot, entry func(kind, ns, name string) *status.Resource) map[string]int32 {
	out := map[string]int32{}
	for _, ls := range snap.ListenerSets {
		e := entry("ListenerSet", ls.Namespace, ls.Name)
		if e == nil {
			continue
		}
		for _, c := range e.Conditions {
			if c.Type == status.Accepted && c.Status {
				out[listenerSetParent(ls)]++
			}
		}
	}
	return out
}

// setAttachedListenerSets sets a Gateway's status.attachedListenerSets to
// n, leaving it unset while it is unset and n is 0 (so that CRDs older
// than the field, which prune it, do not see a change on every report).
func setAttachedListenerSets(g *gwv1.Gateway, n int32) bool {
	cur := g.Status.AttachedListenerSets
	if cur == nil && n == 0 || cur != nil && *cur == n {
		return false
	}
	g.Status.AttachedListenerSets = &n
	return true
}

func equalAddresses(a, b []gwv1.GatewayStatusAddress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ta, tb := gwv1.IPAddressType, gwv1.IPAddressType
		if a[i].Type != nil {
			ta = *a[i].Type
		}
		if b[i].Type != nil {
			tb = *b[i].Type
		}
		if ta != tb || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

func equalKinds(a, b []gwv1.RouteGroupKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ga, gb := "", ""
		if a[i].Group != nil {
			ga = string(*a[i].Group)
		}
		if b[i].Group != nil {
			gb = string(*b[i].Group)
		}
		if ga != gb || a[i].Kind != b[i].Kind {
			return false
		}
	}
	return true
}

// routeStatus sets the parent statuses of a route that are Causeway's: one
// per parentRef the translator judged (other controllers' Gateways are
// skipped), keeping the entries other controllers wrote.
func (w *StatusWriter) routeStatus(rs *gwv1.RouteStatus, refs []gwv1.ParentReference, gen int64, e *status.Resource) bool {
	if e == nil {
		return false
	}
	ctrl := gwv1.GatewayController(w.opts.ControllerName)
	now := w.now()
	var out []gwv1.RouteParentStatus
	for _, p := range rs.Parents {
		if p.ControllerName != ctrl {
			out = append(out, p)
		}
	}
	changed := false
	mine := 0
	for i, ref := range refs {
		if i >= len(e.Parents) || ignored(e.Parents[i].Conditions) {
			continue
		}
		mine++
		var cur *gwv1.RouteParentStatus
		for k := range rs.Parents {
			if rs.Parents[k].ControllerName == ctrl && sameParent(rs.Parents[k].ParentRef, ref) {
				cur = &rs.Parents[k]
			}
		}
		var curConds []metav1.Condition
		if cur == nil {
			changed = true
		} else {
			curConds = cur.Conditions
		}
		conds, c := mergeConditions(curConds, conditions(e.Parents[i].Conditions, gen), now)
		changed = changed || c
		out = append(out, gwv1.RouteParentStatus{ParentRef: ref, ControllerName: ctrl, Conditions: conds})
	}
	had := 0
	for _, p := range rs.Parents {
		if p.ControllerName == ctrl {
			had++
		}
	}
	if had != mine {
		changed = true
	}
	if len(out) > 32 { // the CRD's limit
		out = out[:32]
	}
	if !changed {
		return false
	}
	if out == nil {
		out = []gwv1.RouteParentStatus{}
	}
	rs.Parents = out
	return true
}

// policyStatus sets a policy's ancestor statuses that are Causeway's: one
// per report parent (a Gateway the policy is in force through, or a target
// it failed to attach to), keeping the entries other controllers wrote.
func (w *StatusWriter) policyStatus(ps *gwv1.PolicyStatus, ns string, gen int64, e *status.Resource) bool {
	if e == nil {
		return false
	}
	ctrl := gwv1.GatewayController(w.opts.ControllerName)
	var out []gwv1.PolicyAncestorStatus
	had := 0
	for _, a := range ps.Ancestors {
		if a.ControllerName != ctrl {
			out = append(out, a)
		} else {
			had++
		}
	}
	changed := had != len(e.Parents)
	for _, par := range e.Parents {
		ref := ancestorRef(par, ns)
		var curConds []metav1.Condition
		found := false
		for _, a := range ps.Ancestors {
			if a.ControllerName == ctrl && sameParent(a.AncestorRef, ref) {
				curConds, found = a.Conditions, true
			}
		}
		conds, c := mergeConditions(curConds, conditions(par.Conditions, gen), w.now())
		changed = changed || c || !found
		out = append(out, gwv1.PolicyAncestorStatus{AncestorRef: ref, ControllerName: ctrl, Conditions: conds})
	}
	if len(out) > 16 { // the CRD's limit
		out = out[:16]
	}
	if !changed {
		return false
	}
	if out == nil {
		out = []gwv1.PolicyAncestorStatus{}
	}
	ps.Ancestors = out
	return true
}

// ancestorRef turns a report parent into a Gateway API reference: Gateways
// in the Gateway API group, anything else (a Service target) in core.
func ancestorRef(p status.Parent, policyNS string) gwv1.ParentReference {
	group, kind := gwv1.Group(""), gwv1.Kind(p.Ref.Kind)
	if p.Ref.Kind == "Gateway" {
		group = gwv1.GroupName
	}
	ref := gwv1.ParentReference{Group: &group, Kind: &kind, Name: gwv1.ObjectName(p.Ref.Name)}
	if p.Ref.Namespace != "" && p.Ref.Namespace != policyNS || p.Ref.Kind == "Gateway" {
		n := gwv1.Namespace(p.Ref.Namespace)
		ref.Namespace = &n
	}
	if p.SectionName != "" {
		sn := gwv1.SectionName(p.SectionName)
		ref.SectionName = &sn
	}
	return ref
}

func ignored(cs []status.Condition) bool {
	for _, c := range cs {
		if c.Type == "Ignored" {
			return true
		}
	}
	return false
}

// sameParent compares parent references field by field, pointers by value.
func sameParent(a, b gwv1.ParentReference) bool {
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	str := func(v any) string { return fmt.Sprint(v) }
	pa, pb := "", ""
	if a.Port != nil {
		pa = str(*a.Port)
	}
	if b.Port != nil {
		pb = str(*b.Port)
	}
	return a.Name == b.Name && pa == pb &&
		s((*string)(a.Group)) == s((*string)(b.Group)) && s((*string)(a.Kind)) == s((*string)(b.Kind)) &&
		s((*string)(a.Namespace)) == s((*string)(b.Namespace)) && s((*string)(a.SectionName)) == s((*string)(b.SectionName))
}

// gvr names a Gateway API v1 resource. Status goes through the dynamic
// client so that no typed clientset, and so no scheme registering every
// API type at init, is linked into the binary (that alone cost the
// gateway ~30 MB of idle RSS).
func gvr(plural string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: plural}
}

// dynGet reads one object of a kind through the dynamic client, typed.
func dynGet[T any, PT interface {
	*T
	object
}](dyn dynamic.Interface, r schema.GroupVersionResource, ns string) func(context.Context, string) (PT, error) {
	return func(ctx context.Context, name string) (PT, error) {
		u, err := dyn.Resource(r).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		t := PT(new(T))
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
			return nil, err
		}
		return t, nil
	}
}

// dynUpdate writes an object's status subresource through the dynamic
// client.
func dynUpdate[T any, PT interface {
	*T
	object
}](dyn dynamic.Interface, r schema.GroupVersionResource) func(context.Context, PT) (PT, error) {
	return func(ctx context.Context, o PT) (PT, error) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetAPIVersion(r.Group + "/" + r.Version)
		u.SetKind(reflect.TypeFor[T]().Name())
		out, err := dyn.Resource(r).Namespace(o.GetNamespace()).UpdateStatus(ctx, u, metav1.UpdateOptions{})
		if err != nil {
			return nil, err
		}
		t := PT(new(T))
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(out.Object, t); err != nil {
			return nil, err
		}
		return t, nil
	}
}
