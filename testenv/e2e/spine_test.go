// Package e2e holds the end-to-end tests: a real Git server, gitxds as
// `gitxds serve` runs it, real gRPC upstreams and real gRPC-Go xDS clients.
package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/stack"
)

const host = stack.EchoHost

func ptr(s string) *string { return &s }

func repo(a, b string) map[string]string { return stack.EchoRepo(a, b) }

func routeTo(backend string) string { return stack.EchoRoute(backend) }

func startStack(t *testing.T, upstreams map[string]string) *stack.Stack {
	t.Helper()
	s, err := stack.Start(context.Background(), stack.Options{
		Files:     repo(upstreams["A"], upstreams["B"]),
		Upstreams: upstreams,
		Interval:  100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func readyCond(t *testing.T, st status.Status) *metav1.Condition {
	t.Helper()
	c := st.Get(status.Ready)
	if c == nil {
		t.Fatalf("no Ready condition in %+v", st)
	}
	return c
}

// TestSpine: a commit reaches a real gRPC xDS client; a route change moves
// it; broken YAML and an invalid regex are refused while the client keeps
// its traffic; a git revert is Ready at the revert commit.
func TestSpine(t *testing.T) {
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s := startStack(t, ups)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	head := must[string](t)(s.Repo.Head())
	st := must[status.Status](t)(s.WaitApplied(20*time.Second, "main@sha1:"+head))
	if c := readyCond(t, st); c.Status != metav1.ConditionTrue {
		t.Fatalf("first revision not Ready: %+v", c)
	}
	c, err := s.Client("client-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := must[string](t)(c.Call(ctx, host, nil)); got != "A" {
		t.Fatalf("first commit: answered by %q, want A", got)
	}

	// A route change moves traffic to B.
	toB := must[string](t)(s.Commit("route to b", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("b"))}))
	must[status.Status](t)(s.WaitApplied(20*time.Second, toB))
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	if err := c.WaitFor(wctx, host, "B", nil); err != nil {
		t.Fatalf("route change did not reach the client: %v", err)
	}
	wcancel()

	// Unparseable YAML: Ready=False naming the file; the team keeps its last
	// accepted objects, so the revision changes nothing served (and is
	// applied); the client still gets B.
	badYAML := must[string](t)(s.Commit("broken yaml", map[string]*string{"teams/echo/backends.yaml": ptr("kind: Backend\n  metadata: [\n")}))
	st = must[status.Status](t)(s.WaitAttempted(20*time.Second, badYAML))
	rc := readyCond(t, st)
	if rc.Status != metav1.ConditionFalse || !strings.Contains(rc.Message, "teams/echo/backends.yaml") {
		t.Fatalf("broken YAML: Ready %s %q, want False naming teams/echo/backends.yaml", rc.Status, rc.Message)
	}
	if st.LastAppliedHash == "" || st.Rollout != nil && st.Rollout.Revision == badYAML {
		t.Fatalf("the broken commit started a rollout: %+v", st.Rollout)
	}
	assertAnswers(ctx, t, c, "B", 20)

	// Revert the broken commit: Ready again.
	fixed := must[string](t)(s.Revert(badYAML))
	st = must[status.Status](t)(s.WaitApplied(20*time.Second, fixed))
	if rc := readyCond(t, st); rc.Status != metav1.ConditionTrue {
		t.Fatalf("after revert: %+v", rc)
	}

	// An invalid regex: the route is refused (file and object named), the
	// client keeps being served by B.
	badRegex := strings.Replace(routeTo("a"), "{type: PathPrefix, value: /}", `{type: RegularExpression, value: "/(unclosed"}`, 1)
	regexRev := must[string](t)(s.Commit("invalid regex", map[string]*string{"teams/echo/routes.yaml": ptr(badRegex)}))
	st = must[status.Status](t)(s.WaitStatus(20*time.Second, "regex refused", func(st status.Status) bool {
		c := st.Get(status.Ready)
		return st.LastAttemptedRevision == regexRev && c != nil && c.Status == metav1.ConditionFalse &&
			strings.Contains(c.Message, "teams/echo/routes.yaml")
	}))
	rc = readyCond(t, st)
	if !strings.Contains(rc.Message, "HTTPRoute echo/echo") {
		t.Fatalf("invalid regex: Ready message %q does not name HTTPRoute echo/echo", rc.Message)
	}
	t.Logf("invalid regex: %s", rc.Message)
	assertAnswers(ctx, t, c, "B", 20)

	// git revert of the regex commit: Ready=True at the revert commit.
	reverted := must[string](t)(s.Revert(regexRev))
	st = must[status.Status](t)(s.WaitApplied(20*time.Second, reverted))
	rc = readyCond(t, st)
	if rc.Status != metav1.ConditionTrue || st.LastAttemptedRevision != reverted {
		t.Fatalf("after git revert: Ready %s (%s) attempted %s, want True at %s", rc.Status, rc.Message, st.LastAttemptedRevision, reverted)
	}
	assertAnswers(ctx, t, c, "B", 20)
}

func assertAnswers(ctx context.Context, t *testing.T, c interface {
	Call(context.Context, string, map[string]string) (string, error)
}, want string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		got, err := c.Call(ctx, host, nil)
		if err != nil || got != want {
			t.Fatalf("call %d: answered by %q (err %v), want %s", i, got, err, want)
		}
	}
}

// TestRestartWithGitUnreachable: gitxds is killed and restarted with the
// repository unreachable; a new client gets the last good config.
func TestRestartWithGitUnreachable(t *testing.T) {
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s := startStack(t, ups)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	toB := must[string](t)(s.Commit("route to b", map[string]*string{"teams/echo/routes.yaml": ptr(routeTo("b"))}))
	must[status.Status](t)(s.WaitApplied(20*time.Second, toB))

	s.StopDaemon()
	s.Git.Stop() // Git is unreachable from now on
	if err := s.StartDaemon(""); err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	if st.LastAppliedRevision != toB {
		t.Fatalf("after restart lastAppliedRevision %q, want %s", st.LastAppliedRevision, toB)
	}
	c, err := s.Client("new-client", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	defer ccancel()
	got, err := c.Call(cctx, host, nil)
	if err != nil || got != "B" {
		t.Fatalf("new client after restart: %q, %v; want B (the last good config)", got, err)
	}
	t.Logf("new client served the last good config %s after restart in %s", toB, time.Since(start))
	// The source failure shows in status, and nothing served changed.
	st = must[status.Status](t)(s.WaitStatus(10*time.Second, "source error", func(st status.Status) bool { return st.Source.LastError != "" }))
	if rc := readyCond(t, st); rc.Reason != status.ReasonSourceFailed {
		t.Fatalf("Ready reason %s, want %s", rc.Reason, status.ReasonSourceFailed)
	}
	if st.LastAppliedRevision != toB {
		t.Fatalf("lastAppliedRevision changed to %s", st.LastAppliedRevision)
	}
}
