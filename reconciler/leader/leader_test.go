package leader

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func fast(client kubernetes.Interface, name string) Options {
	return Options{Client: client, Namespace: "gitxds-system", Name: "gitxds", Identity: Identity(name, name+":9400"),
		LeaseDuration: 1 * time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

type candidate struct {
	e       *Elector
	cancel  context.CancelFunc
	leading atomic.Bool
	led     atomic.Int32
	done    chan struct{}
}

func campaign(t *testing.T, client kubernetes.Interface, name string) *candidate {
	t.Helper()
	return campaignWith(t, fast(client, name))
}

func campaignWith(t *testing.T, o Options) *candidate {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		e.Run(ctx, func(lctx context.Context) {
			c.led.Add(1)
			c.leading.Store(true)
			<-lctx.Done()
			c.leading.Store(false)
		})
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One of two replicas leads; when it stops, the other takes the Lease over
// and both see who leads.
func TestHandOver(t *testing.T) {
	client := fake.NewSimpleClientset()
	a := campaign(t, client, "a")
	waitFor(t, "a to lead", a.leading.Load)
	b := campaign(t, client, "b")
	waitFor(t, "b to see a", func() bool { return b.e.Leader() == a.e.Identity() })
	time.Sleep(1500 * time.Millisecond) // more than a lease: b must still follow
	if b.leading.Load() || b.e.IsLeader() || !a.e.IsLeader() {
		t.Fatal("two leaders, or a lost the lease while renewing it")
	}
	if AdminAddress(b.e.Leader()) != "a:9400" {
		t.Fatalf("leader admin address %q", AdminAddress(b.e.Leader()))
	}
	lease, err := client.CoordinationV1().Leases("gitxds-system").Get(context.Background(), "gitxds", metav1.GetOptions{})
	if err != nil || *lease.Spec.HolderIdentity != a.e.Identity() {
		t.Fatalf("lease: %v %v", lease, err)
	}

	start := time.Now()
	a.cancel() // SIGTERM: the lease is released
	<-a.done
	if a.leading.Load() || a.e.IsLeader() {
		t.Fatal("a still leads after stopping")
	}
	waitFor(t, "b to lead", b.leading.Load)
	t.Logf("hand-over took %v", time.Since(start).Round(time.Millisecond))
	if b.e.Leader() != b.e.Identity() || b.led.Load() != 1 || a.led.Load() != 1 {
		t.Fatalf("leader %q, led a=%d b=%d", b.e.Leader(), a.led.Load(), b.led.Load())
	}
}

// A leader that cannot renew its Lease (the API server is unreachable, or
// refuses) ends its leadership after RenewDeadline, and Run returns: it
// does not campaign again. Meanwhile another replica takes the Lease once
// it expires.
func TestLostLeaseEndsLeadership(t *testing.T) {
	client := fake.NewSimpleClientset()
	var partitioned atomic.Bool
	client.PrependReactor("*", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if partitioned.Load() {
			return true, nil, errors.New("partitioned")
		}
		return false, nil, nil
	})
	a := campaign(t, client, "a")
	waitFor(t, "a to lead", a.leading.Load)
	partitioned.Store(true)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after renewals failed")
	}
	if a.leading.Load() || a.e.IsLeader() || a.led.Load() != 1 {
		t.Fatal("still leading, or led twice")
	}
	partitioned.Store(false)
	b := campaign(t, client, "b")
	waitFor(t, "b to take the expired lease", b.leading.Load)
}

func TestNewChecksOptions(t *testing.T) {
	if _, err := New(Options{Namespace: "x", Name: "y", Identity: "z"}); err == nil {
		t.Fatal("no client accepted")
	}
}
