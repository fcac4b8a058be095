package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/stack"
)

// TestGetAndHistory runs `gitxds get` and `gitxds history` against a
// running serve (in process, on a real Git server) after a good commit and
// one that breaks a team's directory.
func TestGetAndHistory(t *testing.T) {
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{Files: stack.EchoRepo(ups["A"], ups["B"]), Upstreams: ups, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	head, _ := s.Repo.Head()
	if _, err := s.WaitApplied(20*time.Second, "main@sha1:"+head); err != nil {
		t.Fatal(err)
	}
	c, err := s.Client("node-1", map[string]string{"rollout-group": "canary"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Call(ctx, stack.EchoHost, nil); err != nil {
		t.Fatal(err)
	}
	broken := "kind: [\n"
	bad, err := s.Commit("broken", map[string]*string{"teams/echo/routes.yaml": &broken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitStatus(20*time.Second, "refused", func(st status.Status) bool {
		return st.LastAttemptedRevision == bad && st.LastAppliedRevision == bad
	}); err != nil {
		t.Fatal(err)
	}
	admin := "--admin=" + s.Daemon.AdminAddr

	out, err := runCLI(t, "history", admin)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REVISION") || !hasRow(lines[1], bad+" failure ObjectsRejected") ||
		!hasRow(lines[2], "main@sha1:"+head+" success") {
		t.Errorf("history:\n%s", out)
	}
	out, err = runCLI(t, "get", "revisions", "-o", "json", admin)
	var revs []status.Revision
	if err != nil || json.Unmarshal([]byte(out), &revs) != nil || len(revs) != 2 || revs[0].Finished == nil {
		t.Errorf("get revisions -o json: %v\n%s", err, out)
	}
	out, err = runCLI(t, "get", "objects", "--team", "echo", admin)
	if err != nil || !hasRow(out, "False Kustomization teams/echo teams/echo/routes.yaml BuildFailed") ||
		!hasRow(out, "True Backend echo/a teams/echo/backends.yaml Accepted") || strings.Contains(out, "Gateway") {
		t.Errorf("get objects --team echo:\n%s", out)
	}
	out, err = runCLI(t, "get", "routes", "-o", "yaml", admin)
	if err != nil || !strings.Contains(out, "kind: HTTPRoute") || strings.Contains(out, "kind: Backend") {
		t.Errorf("get routes -o yaml:\n%s", out)
	}
	out, err = runCLI(t, "get", "nodes", admin)
	if err != nil || !strings.Contains(out, "node-1") || !strings.Contains(out, "rollout-group=canary") {
		t.Errorf("get nodes:\n%s", out)
	}
	if _, err := runCLI(t, "get", "pods", admin); err == nil {
		t.Errorf("get pods: no error")
	}
}

// hasRow reports whether a line of a table starts with the given fields.
func hasRow(table, fields string) bool {
	want := strings.Fields(fields)
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) >= len(want) && strings.Join(f[:len(want)], " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

// TestValidateJSON: validate -o json prints the problems and every object's
// status; an unknown format is a usage error.
func TestValidateJSON(t *testing.T) {
	out, err := runCLI(t, "validate", "--repo", "../..", "--path", "overlays/dev", "-o", "json")
	var v struct {
		Objects  int
		Problems []any
		Status   []status.Object
	}
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Objects == 0 || len(v.Problems) != 0 || len(v.Status) != v.Objects {
		t.Errorf("validate -o json: %v\n%.300s", err, out)
	}
	if _, err := runCLI(t, "validate", "--repo", "../..", "--path", "overlays/dev", "-o", "xml"); err == nil {
		t.Error("-o xml accepted")
	}
}
