package kube

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

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
