package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

type ctlBackend struct {
	triggers int
	actions  []string
	memory   *model.Memory
}

func (f *ctlBackend) Status() status.Status { return status.Status{} }
func (f *ctlBackend) Trigger(string)        { f.triggers++ }
func (f *ctlBackend) Rollout(a rollout.Action) error {
	f.actions = append(f.actions, string(a))
	return nil
}
func (f *ctlBackend) LastGood() *snapshot.Set { return nil }
func (f *ctlBackend) Memory() *model.Memory   { return f.memory }
func (f *ctlBackend) calls() int              { return f.triggers + len(f.actions) }
func (f *ctlBackend) reset()                  { f.triggers, f.actions = 0, nil }
func (f *ctlBackend) NodesJSON() any          { return nil }
func (f *ctlBackend) Served(string) (*snapshot.Set, snapshot.Class, snapshot.Group, bool) {
	return nil, "", "", false
}

// Mutating endpoints refuse what a browser page of another site can send:
// a "simple" request (text/plain, form) and any request with a foreign
// Origin. A CLI or script sending JSON, or the bearer token, gets through.
func TestMutatingEndpointsRefuseCrossSiteRequests(t *testing.T) {
	cases := []struct {
		name      string
		token     string
		addresses []string
		hdr       map[string]string
		want      int
	}{
		{"text/plain without a token", "", nil, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"form without a token", "", nil, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"no content type", "", nil, nil, http.StatusUnsupportedMediaType},
		{"JSON", "", nil, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 0},
		{"JSON from a foreign Origin", "", []string{"127.0.0.1:9400"}, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"JSON from the admin address", "", []string{"127.0.0.1:9400"}, map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:9400"}, 0},
		{"localhost on an unspecified listener", "", []string{"0.0.0.0:9400"}, map[string]string{"Content-Type": "application/json", "Origin": "http://localhost:9400"}, 0},
		{"another port of localhost", "", []string{"127.0.0.1:9400"}, map[string]string{"Content-Type": "application/json", "Origin": "http://localhost:8080"}, http.StatusForbidden},
		{"token, text/plain", "s3cret", nil, map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer s3cret"}, 0},
		{"token from a foreign Origin", "s3cret", []string{"127.0.0.1:9400"}, map[string]string{"Authorization": "Bearer s3cret", "Origin": "http://evil.example"}, http.StatusForbidden},
		{"JSON without the token", "s3cret", nil, map[string]string{"Content-Type": "application/json"}, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be := &ctlBackend{}
			h := New(Options{Backend: be, Fleet: be, Token: c.token, Addresses: c.addresses})
			for _, path := range []string{"/reconcile", "/rollout/abort", "/rollout/pause"} {
				be.reset()
				req := httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}"))
				for k, v := range c.hdr {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if c.want != 0 {
					if rec.Code != c.want || be.calls() != 0 {
						t.Errorf("POST %s: %d, %d call(s) to the backend; want %d and none", path, rec.Code, be.calls(), c.want)
					}
					continue
				}
				if rec.Code/100 != 2 || be.calls() != 1 {
					t.Errorf("POST %s: %d %s, %d call(s); want it served", path, rec.Code, rec.Body, be.calls())
				}
			}
		})
	}
}

func TestAcceptedServesTheModelsMemory(t *testing.T) {
	be := &ctlBackend{memory: &model.Memory{FirstAccepted: map[string]model.Since{"HTTPRoute a/x": {Revision: "r1", Seq: 3}}}}
	rec := httptest.NewRecorder()
	New(Options{Backend: be, Fleet: be}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/accepted", nil))
	var got model.Memory
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if got.FirstAccepted["HTTPRoute a/x"] != (model.Since{Revision: "r1", Seq: 3}) {
		t.Errorf("GET /accepted = %s", rec.Body)
	}
}

// An unknown rollout action is the caller's mistake (400), named with the
// valid ones, and never reaches the backend.
func TestUnknownRolloutActionIsABadRequest(t *testing.T) {
	be := &ctlBackend{}
	req := httptest.NewRequest(http.MethodPost, "/rollout/restart", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	New(Options{Backend: be, Fleet: be}).ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || be.calls() != 0 || !strings.Contains(rec.Body.String(), "pause, resume, abort") {
		t.Fatalf("POST /rollout/restart: %d %s, %d call(s)", rec.Code, rec.Body, be.calls())
	}
	if be.actions != nil {
		t.Fatalf("actions %v", be.actions)
	}
}
