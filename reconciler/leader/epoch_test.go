package leader

import (
	"context"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"gitxds.dev/gitxds/reconciler/kubestate"
	"gitxds.dev/gitxds/testenv/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

// realClient is a clientset on the shared real API server, and a namespace
// of t's own.
func realClient(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	s := kubeapi.Shared(t)
	cs, err := s.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return cs, s.Namespace(t, "leader")
}

func campaignIn(t *testing.T, client kubernetes.Interface, ns, name string, minEpoch func(context.Context) (int64, error)) *candidate {
	t.Helper()
	o := fast(client, name)
	o.Namespace, o.MinEpoch = ns, minEpoch
	return campaignWith(t, o)
}

func lease(t *testing.T, client kubernetes.Interface, ns string) (transitions int32, epoch string) {
	t.Helper()
	l, err := client.CoordinationV1().Leases(ns).Get(context.Background(), "gitxds", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *l.Spec.LeaseTransitions, l.Annotations[EpochAnnotation]
}

// Every leadership gets a higher epoch than the one before: a hand-over to
// another replica, and a process that restarts under the same identity
// while the Lease still names it (a container restart in its pod), where
// the Lease's leaseTransitions does not move.
func TestEpochIncreasesPerLeadership(t *testing.T) {
	client, ns := realClient(t)
	a := campaignIn(t, client, ns, "a", nil)
	waitFor(t, "a to lead", a.leading.Load)
	e1 := a.e.Epoch()
	if e1 < 1 {
		t.Fatalf("first epoch %d", e1)
	}

	a.cancel() // released
	<-a.done
	b := campaignIn(t, client, ns, "b", nil)
	waitFor(t, "b to lead", b.leading.Load)
	e2 := b.e.Epoch()
	if e2 <= e1 {
		t.Fatalf("hand-over: epoch %d after %d", e2, e1)
	}
	tr2, _ := lease(t, client, ns)

	// b's process "restarts": a new Elector with b's identity while the
	// Lease still names b (the old one is not stopped, as a frozen or
	// killed process would not release).
	b2 := campaignIn(t, client, ns, "b", nil)
	waitFor(t, "the restarted b to lead", b2.leading.Load)
	e3 := b2.e.Epoch()
	tr3, ann := lease(t, client, ns)
	if e3 <= e2 {
		t.Fatalf("restart under the same identity: epoch %d after %d", e3, e2)
	}
	if tr3 != tr2 {
		t.Logf("leaseTransitions moved from %d to %d", tr2, tr3)
	} else {
		t.Logf("leaseTransitions stayed %d: the epoch annotation (%s) is what moved", tr3, ann)
	}
	if ann != "" && ann != strconv.FormatInt(e3, 10) {
		t.Errorf("Lease annotation %s = %q, want %d", EpochAnnotation, ann, e3)
	}
}

// A recreated Lease (deleted by hand, a namespace restored) starts above
// the last epoch written (MinEpoch), not at 1 again.
func TestEpochAboveMinEpoch(t *testing.T) {
	client, ns := realClient(t)
	a := campaignIn(t, client, ns, "a", func(context.Context) (int64, error) { return 41, nil })
	waitFor(t, "a to lead", a.leading.Load)
	if got := a.e.Epoch(); got != 42 {
		t.Fatalf("epoch %d, want 42", got)
	}
}

// serve's MinEpoch is the FleetRollout's stored epoch (kubestate): where
// neither the object nor its CRD exists yet, it is 0 and the election
// goes on.
func TestEpochMinEpochWithoutCRDs(t *testing.T) {
	client, ns := realClient(t)
	dc, err := dynamic.NewForConfig(kubeapi.Shared(t).Config)
	if err != nil {
		t.Fatal(err)
	}
	board, err := kubestate.New(kubestate.Options{Client: dc, Namespace: ns, Name: "gitxds"})
	if err != nil {
		t.Fatal(err)
	}
	a := campaignIn(t, client, ns, "a", board.StoredEpoch)
	waitFor(t, "a to lead", a.leading.Load)
	if got := a.e.Epoch(); got != 1 {
		t.Fatalf("epoch %d, want 1", got)
	}
}
