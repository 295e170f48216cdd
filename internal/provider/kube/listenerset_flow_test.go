//go:build kubeapi

package kube

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/translate"
)

// TestListenerSetFlow runs the provider and the writer against a real
// apiserver with ListenerSets: the allowed one and its listeners get
// Accepted and Programmed, the Gateway counts it in attachedListenerSets,
// a route naming it gets a parent status of kind ListenerSet, and one from
// a namespace the Gateway does not allow is NotAllowed.
func TestListenerSetFlow(t *testing.T) {
	f := startFlow(t, nil, nil)
	ctx, core, gwc := f.ctx, f.core, f.gwc
	_, err := core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, createOpts)
	mustCreate(t, "Namespace", err)
	_, err = gwc.GatewayV1().GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "ours"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, createOpts)
	mustCreate(t, "GatewayClass", err)
	same := gwv1.NamespacesFromSame
	_, err = gwc.GatewayV1().Gateways("default").Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "ours",
			AllowedListeners: &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: &same}},
			Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: ptr(gwv1.Hostname("gw.example"))}}}}, createOpts)
	mustCreate(t, "Gateway", err)
	set := func(ns string) *gwv1.ListenerSet {
		return &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Name: "ls", Namespace: ns}, Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Name: "gw", Namespace: ptr(gwv1.Namespace("default"))},
			Listeners: []gwv1.ListenerEntry{{Name: "extra", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: ptr(gwv1.Hostname("ls.example"))}}}}
	}
	_, err = gwc.GatewayV1().ListenerSets("default").Create(ctx, set("default"), createOpts)
	mustCreate(t, "ListenerSet default/ls", err)
	_, err = gwc.GatewayV1().ListenerSets("team").Create(ctx, set("team"), createOpts)
	mustCreate(t, "ListenerSet team/ls", err)
	lsKind, lsGroup := gwv1.Kind("ListenerSet"), gwv1.Group(gwv1.GroupName)
	_, err = gwc.GatewayV1().HTTPRoutes("default").Create(ctx, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Kind: &lsKind, Group: &lsGroup, Name: "ls"}}}}}, createOpts)
	mustCreate(t, "HTTPRoute", err)

	waitFor(t, "ListenerSet default/ls accepted", 30*time.Second, func() error {
		ls, err := gwc.GatewayV1().ListenerSets("default").Get(ctx, "ls", getOpts)
		if err != nil {
			return err
		}
		if err := wantConds(ls.Status.Conditions, ls.Generation, "Accepted", "Programmed"); err != nil {
			return err
		}
		if len(ls.Status.Listeners) != 1 || ls.Status.Listeners[0].Name != "extra" || ls.Status.Listeners[0].AttachedRoutes != 1 {
			return fmt.Errorf("listeners %+v", ls.Status.Listeners)
		}
		return wantConds(ls.Status.Listeners[0].Conditions, ls.Generation, "Accepted", "ResolvedRefs", "Programmed")
	})
	waitFor(t, "ListenerSet team/ls not allowed", 30*time.Second, func() error {
		ls, err := gwc.GatewayV1().ListenerSets("team").Get(ctx, "ls", getOpts)
		if err != nil {
			return err
		}
		for _, c := range ls.Status.Conditions {
			if c.Type == "Accepted" && c.Status == metav1.ConditionFalse && c.Reason == "NotAllowed" && c.ObservedGeneration == ls.Generation {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", ls.Status.Conditions)
	})
	waitFor(t, "Gateway attachedListenerSets", 30*time.Second, func() error {
		g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", getOpts)
		if err != nil {
			return err
		}
		if g.Status.AttachedListenerSets == nil || *g.Status.AttachedListenerSets != 1 {
			return fmt.Errorf("attachedListenerSets %v", g.Status.AttachedListenerSets)
		}
		if len(g.Status.Listeners) != 1 || g.Status.Listeners[0].AttachedRoutes != 0 {
			return fmt.Errorf("the Gateway's own listeners %+v", g.Status.Listeners)
		}
		return nil
	})
	waitFor(t, "HTTPRoute parent status", 30*time.Second, func() error {
		r, err := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "r", getOpts)
		if err != nil {
			return err
		}
		if len(r.Status.Parents) != 1 || r.Status.Parents[0].ParentRef.Kind == nil || *r.Status.Parents[0].ParentRef.Kind != "ListenerSet" {
			return fmt.Errorf("parents %+v", r.Status.Parents)
		}
		return wantConds(r.Status.Parents[0].Conditions, r.Generation, "Accepted")
	})

	f.stop()
}
