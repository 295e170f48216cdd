//go:build kubeapi

package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

// A status that returns to an earlier value is written back although the
// snapshot still holds the object as it was before the first write (a
// status-only change starts no translation): Programmed True, then False,
// then True again from the same snapshot.
func TestStatusReturnsToEarlierValue(t *testing.T) {
	srv := startAPIServer(t)
	gwc := gwclient.NewForConfigOrDie(srv.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw, err := gwc.GatewayV1().Gateways("default").Create(ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "default"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "c", Listeners: []gwv1.Listener{
			{Name: "http", Port: 8080, Protocol: gwv1.HTTPProtocolType}}},
	}, createOpts)
	mustCreate(t, "Gateway", err)

	sw, err := NewStatusWriter(StatusOptions{Config: srv.cfg})
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{}, 1)
	sw.written = func(*resource.Snapshot) { written <- struct{}{} }
	go func() { _ = sw.Run(ctx) }()

	// The snapshot's Gateway never changes: the copy from before any write.
	snap := &resource.Snapshot{
		GatewayClasses: []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "c"},
			Spec: gwv1.GatewayClassSpec{ControllerName: "causeway.dev/gateway-controller"}}},
		Gateways: []*gwv1.Gateway{gw},
	}
	report := func(programmed bool, msg string) *status.Report {
		rep := &status.Report{}
		e := rep.For(status.Ref{Kind: "Gateway", Namespace: "default", Name: "g"}, status.Source{})
		e.Conditions = []status.Condition{
			{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted, Message: "ok"},
			{Type: status.Programmed, Status: programmed, Reason: map[bool]string{true: "Programmed", false: "NoProxies"}[programmed], Message: msg},
		}
		return rep
	}
	for i, step := range []struct {
		programmed bool
		msg        string
	}{{true, "1 of 1 proxies"}, {false, "no proxy"}, {true, "1 of 1 proxies"}} {
		sw.Update(snap, report(step.programmed, step.msg), nil)
		select {
		case <-written:
		case <-time.After(30 * time.Second):
			t.Fatalf("step %d: report not written", i)
		}
		live, err := gwc.GatewayV1().Gateways("default").Get(ctx, "g", getOpts)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, c := range live.Status.Conditions {
			if c.Type == status.Programmed {
				got = fmt.Sprintf("%s %s", c.Status, c.Message)
			}
		}
		want := fmt.Sprintf("%s %s", map[bool]metav1.ConditionStatus{true: metav1.ConditionTrue, false: metav1.ConditionFalse}[step.programmed], step.msg)
		if got != want {
			t.Fatalf("step %d: live Programmed = %q, want %q", i, got, want)
		}
	}
}
