package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
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

// Two replicas on one state directory: the leader applies revisions, the
// follower serves them from the persisted state and forwards controls to
// the leader; when the leader stops, the follower takes over and applies
// the next revision itself.
func TestLeaderElectionHandOver(t *testing.T) {
	e := newEnv(t)
	client := fake.NewSimpleClientset()
	a := e.start(daemon.Config{Leader: election(client, "a"), FollowInterval: 50 * time.Millisecond})
	waitUntil(t, "a to lead", a.Elector.IsLeader)
	first, _ := e.Repo.Head()
	waitUntil(t, "a to apply the first revision", func() bool { return lastGood(a) == "main@sha1:"+first })

	b, err := daemon.Start(context.Background(), daemon.Config{
		Repo: e.Repo.URL(), Ref: "main", Path: "overlays/dev", Interval: time.Hour,
		XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", StateDir: e.Opts.StateDir,
		Leader: election(client, "b"), FollowInterval: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitUntil(t, "b to see a lead", func() bool { return b.Elector.Leader() == a.Elector.Identity() })
	if b.Elector.IsLeader() || lastGood(b) != "main@sha1:"+first {
		t.Fatalf("b leads=%v, serves %q", b.Elector.IsLeader(), lastGood(b))
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
	if code, body := post(t, "http://"+b.AdminAddr+"/reconcile", "", map[string]string{"Origin": "http://" + b.AdminAddr}); code != http.StatusAccepted {
		t.Fatalf("POST /reconcile on the follower: %d %s", code, body)
	}
	waitUntil(t, "a to apply the second revision", func() bool { return lastGood(a) == second })
	waitUntil(t, "b to follow it", func() bool { return lastGood(b) == second })
	if !strings.Contains(get(t, "http://"+b.AdminAddr+"/metrics"), "gitxds_leader 0") ||
		!strings.Contains(get(t, "http://"+a.AdminAddr+"/metrics"), "gitxds_leader 1") {
		t.Error("gitxds_leader gauge")
	}

	// The leader stops (SIGTERM); b takes over and drives the next revision.
	a.Close()
	e.Daemon = nil
	waitUntil(t, "b to lead", b.Elector.IsLeader)
	third := e.commit("9003")
	if code, body := post(t, "http://"+b.AdminAddr+"/reconcile", "", nil); code != http.StatusAccepted {
		t.Fatalf("POST /reconcile on the new leader: %d %s", code, body)
	}
	waitUntil(t, "b to apply the third revision", func() bool { return lastGood(b) == third })
	if !strings.Contains(get(t, "http://"+b.AdminAddr+"/leader"), `"isLeader":true`) {
		t.Error("/leader on the new leader")
	}
}

// Under leader election the daemon records Kubernetes Events regarding
// the Lease, through the election's client, alongside the log line: the
// first revision is attempted, then rolled out.
func TestKubernetesEventsUnderLeaderElection(t *testing.T) {
	e := newEnv(t)
	client := fake.NewSimpleClientset()
	d := e.start(daemon.Config{Leader: election(client, "a"), FollowInterval: 50 * time.Millisecond})
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
