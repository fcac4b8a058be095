package kubestate_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"gitxds.dev/gitxds/reconciler/kubestate"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

// cluster is the shared API server with the CRDs installed, and a
// namespace of t's own.
func cluster(t *testing.T) (*kubeapi.Server, dynamic.Interface, string) {
	t.Helper()
	s := kubeapi.Shared(t)
	dc, err := dynamic.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	// Idempotent (server-side apply): every test may install them.
	if err := kubestate.InstallCRDs(context.Background(), dc, time.Minute); err != nil {
		t.Fatal(err)
	}
	return s, dc, s.Namespace(t, "kubestate")
}

func board(t *testing.T, dc dynamic.Interface, ns, replica string) *kubestate.Board {
	t.Helper()
	b, err := kubestate.New(kubestate.Options{Client: dc, Namespace: ns, Name: "gitxds", Replica: replica,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func state(epoch int64, rev string, stage int) rollout.FleetState {
	return rollout.FleetState{Epoch: epoch, Revision: rev, Hash: "h-" + rev, Stage: stage, StageName: "canary",
		Phase: status.RolloutProgressing, Stages: []rollout.StageSpec{{Name: "canary", Selector: "rollout-group=canary", Percent: -1, MinNodes: 1}, {Name: "all", Percent: 100}}}
}

// A leader writes the FleetRollout as often as it likes; once a newer
// leadership (higher epoch) has read and written it, the old leader's next
// write — a paused ex-leader resuming — is fenced, and so is every later
// one; the newer state stays.
func TestPutRolloutFencing(t *testing.T) {
	_, dc, ns := cluster(t)
	ctx := context.Background()
	old, next := board(t, dc, ns, "a"), board(t, dc, ns, "b")

	if _, ok, err := old.Rollout(ctx); err != nil || ok {
		t.Fatalf("Rollout before any write: ok=%v err=%v", ok, err)
	}
	if e, err := old.StoredEpoch(ctx); err != nil || e != 0 {
		t.Fatalf("StoredEpoch before any write: %d %v", e, err)
	}
	if err := old.PutRollout(ctx, state(1, "r1", 0)); err != nil {
		t.Fatalf("first write (create): %v", err)
	}
	if err := old.PutRollout(ctx, state(1, "r1", 1)); err != nil {
		t.Fatalf("same writer, second write: %v", err)
	}
	// The new leader takes over by reading, then writing.
	if err := next.PutRollout(ctx, state(2, "r1", 1)); err != nil {
		t.Fatalf("new leader's write: %v", err)
	}
	err := old.PutRollout(ctx, state(1, "r2", 0))
	if !errors.Is(err, rollout.ErrFenced) {
		t.Fatalf("ex-leader's write after a newer epoch wrote: got %v, want ErrFenced", err)
	}
	t.Logf("fenced: %v", err)
	rw, _ := old.Writes()
	if err := old.PutRollout(ctx, state(1, "r2", 0)); !errors.Is(err, rollout.ErrFenced) {
		t.Fatalf("ex-leader's second write: got %v, want ErrFenced", err)
	}
	if rw2, _ := old.Writes(); rw2 != rw {
		t.Errorf("a fenced writer wrote again (%d writes, then %d): it must stop at the epoch it saw", rw, rw2)
	}
	got, ok, err := next.Rollout(ctx)
	if err != nil || !ok {
		t.Fatalf("Rollout: ok=%v err=%v", ok, err)
	}
	if got.Epoch != 2 || got.Revision != "r1" || got.Stage != 1 {
		t.Errorf("stored state %+v, want the new leader's (epoch 2, r1, stage 1)", got)
	}
	if err := next.PutRollout(ctx, state(2, "r1", 2)); err != nil {
		t.Fatalf("the new leader writes on: %v", err)
	}
	// What a third leadership's epoch must exceed (leader.Options.MinEpoch).
	if e, err := old.StoredEpoch(ctx); err != nil || e != 2 {
		t.Errorf("StoredEpoch %d %v, want 2", e, err)
	}
}

// A leader that starts afresh (no read yet) at an epoch lower than the
// stored one is fenced without writing.
func TestPutRolloutLowerEpochFresh(t *testing.T) {
	_, dc, ns := cluster(t)
	ctx := context.Background()
	if err := board(t, dc, ns, "a").PutRollout(ctx, state(5, "r1", 0)); err != nil {
		t.Fatal(err)
	}
	stale := board(t, dc, ns, "b")
	if err := stale.PutRollout(ctx, state(4, "r0", 0)); !errors.Is(err, rollout.ErrFenced) {
		t.Fatalf("got %v, want ErrFenced", err)
	}
	if rw, _ := stale.Writes(); rw != 0 {
		t.Errorf("%d writes, want 0", rw)
	}
}

// Whoever writes, even with the current resourceVersion (kubectl edit, a
// client that skipped the fencing), the API server refuses to lower the
// epoch: the CRD's validation rule.
func TestServerRefusesLowerEpoch(t *testing.T) {
	_, dc, ns := cluster(t)
	ctx := context.Background()
	if err := board(t, dc, ns, "a").PutRollout(ctx, state(3, "r1", 0)); err != nil {
		t.Fatal(err)
	}
	res := dc.Resource(kubestate.FleetRollouts).Namespace(ns)
	u, err := res.Get(ctx, "gitxds", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(u.Object, int64(2), "status", "epoch"); err != nil {
		t.Fatal(err)
	}
	// With the current resourceVersion, the write passes the
	// optimistic concurrency check: only the rule stops it.
	_, err = res.Update(ctx, u, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "epoch of a FleetRollout never decreases") {
		t.Fatalf("lowering the epoch: got %v, want Invalid (the CRD's rule)", err)
	}
	if err := unstructured.SetNestedField(u.Object, int64(4), "status", "epoch"); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("raising it: %v", err)
	}
}

// Two replicas' reports reach a third through its informers: Changes is
// signalled and Reports has both, within a second of the writes.
func TestReportsSeenByAnotherReplica(t *testing.T) {
	_, dc, ns := cluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := board(t, dc, ns, "c")
	if err := watcher.Check(ctx); err != nil {
		t.Fatal(err)
	}
	watcher.Start(ctx)
	if err := watcher.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	drain(watcher.Changes())
	// Another installation's report in the same namespace is not ours.
	other, err := kubestate.New(kubestate.Options{Client: dc, Namespace: ns, Name: "other", Replica: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.PutReport(ctx, rollout.ReplicaReport{Epoch: 9}); err != nil {
		t.Fatal(err)
	}

	hb := time.Now().UTC().Truncate(time.Second)
	began := time.Now()
	for i, name := range []string{"a", "b"} {
		r := rollout.ReplicaReport{Epoch: 2, Revision: "r1", Hash: "h1", Stage: 1, RenderedHash: "h1",
			Connected: 10 + i, InStage: 3, Moved: 3, Acked: 2, Pending: 1, PendingNodes: []string{name + "-node-7"},
			NACKs:     []rollout.NodeNACK{{Node: name + "-node-3", TypeURL: "type.googleapis.com/envoy.config.listener.v3.Listener", Version: "h1", Error: "bad"}},
			Heartbeat: hb}
		if err := board(t, dc, ns, name).PutReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var got []rollout.ReplicaReport
	deadline := time.After(time.Second)
	for len(got) < 2 {
		select {
		case <-watcher.Changes():
		case <-deadline:
			t.Fatalf("after 1s the third replica sees %d report(s): %+v", len(got), got)
		}
		if got, err = watcher.Reports(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("both reports seen by the third replica %s after the first write", time.Since(began).Round(time.Millisecond))
	for i, r := range got {
		name := []string{"a", "b"}[i]
		if r.Replica != name || r.Connected != 10+i || r.Pending != 1 || len(r.NACKs) != 1 || r.NACKs[0].Node != name+"-node-3" || !r.Heartbeat.Equal(hb) {
			t.Errorf("report %d: %+v", i, r)
		}
	}
}

// A replica writes its own report only, and not twice the same.
func TestPutReportOwnOnly(t *testing.T) {
	_, dc, ns := cluster(t)
	ctx := context.Background()
	b := board(t, dc, ns, "a")
	if err := b.PutReport(ctx, rollout.ReplicaReport{Replica: "b"}); err == nil {
		t.Fatal("replica a wrote b's report")
	}
	r := rollout.ReplicaReport{Epoch: 1, Connected: 4}
	for range 3 {
		if err := b.PutReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, n := b.Writes(); n != 1 {
		t.Errorf("%d report writes for one report, want 1", n)
	}
	r.Pending = 1
	if err := b.PutReport(ctx, r); err != nil {
		t.Fatal(err)
	}
	// A restarted process of the same replica (no resourceVersion yet)
	// takes its report over.
	if err := board(t, dc, ns, "a").PutReport(ctx, rollout.ReplicaReport{Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Reports(ctx)
	if err != nil || len(got) != 1 || got[0].Epoch != 2 {
		t.Fatalf("Reports: %+v %v", got, err)
	}
}

// `kubectl get` shows the printer columns of both resources, by their
// short names too.
func TestKubectlGetColumns(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	s, dc, ns := cluster(t)
	ctx := context.Background()
	st := state(7, "3f2a9c1", 0)
	if err := board(t, dc, ns, "a").PutRollout(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := board(t, dc, ns, "gitxds-7d9f-abcde").PutReport(ctx, rollout.ReplicaReport{Epoch: 7, Stage: 0, Connected: 12, Pending: 3,
		RenderedHash: "h-3f2a9c1", Heartbeat: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	get := func(args ...string) [][]string {
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", s.Kubeconfig, "-n", ns, "get"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get %v: %v\n%s", args, err, out)
		}
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			rows = append(rows, strings.Fields(l))
		}
		t.Logf("kubectl get %s:\n%s", strings.Join(args, " "), out)
		return rows
	}
	for _, res := range []string{"fleetrollouts", "fro"} {
		rows := get(res)
		want := [][]string{{"NAME", "EPOCH", "REVISION", "STAGE", "PHASE", "AGE"}, {"gitxds", "7", "3f2a9c1", "canary", "Progressing"}}
		if len(rows) != 2 || strings.Join(rows[0], " ") != strings.Join(want[0], " ") || strings.Join(rows[1][:5], " ") != strings.Join(want[1], " ") {
			t.Errorf("kubectl get %s: %v, want %v and an age", res, rows, want)
		}
	}
	for _, res := range []string{"replicareports", "rrep"} {
		rows := get(res)
		want := [][]string{{"NAME", "EPOCH", "STAGE", "CONNECTED", "PENDING", "RENDERED", "HEARTBEAT"}, {"gitxds-7d9f-abcde", "7", "0", "12", "3", "h-3f2a9c1"}}
		if len(rows) != 2 || strings.Join(rows[0], " ") != strings.Join(want[0], " ") || strings.Join(rows[1][:6], " ") != strings.Join(want[1], " ") {
			t.Errorf("kubectl get %s: %v, want %v and a heartbeat age", res, rows, want)
		}
	}
}

func drain(c <-chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
