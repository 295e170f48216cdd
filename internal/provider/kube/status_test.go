package kube

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
)

func testWriter(now time.Time) *StatusWriter {
	return &StatusWriter{opts: StatusOptions{ControllerName: translate.ControllerName},
		now: func() metav1.Time { return metav1.NewTime(now) }}
}

func TestClassStatusWritesOnceAndKeepsTransitionTimes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := testWriter(t0)
	gc := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 3}}
	e := &status.Resource{Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted, Message: "ok"}}}
	if !w.classStatus(gc, e) {
		t.Fatal("first write: no change reported")
	}
	if len(gc.Status.Conditions) != 2 {
		t.Fatalf("conditions = %+v, want Accepted and SupportedVersion", gc.Status.Conditions)
	}
	for _, c := range gc.Status.Conditions {
		if c.ObservedGeneration != 3 || c.Status != metav1.ConditionTrue || !c.LastTransitionTime.Time.Equal(t0) {
			t.Errorf("condition %+v: want True, generation 3, time %v", c, t0)
		}
	}
	w.now = func() metav1.Time { return metav1.NewTime(t0.Add(time.Hour)) }
	if w.classStatus(gc, e) {
		t.Error("same report written twice")
	}
	gc.Generation = 4
	if !w.classStatus(gc, e) {
		t.Fatal("generation bump not written")
	}
	if got := gc.Status.Conditions[0]; got.ObservedGeneration != 4 || !got.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("after bump: %+v; want generation 4 and the unchanged transition time", got)
	}
}

func TestGatewayStatusAddressesAndListeners(t *testing.T) {
	w := testWriter(time.Unix(100, 0))
	g := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns", Generation: 2}}
	e := &status.Resource{
		Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: "Accepted"}, {Type: status.Programmed, Status: true, Reason: "Programmed"}},
		Listeners: []status.Listener{{Name: "http", AttachedRoutes: 2, SupportedKinds: []string{"HTTPRoute", "GRPCRoute"},
			Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: "Accepted"}}}},
	}
	if !w.gatewayStatus(g, e, []string{"127.0.2.7"}) {
		t.Fatal("no change reported")
	}
	if len(g.Status.Addresses) != 1 || g.Status.Addresses[0].Value != "127.0.2.7" || *g.Status.Addresses[0].Type != gwv1.IPAddressType {
		t.Errorf("addresses = %+v", g.Status.Addresses)
	}
	l := g.Status.Listeners[0]
	if l.AttachedRoutes != 2 || len(l.SupportedKinds) != 2 || *l.SupportedKinds[1].Group != gwv1.GroupName || l.SupportedKinds[1].Kind != "GRPCRoute" {
		t.Errorf("listener = %+v", l)
	}
	if l.Conditions[0].ObservedGeneration != 2 {
		t.Errorf("listener condition generation = %d, want 2", l.Conditions[0].ObservedGeneration)
	}
	if w.gatewayStatus(g, e, []string{"127.0.2.7"}) {
		t.Error("unchanged status reported as changed")
	}
	e.Listeners[0].AttachedRoutes = 3
	if !w.gatewayStatus(g, e, []string{"127.0.2.7"}) {
		t.Error("attachedRoutes change not seen")
	}
	if w.gatewayStatus(g, e, []string{"127.0.2.8"}) == false || g.Status.Addresses[0].Value != "127.0.2.8" {
		t.Error("address change not written")
	}
}

func TestRouteStatusKeepsOtherControllersAndSkipsIgnored(t *testing.T) {
	w := testWriter(time.Unix(100, 0))
	ns := gwv1.Namespace("other")
	refs := []gwv1.ParentReference{{Name: "mine"}, {Name: "theirs", Namespace: &ns}}
	rs := &gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{
		{ParentRef: refs[1], ControllerName: "example.com/other", Conditions: []metav1.Condition{{Type: "Accepted", Status: "True", Reason: "Accepted"}}},
	}}
	e := &status.Resource{Parents: []status.Parent{
		{Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: "Accepted"}, {Type: status.ResolvedRefs, Status: false, Reason: status.ReasonBackendNotFound, Message: "nope"}}},
		{Conditions: []status.Condition{{Type: "Ignored", Status: true, Reason: status.ReasonNotReconciled}}},
	}}
	if !w.routeStatus(rs, refs, 5, e) {
		t.Fatal("no change reported")
	}
	if len(rs.Parents) != 2 {
		t.Fatalf("parents = %+v, want the other controller's and ours", rs.Parents)
	}
	if rs.Parents[0].ControllerName != "example.com/other" {
		t.Errorf("other controller's entry replaced: %+v", rs.Parents[0])
	}
	ours := rs.Parents[1]
	if ours.ControllerName != translate.ControllerName || ours.ParentRef.Name != "mine" || len(ours.Conditions) != 2 ||
		ours.Conditions[1].Status != metav1.ConditionFalse || ours.Conditions[1].ObservedGeneration != 5 {
		t.Errorf("our entry = %+v", ours)
	}
	if w.routeStatus(rs, refs, 5, e) {
		t.Error("unchanged status reported as changed")
	}
	// The route drops its parentRef to our Gateway: our entry goes.
	if !w.routeStatus(rs, refs[1:], 6, &status.Resource{Parents: e.Parents[1:]}) || len(rs.Parents) != 1 || rs.Parents[0].ControllerName == translate.ControllerName {
		t.Errorf("stale entry kept: %+v", rs.Parents)
	}
}

func TestPolicyStatusKeepsOthersAncestors(t *testing.T) {
	w := testWriter(time.Unix(100, 0))
	otherGroup, otherKind := gwv1.Group(gwv1.GroupName), gwv1.Kind("Gateway")
	other := gwv1.PolicyAncestorStatus{ControllerName: "example.com/other",
		AncestorRef: gwv1.ParentReference{Group: &otherGroup, Kind: &otherKind, Name: "theirs"}}
	ps := &gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{other}}
	e := &status.Resource{Parents: []status.Parent{{
		Ref:        status.Ref{Kind: "Gateway", Namespace: "infra", Name: "gw"},
		Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted}},
	}}}
	if !w.policyStatus(ps, "app", 5, e) {
		t.Fatal("first write: no change reported")
	}
	if len(ps.Ancestors) != 2 || ps.Ancestors[0].ControllerName != "example.com/other" {
		t.Fatalf("ancestors = %+v; want the other controller's entry kept, then ours", ps.Ancestors)
	}
	mine := ps.Ancestors[1]
	if mine.ControllerName != gwv1.GatewayController(translate.ControllerName) || mine.AncestorRef.Name != "gw" ||
		*mine.AncestorRef.Namespace != "infra" || *mine.AncestorRef.Group != gwv1.GroupName ||
		mine.Conditions[0].ObservedGeneration != 5 || mine.Conditions[0].Status != metav1.ConditionTrue {
		t.Errorf("our ancestor = %+v", mine)
	}
	if w.policyStatus(ps, "app", 5, e) {
		t.Error("unchanged status reported as changed")
	}
	e.Parents = nil
	if !w.policyStatus(ps, "app", 5, e) || len(ps.Ancestors) != 1 {
		t.Errorf("dropped ancestor not removed: %+v", ps.Ancestors)
	}
}

func TestListenerSetStatusConditionsAndListeners(t *testing.T) {
	w := testWriter(time.Unix(100, 0))
	ls := &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Name: "ls", Namespace: "ns", Generation: 4}}
	// What the API server defaults a new ListenerSet's status to.
	ls.Status.Conditions = []metav1.Condition{
		{Type: "Accepted", Status: metav1.ConditionUnknown, Reason: "Pending"},
		{Type: "Programmed", Status: metav1.ConditionUnknown, Reason: "Pending"},
	}
	e := &status.Resource{
		Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted}, {Type: status.Programmed, Status: true, Reason: status.ReasonProgrammed}},
		Listeners: []status.Listener{
			{Name: "a", AttachedRoutes: 3, SupportedKinds: []string{"HTTPRoute"}, Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted}}},
			{Name: "b", SupportedKinds: []string{}, Conditions: []status.Condition{{Type: status.Conflicted, Status: true, Reason: status.ReasonHostnameConflict}}},
		},
	}
	if !w.listenerSetStatus(ls, e) {
		t.Fatal("no change reported")
	}
	if len(ls.Status.Conditions) != 2 || ls.Status.Conditions[0].Status != metav1.ConditionTrue || ls.Status.Conditions[1].Reason != status.ReasonProgrammed ||
		ls.Status.Conditions[0].ObservedGeneration != 4 {
		t.Errorf("conditions = %+v", ls.Status.Conditions)
	}
	if len(ls.Status.Listeners) != 2 {
		t.Fatalf("listeners = %+v", ls.Status.Listeners)
	}
	a, b := ls.Status.Listeners[0], ls.Status.Listeners[1]
	if a.Name != "a" || a.AttachedRoutes != 3 || len(a.SupportedKinds) != 1 || a.SupportedKinds[0].Kind != "HTTPRoute" || *a.SupportedKinds[0].Group != gwv1.GroupName {
		t.Errorf("listener a = %+v", a)
	}
	if b.Name != "b" || b.Conditions[0].Type != status.Conflicted || b.Conditions[0].Status != metav1.ConditionTrue || b.Conditions[0].ObservedGeneration != 4 {
		t.Errorf("listener b = %+v", b)
	}
	if w.listenerSetStatus(ls, e) {
		t.Error("unchanged status reported as changed")
	}
	e.Listeners[0].AttachedRoutes = 4
	if !w.listenerSetStatus(ls, e) || ls.Status.Listeners[0].AttachedRoutes != 4 {
		t.Error("attachedRoutes change not written")
	}
	// A ListenerSet of a Gateway of another controller is left alone.
	ign := &status.Resource{Conditions: []status.Condition{{Type: "Ignored", Status: true, Reason: status.ReasonNotReconciled}}}
	if w.listenerSetStatus(ls, ign) {
		t.Error("ignored ListenerSet written")
	}
}

func TestAttachedListenerSets(t *testing.T) {
	gwNS := gwv1.Namespace("infra")
	svc := gwv1.Kind("Service")
	mk := func(ns, name string, ref gwv1.ParentGatewayReference) *gwv1.ListenerSet {
		return &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: gwv1.ListenerSetSpec{ParentRef: ref}}
	}
	snap := resource.New()
	snap.ListenerSets = []*gwv1.ListenerSet{
		mk("infra", "same-ns", gwv1.ParentGatewayReference{Name: "gw"}),
		mk("team", "cross-ns", gwv1.ParentGatewayReference{Name: "gw", Namespace: &gwNS}),
		mk("team", "rejected", gwv1.ParentGatewayReference{Name: "gw", Namespace: &gwNS}),
		mk("team", "bad-kind", gwv1.ParentGatewayReference{Name: "gw", Namespace: &gwNS, Kind: &svc}),
		mk("team", "no-entry", gwv1.ParentGatewayReference{Name: "gw", Namespace: &gwNS}),
	}
	accepted := &status.Resource{Conditions: []status.Condition{{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted}}}
	rejected := &status.Resource{Conditions: []status.Condition{{Type: status.Accepted, Status: false, Reason: "NotAllowed"}}}
	entries := map[string]*status.Resource{"infra/same-ns": accepted, "team/cross-ns": accepted, "team/rejected": rejected, "team/bad-kind": accepted}
	got := attachedListenerSets(snap, func(kind, ns, name string) *status.Resource {
		if kind != "ListenerSet" {
			t.Fatalf("entry of kind %s asked", kind)
		}
		return entries[ns+"/"+name]
	})
	if got["infra/gw"] != 2 || len(got) != 2 || got[""] != 1 {
		t.Errorf("counts = %v; want infra/gw: 2 (and the bad kind under \"\")", got)
	}

	g := &gwv1.Gateway{}
	if setAttachedListenerSets(g, 0) || g.Status.AttachedListenerSets != nil {
		t.Error("0 written on a Gateway without the field")
	}
	if !setAttachedListenerSets(g, 2) || *g.Status.AttachedListenerSets != 2 {
		t.Error("2 not written")
	}
	if setAttachedListenerSets(g, 2) {
		t.Error("unchanged count reported as changed")
	}
	if !setAttachedListenerSets(g, 0) || *g.Status.AttachedListenerSets != 0 {
		t.Error("drop to 0 not written")
	}
}
