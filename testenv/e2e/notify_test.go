package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/stack"
)

// fakeGitHub implements POST /api/v3/repos/{owner}/{repo}/statuses/{sha}
// as GitHub documents it, and records each status it receives.
type fakeGitHub struct {
	mu       sync.Mutex
	statuses map[string][]string // sha -> "state: description"
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v3/repos/org/gateways/statuses/")
	if r.Method != http.MethodPost || !ok || r.Header.Get("Authorization") != "Bearer t0ken" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var body struct{ State, Context, Description string }
	data, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(data, &body); err != nil || body.Context != "gitxds/overlays/dev" {
		http.Error(w, "bad request", http.StatusUnprocessableEntity)
		return
	}
	g.mu.Lock()
	g.statuses[rest] = append(g.statuses[rest], body.State+": "+body.Description)
	g.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (g *fakeGitHub) states(sha string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, s := range g.statuses[sha] {
		st, _, _ := strings.Cut(s, ":")
		if len(out) == 0 || out[len(out)-1] != st {
			out = append(out, st)
		}
	}
	return out
}

// TestCommitStatuses: `serve` with a GitHub provider sets pending then
// success on a good commit, and pending then failure (naming the file) on
// a commit whose team directory is broken.
func TestCommitStatuses(t *testing.T) {
	gh := &fakeGitHub{statuses: map[string][]string{}}
	srv := httptest.NewServer(gh)
	defer srv.Close()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	cfg := filepath.Join(dir, "notify.yaml")
	os.WriteFile(tok, []byte("t0ken\n"), 0o600)
	os.WriteFile(cfg, []byte("providers:\n- type: github\n  address: "+srv.URL+"/org/gateways\n  tokenFile: "+tok+"\n"), 0o600)
	provs, err := notify.Load(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ups := map[string]string{"A": stack.FreeAddr(), "B": stack.FreeAddr()}
	s, err := stack.Start(context.Background(), stack.Options{Files: repo(ups["A"], ups["B"]), Upstreams: ups, Interval: 100 * time.Millisecond, Notify: provs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	head := must[string](t)(s.Repo.Head())
	must[status.Status](t)(s.WaitApplied(20*time.Second, "main@sha1:"+head))
	waitStates(t, gh, head, "pending success")

	bad := must[string](t)(s.Commit("broken", map[string]*string{"teams/echo/routes.yaml": ptr("kind: [\n")}))
	must[status.Status](t)(s.WaitAttempted(20*time.Second, bad))
	sha := strings.TrimPrefix(bad, "main@sha1:")
	waitStates(t, gh, sha, "pending failure")
	gh.mu.Lock()
	last := gh.statuses[sha][len(gh.statuses[sha])-1]
	gh.mu.Unlock()
	if !strings.Contains(last, "teams/echo/routes.yaml") {
		t.Errorf("failure status %q does not name the file", last)
	}
}

func waitStates(t *testing.T, gh *fakeGitHub, sha, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Join(gh.states(sha), " ") != want {
		if time.Now().After(deadline) {
			t.Fatalf("commit %s: statuses %v, want %s", sha, gh.states(sha), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
