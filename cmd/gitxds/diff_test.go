package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/gitserver"
	"gitxds.dev/gitxds/testenv/golden"
)

// TestDiffLocalAndLive diffs the weight-shift case on a local clone (by
// branch, and against the work tree) and against a running server's
// GET /snapshot (all classes, and one node's class).
func TestDiffLocalAndLive(t *testing.T) {
	srv := gitserver.New(t, gitserver.Options{})
	base := golden.Load(t, "testdata/preview/base.txtar")
	repo := publishCase(t, srv, "weight-shift", base, golden.Load(t, "testdata/preview/weight-shift.txtar"))
	url, work := repo.URL(), repo.WorkDir() // the work tree is on branch pr

	report := func(args ...string) (*diff.Report, int) {
		t.Helper()
		out, stderr, code := runGitxds(t, append(args, "-o", "json", "--exit-code", "--path", "overlays/prod")...)
		if code == exitUsage {
			t.Fatalf("gitxds %s: exit 2: %s", strings.Join(args, " "), stderr)
		}
		var rep diff.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("gitxds %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return &rep, code
	}
	// The route changes once per class: envoy (one RouteConfiguration per
	// port), envoy-scoped (the hostname's RouteConfiguration) and grpc. A
	// live snapshot (GET /snapshot) has no envoy-scoped class.
	wantShift := func(name string, rep *diff.Report, code, n int) {
		t.Helper()
		if code != exitInvalid || rep.Counts.Changed != n || len(rep.Changes) != n {
			t.Errorf("%s: exit %d, %+v; want exit 1 and %d route changes", name, code, rep.Counts, n)
			return
		}
		for _, c := range rep.Changes {
			if !strings.HasPrefix(c.Summary, "weighted_clusters: payments/payments-v1 100→20, payments/payments-v2 0→80") {
				t.Errorf("%s: summary %q", name, c.Summary)
			}
		}
	}

	rep, code := report("diff", "--repo", work, "--from", "main", "--to", "pr")
	wantShift("local branches", rep, code, 3)
	rep, code = report("diff", "--repo", work, "--from", "main")
	wantShift("local work tree", rep, code, 3)
	rep, code = report("diff", "--repo", url, "--from", "main", "--to", prRef)
	wantShift("URL, refs/pull/1/head", rep, code, 3)

	// A running server that serves main.
	js, stderr, code := runGitxds(t, "render", "--repo", url, "--ref", "main", "--path", "overlays/prod", "-o", "json")
	if code != 0 {
		t.Fatalf("render: %d %s", code, stderr)
	}
	f := &repoFlags{repo: url, path: "overlays/prod"}
	mainBuild, err := f.build(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	set := mainBuild.Set
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/accepted" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(mainBuild.Model.Memory())
			return
		}
		if r.URL.Path != "/snapshot" {
			http.NotFound(w, r)
			return
		}
		body := []byte(js)
		if r.URL.Query().Get("node") == "grpc-1" {
			// One gRPC node: its class only, as the admin API prints it.
			one := snapshot.New(set.Revision, map[snapshot.Class]*snapshot.Resources{snapshot.GRPC: set.Classes[snapshot.GRPC]})
			var err error
			if body, err = snapshot.RenderJSON(one); err != nil {
				t.Error(err)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer admin.Close()

	rep, code = report("diff", "--repo", url, "--live", admin.URL, "--to", prRef)
	wantShift("live", rep, code, 2)
	rep, code = report("diff", "--repo", url, "--live", admin.URL+"/", "--to", "main")
	if code != 0 || rep.Different {
		t.Errorf("live against the revision it serves: exit %d, %+v", code, rep.Counts)
	}
	rep, code = report("diff", "--repo", url, "--live", admin.URL+"/snapshot?node=grpc-1", "--to", "main")
	if code != 0 || rep.Different {
		t.Errorf("live gRPC node against the revision it serves: exit %d, %+v %+v", code, rep.Counts, rep.Changes)
	}
	rep, code = report("diff", "--repo", url, "--live", admin.URL+"/snapshot?node=grpc-1", "--to", prRef)
	if code != exitInvalid || len(rep.Changes) != 1 || rep.Changes[0].Classes[0] != snapshot.GRPC {
		t.Errorf("live gRPC node against the PR: exit %d, %+v", code, rep.Changes)
	}

	// Usage and I/O errors exit 2.
	for _, args := range [][]string{
		{"diff", "--repo", url, "--path", "overlays/prod"},
		{"diff", "--repo", url, "--path", "overlays/prod", "--from", "main", "--live", admin.URL},
		{"diff", "--repo", url, "--path", "overlays/prod", "--from", "main", "-o", "yaml"},
		{"diff", "--repo", url, "--path", "overlays/prod", "--from", "no-such-branch"},
		{"diff", "--repo", url, "--path", "overlays/prod", "--live", admin.URL + "/nothing/here"},
		{"preview", "--repo", url, "--path", "overlays/prod", "--base", "main"},
		{"preview", "--repo", url, "--path", "overlays/prod", "--base", "main", "--head", "no-such-branch"},
	} {
		if _, _, code := runGitxds(t, args...); code != exitUsage {
			t.Errorf("gitxds %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}
