package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"gitxds.dev/gitxds/reconciler/daemon"
	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/status"
)

func election(client kubernetes.Interface, name string) *leader.Options {
	return &leader.Options{Client: client, Namespace: "gitxds-system", Name: "gitxds", Identity: name,
		LeaseDuration: time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastGood(d *daemon.Daemon) string {
	if s := d.Reconciler.LastGood(); s != nil {
		return s.Revision
	}
	return ""
}

// replicas run as several replicas in one process: each has its own state
// directory and meets the others on one memory Board and one Lease.
type replicas struct {
	e      *env
	board  *rollout.MemoryBoard
	client kubernetes.Interface
	files  map[string]string
}

func newReplicas(e *env) *replicas {
	return &replicas{e: e, board: rollout.NewMemoryBoard(), client: fake.NewSimpleClientset()}
}

// start starts replica name (with its own state directory).
func (r *replicas) start(name string) *daemon.Daemon {
	r.e.t.Helper()
	d, err := daemon.Start(context.Background(), daemon.Config{
		Repo: r.e.Repo.URL(), Ref: "main", Path: "overlays/dev", Interval: time.Hour,
		XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", StateDir: r.e.t.TempDir(),
		Leader: election(r.client, name), Board: r.board.Client(), ReplicaHeartbeat: 100 * time.Millisecond,
		Log: haLog(name),
	})
	if err != nil {
		r.e.t.Fatal(err)
	}
	r.e.t.Cleanup(d.Close)
	return d
}

// Two replicas with their own state directories: the leader applies
// revisions fleet-wide, the follower builds them itself and serves them,
// and forwards controls to the leader; when the leader stops, the
// follower takes over and applies the next revision itself.
func TestLeaderElectionHandOver(t *testing.T) {
	e := newEnv(t)
	rs := newReplicas(e)
	a := rs.start("a")
	waitUntil(t, "a to lead", a.Elector.IsLeader)
	first, _ := e.Repo.Head()
	waitUntil(t, "a to apply the first revision", func() bool { return lastGood(a) == "main@sha1:"+first })

	b := rs.start("b")
	waitUntil(t, "b to see a lead", func() bool { return b.Elector.Leader() == a.Elector.Identity() })
	waitUntil(t, "b to serve the first revision", func() bool { return lastGood(b) == "main@sha1:"+first })
	if b.Elector.IsLeader() {
		t.Fatal("b leads too")
	}
	// Nodes connected to the follower are served.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := ads(ctx, b.XDSAddr, insecure.NewCredentials()); err != nil || len(resp.Resources) == 0 {
		t.Fatalf("ADS on the follower: %v %v", resp, err)
	}

	// A control sent to the follower reaches the leader.
	// The follower checks the Origin against its own address (the leader's
	// would not match), so a page of the follower's admin address may
	// send it and another site may not.
	if code, body := post(t, "http://"+b.AdminAddr+"/reconcile", "", map[string]string{"Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Errorf("POST /reconcile on the follower from another site: %d %s", code, body)
	}
	second := e.commit("9002")
	b.Reconciler.Trigger("test") // every replica polls: b builds it too
	if code, body := post(t, "http://"+b.AdminAddr+"/reconcile", "", map[string]string{"Origin": "http://" + b.AdminAddr}); code != http.StatusAccepted {
		t.Fatalf("POST /reconcile on the follower: %d %s", code, body)
	}
	waitUntil(t, "a to apply the second revision", func() bool { return lastGood(a) == second })
	waitUntil(t, "b to follow it", func() bool { return lastGood(b) == second })
	if !strings.Contains(get(t, "http://"+b.AdminAddr+"/metrics"), "gitxds_leader 0") ||
		!strings.Contains(get(t, "http://"+a.AdminAddr+"/metrics"), "gitxds_leader 1") {
		t.Error("gitxds_leader gauge")
	}
	// GET /status on the follower shows the fleet-wide rollout.
	var st status.Status
	if err := json.Unmarshal([]byte(get(t, "http://"+b.AdminAddr+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Rollout == nil || st.Rollout.Revision != second || st.Rollout.Phase != status.RolloutSucceeded || st.LastAppliedRevision != second {
		t.Fatalf("follower's /status: rollout %+v, applied %s", st.Rollout, st.LastAppliedRevision)
	}

	// The leader stops (SIGTERM); b takes over and drives the next revision.
	a.Close()
	waitUntil(t, "b to lead", b.Elector.IsLeader)
	third := e.commit("9003")
	if code, body := post(t, "http://"+b.AdminAddr+"/reconcile", "", nil); code != http.StatusAccepted {
		t.Fatalf("POST /reconcile on the new leader: %d %s", code, body)
	}
	waitUntil(t, "b to apply the third revision", func() bool { return lastGood(b) == third })
	if !strings.Contains(get(t, "http://"+b.AdminAddr+"/leader"), `"isLeader":true`) {
		t.Error("/leader on the new leader")
	}
	if s, _, _ := rs.board.Client().Rollout(ctx); s.Revision != third || s.Phase != rollout.Succeeded || s.Epoch < 1 {
		t.Errorf("FleetState after the hand-over: %+v", s)
	}
}

// Under leader election the daemon records Kubernetes Events regarding
// the Lease, through the election's client, alongside the log line: the
// first revision is attempted, then rolled out.
func TestKubernetesEventsUnderLeaderElection(t *testing.T) {
	e := newEnv(t)
	client := fake.NewSimpleClientset()
	d := e.start(daemon.Config{Leader: election(client, "a"), Board: rollout.NewMemoryBoard().Client()})
	head, _ := e.Repo.Head()
	rev := "main@sha1:" + head
	waitUntil(t, "a to apply the first revision", func() bool { return lastGood(d) == rev })
	var reasons []string
	waitUntil(t, "the Events of the first revision", func() bool {
		list, err := client.EventsV1().Events("gitxds-system").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		evs := list.Items
		sort.Slice(evs, func(i, j int) bool { return evs[i].EventTime.Before(&evs[j].EventTime) })
		reasons = reasons[:0]
		for _, ev := range evs {
			if ev.Regarding.Kind != "Lease" || ev.Regarding.Name != "gitxds" || ev.Regarding.Namespace != "gitxds-system" ||
				!strings.HasPrefix(ev.Note, rev) || ev.ReportingInstance != "a" {
				t.Fatalf("event %s regards %+v, instance %q, note %q", ev.Reason, ev.Regarding, ev.ReportingInstance, ev.Note)
			}
			reasons = append(reasons, ev.Reason)
		}
		return len(reasons) > 0 && reasons[len(reasons)-1] == string(notify.RolloutSucceeded)
	})
	if reasons[0] != string(notify.RevisionAttempted) {
		t.Errorf("events %v, want %s first", reasons, notify.RevisionAttempted)
	}
}

func haLog(name string) *slog.Logger {
	if os.Getenv("GITXDS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("replica", name)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
