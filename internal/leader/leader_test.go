package leader

import (
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// The election itself runs against a real API server in
// internal/provider/kube/leader_test.go (-tags kubeapi); these tests cover
// the expiry rule and the configuration checks.

func TestObserverIgnoresRemoteClocks(t *testing.T) {
	t0 := time.Now()
	var o observer
	rec := record{holder: "a", durationSeconds: 15, version: "1"}
	o.observe(rec, t0)
	if o.expired(t0.Add(14 * time.Second)) {
		t.Fatal("expired before its duration")
	}
	// The same resourceVersion seen again does not renew it, whatever
	// renewTime the holder's clock wrote.
	o.observe(rec, t0.Add(10*time.Second))
	if !o.expired(t0.Add(16 * time.Second)) {
		t.Fatal("not expired 16s after the last change was seen")
	}
	// A write (new resourceVersion) counts from when it is seen here.
	rec.version = "2"
	o.observe(rec, t0.Add(20*time.Second))
	if o.expired(t0.Add(34 * time.Second)) {
		t.Fatal("expired 14s after a renewal was seen")
	}
	if !o.expired(t0.Add(36 * time.Second)) {
		t.Fatal("not expired 16s after a renewal was seen")
	}
	// A released lease (duration 1s) expires almost at once.
	o.observe(record{durationSeconds: 1, version: "3"}, t0.Add(40*time.Second))
	if !o.expired(t0.Add(42 * time.Second)) {
		t.Fatal("released lease not expired after 2s")
	}
}

func TestNewChecksDurations(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, c := range []Config{
		{Config: cfg},    // no namespace
		{Namespace: "x"}, // no rest config
		{Config: cfg, Namespace: "x", LeaseDuration: 5 * time.Second, RenewDeadline: 5 * time.Second},
		{Config: cfg, Namespace: "x", RenewDeadline: 3 * time.Second, RetryPeriod: 3 * time.Second},
		{Config: cfg, Namespace: "x", LeaseDuration: 500 * time.Millisecond, RenewDeadline: 300 * time.Millisecond, RetryPeriod: 100 * time.Millisecond},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	e, err := New(Config{Config: cfg, Namespace: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.LeaseDuration != 15*time.Second || e.cfg.RenewDeadline != 10*time.Second || e.cfg.RetryPeriod != 2*time.Second ||
		e.cfg.Name != "causeway-controller" || e.Identity() == "" || e.IsLeader() {
		t.Errorf("defaults: %+v leader=%v", e.cfg, e.IsLeader())
	}
}
