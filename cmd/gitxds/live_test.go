package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/daemon"
	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/gitserver"
	"gitxds.dev/gitxds/testenv/stack"
)

// TestDiffLiveAgainstServe: a typo in a team's route is pushed; serve
// keeps serving the route's last accepted version. `diff --live` against
// that server reports no difference (a drift check stays green), exits 0
// with --exit-code, and lists the route as rejected, keeping its last
// accepted version.
func TestDiffLiveAgainstServe(t *testing.T) {
	srv := gitserver.New(t, gitserver.Options{})
	repo, err := srv.CreateRepo("live")
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.WriteFiles(stack.EchoRepo("127.0.0.1:19991", "127.0.0.1:19992")); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("initial"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := daemon.Start(ctx, daemon.Config{Repo: repo.URL(), Ref: "main", Path: "overlays/dev", Interval: 100 * time.Millisecond,
		XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0", StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wait := func(rev string, applied bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			st := d.Reconciler.Status()
			if (applied && st.LastAppliedRevision == rev) || (!applied && st.LastAttemptedRevision == rev && len(st.Objects) > 0) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s not reached: %+v", rev, d.Reconciler.Status())
	}
	first, _ := repo.Head()
	wait("main@sha1:"+first, true)

	typo := strings.Replace(stack.EchoRoute("a"), "value: /}", "value: no-slash}", 1)
	if err := repo.WriteFiles(map[string]string{"teams/echo/routes.yaml": typo}); err != nil {
		t.Fatal(err)
	}
	sha, err := repo.Commit("typo")
	if err != nil {
		t.Fatal(err)
	}
	d.Reconciler.Trigger("test")
	wait("main@sha1:"+sha, true) // nothing served changes: applied at once
	if o := findObject(d.Reconciler.Status().Objects, "HTTPRoute echo/echo"); o.Served != status.ServedLastAccepted {
		t.Fatalf("serve: the route is %+v; want it rejected, keeping its last accepted version", o)
	}

	out, stderr, code := runGitxds(t, "diff", "--repo", repo.URL(), "--path", "overlays/dev", "--live", "http://"+d.AdminAddr, "--to", "main", "-o", "json", "--exit-code")
	var rep diff.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out, stderr)
	}
	if code != 0 || rep.Different {
		t.Errorf("diff --live: exit %d, %+v %+v; want no difference (the route keeps serving)", code, rep.Counts, rep.Changes)
	}
	if len(rep.NotAccepted) != 1 || rep.NotAccepted[0].Served != status.ServedLastAccepted || !strings.Contains(stderr, "rejected; keeps serving its last accepted version: teams/echo/routes.yaml") {
		t.Errorf("diff --live lists %+v, stderr %q; want the route, keeping its last accepted version", rep.NotAccepted, stderr)
	}
}

func findObject(objs []status.Object, id string) status.Object {
	for _, o := range objs {
		if o.ObjectRef.String() == id {
			return o
		}
	}
	return status.Object{}
}
