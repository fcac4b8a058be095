package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// request is what a fake Git host received.
type request struct {
	method, path, auth, token, sig string
	body                           map[string]any
	raw                            []byte
}

// host is a loopback HTTP server that records requests and answers with the
// next status of codes (then 201).
type host struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []request
	codes []int
	got   chan struct{}
}

func newHost(t *testing.T, codes ...int) *host {
	h := &host{codes: codes, got: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		h.mu.Lock()
		h.reqs = append(h.reqs, request{method: r.Method, path: r.URL.EscapedPath(), auth: r.Header.Get("Authorization"),
			token: r.Header.Get("PRIVATE-TOKEN"), sig: r.Header.Get("X-Signature"), body: body, raw: raw})
		code := http.StatusCreated
		if len(h.codes) > 0 {
			code, h.codes = h.codes[0], h.codes[1:]
		}
		h.mu.Unlock()
		w.WriteHeader(code)
		h.got <- struct{}{}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *host) wait(t *testing.T, n int) []request {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-h.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d requests arrived", i, n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]request(nil), h.reqs...)
}

func secretFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func configFile(t *testing.T, yaml string) string {
	p := filepath.Join(t.TempDir(), "notify.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) record(p string, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[string(r)]++
}

func (c *counts) get(r Result) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[string(r)]
}

func fast(c *counts) Options {
	return Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Record: c.record}
}

// TestGitHubCommitStatus: the request GitHub documents for
// POST /repos/{owner}/{repo}/statuses/{sha} (Enterprise: under /api/v3).
func TestGitHubCommitStatus(t *testing.T) {
	h := newHost(t)
	provs, err := Load(configFile(t, "providers:\n- type: github\n  address: "+h.URL+"/org/gateways.git\n  tokenFile: "+secretFile(t, "ghp_secret")+"\n  targetURL: https://gitxds.example.com/ui\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var c counts
	n := New(provs, fast(&c))
	defer n.Close()
	n.Notify(Event{Revision: "main@sha1:" + sha, State: Failure, Reason: "RolloutFailed", Stage: "canary", Overlay: "overlays/production",
		Message: "node canary-1 NACKed RDS: " + strings.Repeat("x", 200)})
	r := h.wait(t, 1)[0]
	if r.method != http.MethodPost || r.path != "/api/v3/repos/org/gateways/statuses/"+sha {
		t.Errorf("%s %s", r.method, r.path)
	}
	if r.auth != "Bearer ghp_secret" {
		t.Errorf("Authorization %q", r.auth)
	}
	d, _ := r.body["description"].(string)
	if r.body["state"] != "failure" || r.body["context"] != "gitxds/overlays/production" || r.body["target_url"] != "https://gitxds.example.com/ui" ||
		!strings.HasPrefix(d, "stage canary: node canary-1 NACKed RDS") || len([]rune(d)) > 140 {
		t.Errorf("body %v", r.body)
	}
}

// TestGitLabCommitStatus: POST /api/v4/projects/{url-encoded path}/statuses/{sha}
// with PRIVATE-TOKEN; GitLab's state names.
func TestGitLabCommitStatus(t *testing.T) {
	h := newHost(t)
	provs, err := Load(configFile(t, "providers:\n- type: gitlab\n  address: "+h.URL+"/group/sub/gateways\n  tokenFile: "+secretFile(t, "glpat")+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var c counts
	n := New(provs, fast(&c))
	defer n.Close()
	for _, st := range []State{Pending, Success, Failure} {
		n.Notify(Event{Revision: "main@sha1:" + sha, State: st, Message: "m", Overlay: "overlays/dev"})
	}
	reqs := h.wait(t, 3)
	for i, want := range []string{"running", "success", "failed"} {
		r := reqs[i]
		if r.path != "/api/v4/projects/group%2Fsub%2Fgateways/statuses/"+sha || r.token != "glpat" || r.body["state"] != want || r.body["name"] != "gitxds/overlays/dev" {
			t.Errorf("request %d: %s token=%q %v", i, r.path, r.token, r.body)
		}
	}
}

// TestGenericSigned: the event as JSON, X-Signature the HMAC of the body.
func TestGenericSigned(t *testing.T) {
	h := newHost(t)
	provs, err := Load(configFile(t, "providers:\n- type: generic\n  address: "+h.URL+"/hook\n  secretFile: "+secretFile(t, "k3y")+"\n- type: slack\n  address: "+h.URL+"/services/T/B/X\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var c counts
	n := New(provs, fast(&c))
	defer n.Close()
	n.Notify(Event{Revision: "main@sha1:" + sha, State: Success, Message: "applied"})
	reqs := h.wait(t, 2)
	for _, r := range reqs {
		switch r.path {
		case "/hook":
			m := hmac.New(sha256.New, []byte("k3y"))
			m.Write(r.raw)
			if r.sig != "sha256="+hex.EncodeToString(m.Sum(nil)) || r.body["state"] != "success" || r.body["revision"] != "main@sha1:"+sha {
				t.Errorf("generic: sig %q body %v", r.sig, r.body)
			}
		case "/services/T/B/X":
			if txt, _ := r.body["text"].(string); !strings.Contains(txt, "applied") || !strings.Contains(txt, sha) {
				t.Errorf("slack: %v", r.body)
			}
		default:
			t.Errorf("unexpected path %s", r.path)
		}
	}
}

// TestRetries: 5xx is retried with backoff until it succeeds; 4xx is not.
func TestRetries(t *testing.T) {
	h := newHost(t, 500, 502)
	p, _ := (ProviderConfig{Type: Slack, Address: h.URL}).build(nil)
	var c counts
	n := New([]Provider{p}, fast(&c))
	defer n.Close()
	n.Notify(Event{Revision: "r", State: Success})
	if got := len(h.wait(t, 3)); got != 3 {
		t.Fatalf("%d requests, want 3", got)
	}
	waitFor(t, func() bool { return c.get(Delivered) == 1 })

	h2 := newHost(t, 401, 401)
	p2, _ := (ProviderConfig{Type: Slack, Address: h2.URL}).build(nil)
	var c2 counts
	n2 := New([]Provider{p2}, fast(&c2))
	defer n2.Close()
	n2.Notify(Event{Revision: "r", State: Success})
	h2.wait(t, 1)
	waitFor(t, func() bool { return c2.get(Failed) == 1 })
	h2.mu.Lock()
	if len(h2.reqs) != 1 {
		t.Errorf("a 401 was retried: %d requests", len(h2.reqs))
	}
	h2.mu.Unlock()
}

// TestNeverBlocks: a provider that hangs does not block Notify; a full queue
// drops the oldest events and counts them.
func TestNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var c counts
	n := New([]Provider{hangs{release}}, Options{Queue: 4, Record: c.record})
	for i := 0; i < 20; i++ {
		n.Notify(Event{Revision: "r", State: Pending})
	}
	// 20 events: one in flight, 4 queued, the rest dropped.
	if d := c.get(Dropped); d < 15 {
		t.Errorf("%d dropped, want at least 15", d)
	}
	close(release)
	n.Close()
}

type hangs struct{ release chan struct{} }

func (h hangs) Name() string { return "hangs" }
func (h hangs) Send(ctx context.Context, _ Event) error {
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return nil
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoadRefuses: bad configs name the provider and the problem.
func TestLoadRefuses(t *testing.T) {
	for yaml, want := range map[string]string{
		"providers:\n- type: github\n  address: https://github.com/org\n  tokenFile: " + secretFile(t, "x") + "\n": "want https://<host>/<owner>/<repository>",
		"providers:\n- type: github\n  address: https://github.com/org/repo\n":                                     "tokenFile is required",
		"providers:\n- type: teams\n  address: https://x.example.com/\n":                                           `unknown type "teams"`,
		"providers:\n- type: slack\n  address: ftp://x/\n":                                                         "want an http(s) URL",
		"providers:\n- type: slack\n  address: https://x/\n  token: inline\n":                                      "unknown field",
	} {
		_, err := Load(configFile(t, yaml), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", yaml, err, want)
		}
	}
}
