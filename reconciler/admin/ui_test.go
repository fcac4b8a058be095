package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

type fakeBackend struct{ st status.Status }

func (f fakeBackend) History() []status.Revision {
	return []status.Revision{{Revision: "main@sha1:1111", Result: "success", Duration: "1.5s"}, {Revision: "main@sha1:2222", Result: "pending", Stage: "canary",
		Changes: []string{"payments.example.com  PathPrefix /refunds  →  payments/v2 100%  (was payments/v1 100%)"}}}
}

func (f fakeBackend) Status() status.Status        { return f.st }
func (f fakeBackend) Trigger(string)               {}
func (f fakeBackend) Rollout(rollout.Action) error { return nil }
func (f fakeBackend) LastGood() *snapshot.Set      { return nil }
func (f fakeBackend) Memory() *model.Memory        { return nil }

type fakeFleet struct{}

func (fakeFleet) Served(string) (*snapshot.Set, snapshot.Class, snapshot.Group, bool) {
	return nil, "", "", false
}
func (fakeFleet) NodesJSON() any {
	return []map[string]any{
		{"id": "canary-1", "class": "envoy", "labels": map[string]string{"rollout-group": "canary"}, "served": "r2@abc"},
		{"id": "stable-1", "class": "grpc", "served": "r1@def"},
	}
}

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestUI: the page shows the revision, the conditions, the rollout's stages
// with their progress and bake, gate values against their bounds, rejected
// objects with file and reason, nodes by class and stage; repository
// content is escaped; the content security policy allows only this origin.
func TestUI(t *testing.T) {
	started := time.Now().Add(-10 * time.Second)
	v, max := 0.002, 0.01
	st := status.Status{
		LastAttemptedRevision: "main@sha1:2222", LastAppliedRevision: "main@sha1:1111",
		Source:     status.Source{URL: "https://git.example.com/gw.git", Ref: "main", Path: "overlays/production"},
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Progressing", Message: "rolling out main@sha1:2222 (stage canary)"}},
		Rollout: &status.Rollout{Revision: "main@sha1:2222", Phase: "Progressing", Stage: "canary", StartedAt: started, Stages: []status.Stage{
			{Name: "canary", Phase: "Baking", Nodes: []string{"canary-1"}, Acked: 1, StartedAt: &started, Bake: "30s",
				Gates: []status.GateValue{{Name: "error-rate", Value: &v, Max: &max, OK: true}}},
			{Name: "all", Phase: "Pending"},
		}},
		Objects: []status.Object{{ObjectRef: ir.ObjectRef{Kind: "HTTPRoute", Namespace: "shop", Name: "web", File: "teams/shop/routes.yaml"},
			Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "UnsupportedValue", Message: `path "<script>alert(1)</script>" is invalid`}}}},
	}
	h := New(Options{Backend: fakeBackend{st}, Fleet: fakeFleet{}})
	res, body := get(t, h, "/ui")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{
		"overlays/production", "main@sha1:2222", "main@sha1:1111", "rolling out main@sha1:2222 (stage canary)",
		`data-stage="canary" data-phase="Baking"`, "1 of 1", "s left)", "error-rate: 0.002 ≤ 0.01",
		`data-stage="all" data-phase="Pending"`, "(no node selected)",
		"teams/shop/routes.yaml", "HTTPRoute shop/web", "UnsupportedValue", "&lt;script&gt;alert(1)&lt;/script&gt;",
		"canary-1", "rollout-group=canary", "envoy / canary:", "grpc / –:", `<script src="/ui/ui.js" defer></script>`,
		`<tr data-result="pending"><td><code>main@sha1:2222</code>`, `<tr data-result="success"><td><code>main@sha1:1111</code>`, "1.5s", "PathPrefix /refunds  →  payments/v2 100%",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("repository content is not escaped")
	}
	_, live := get(t, h, "/ui/live")
	if !strings.HasPrefix(live, `<main id="live"`) || strings.Contains(live, "<html") {
		t.Errorf("/ui/live is not the main element alone: %.80s", live)
	}
	if res, js := get(t, h, "/ui/ui.js"); res.StatusCode != 200 || !strings.Contains(js, "/ui/live") {
		t.Errorf("ui.js: %d", res.StatusCode)
	}
	if res, _ := get(t, h, "/ui/ui.html"); res.StatusCode != 404 {
		t.Errorf("the template is served: %d", res.StatusCode)
	}
	if res, _ := get(t, h, "/"); res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui" {
		t.Errorf("GET /: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}
