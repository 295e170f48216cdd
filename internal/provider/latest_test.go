package provider

import (
	"context"
	"testing"
	"time"

	"causeway.dev/causeway/internal/resource"
)

func TestLatest(t *testing.T) {
	l := NewLatest()
	s1, s2, s3 := resource.New(), resource.New(), resource.New()
	l.Put(s1)
	l.Put(s2) // replaces s1 before delivery

	got := make(chan *resource.Snapshot)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Deliver(ctx, func(s *resource.Snapshot) { got <- s })
	}()
	recv := func() *resource.Snapshot {
		select {
		case s := <-got:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("nothing delivered")
			return nil
		}
	}
	if s := recv(); s != s2 {
		t.Errorf("delivered %p, want the latest %p", s, s2)
	}
	l.Put(s3)
	if s := recv(); s != s3 {
		t.Errorf("delivered %p, want %p", s, s3)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver did not return after cancel")
	}
}
