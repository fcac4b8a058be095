package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
)

// fakeAdmin serves a fixed status and records mutating requests.
func fakeAdmin(t *testing.T, st status.Status) (*httptest.Server, *[]string) {
	var posts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/status":
			json.NewEncoder(w).Encode(st)
		case r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/json":
			posts = append(posts, r.URL.Path+" "+r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusAccepted)
		default:
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &posts
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestRolloutCLI: `rollout` lists its actions; status prints each stage's
// ACKs of its own nodes, the bake left and gates against their bounds, and
// -o json; a rollout that reached no node says so; actions POST JSON.
func TestRolloutCLI(t *testing.T) {
	started := time.Now().Add(-5 * time.Second)
	v, max := 0.2, 0.01
	srv, posts := fakeAdmin(t, status.Status{LastAttemptedRevision: "main@sha1:2", Rollout: &status.Rollout{
		Revision: "main@sha1:2", Phase: "Progressing", Stages: []status.Stage{
			{Name: "canary", Phase: "Baking", Nodes: []string{"c1", "c2"}, Acked: 2, Bake: "30s", StartedAt: &started,
				Gates: []status.GateValue{{Name: "error-rate", Value: &v, Max: &max}}},
			{Name: "all", Phase: "Progressing", NodeCount: 40, Nodes: []string{"s1"}, Acked: 12, Warning: "replica b has not applied stage all yet"}}}})
	out, err := runCLI(t, "rollout")
	if err != nil || !strings.Contains(out, "status") || !strings.Contains(out, "abort") {
		t.Errorf("rollout alone: %v\n%s", err, out)
	}
	out, err = runCLI(t, "rollout", "status", "--help")
	if err != nil || !strings.Contains(out, "gitxds rollout status [-o text|json] [-w]") {
		t.Errorf("rollout status --help prints:\n%s", out)
	}
	out, err = runCLI(t, "rollout", "status", "--admin", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stage canary     Baking      2/2 node(s) ACKed, bake 30s (at most 2", "error-rate=0.2 ≤ 0.01 FAILING",
		// Fleet-wide, a stage names a few of its nodes and counts them all.
		"stage all        Progressing 12/40 node(s) ACKed", "warning: replica b has not applied stage all yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "rollout", "status", "-o", "json", "--admin", srv.URL)
	var st status.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Rollout.Stages[0].Acked != 2 {
		t.Errorf("-o json: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "rollout", "abort", "--admin", srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "reconcile", "--admin", srv.URL); err != nil {
		t.Fatal(err)
	}
	if strings.Join(*posts, ",") != "/rollout/abort ,/reconcile " {
		t.Errorf("posts %q", *posts)
	}

	empty, _ := fakeAdmin(t, status.Status{Rollout: &status.Rollout{Phase: "Succeeded", Stages: []status.Stage{{Name: "canary", Phase: "Passed"}}}})
	if out, _ := runCLI(t, "rollout", "status", "--admin", empty.URL); !strings.Contains(out, "warning:   no stage selected any node") {
		t.Errorf("no warning for a rollout that reached no node:\n%s", out)
	}
}
