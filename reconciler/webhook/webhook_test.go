package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"gitxds.dev/gitxds/reconciler/metrics"
)

const secret = "s3cr3t-webhook"

type fakeTrigger struct {
	mu   sync.Mutex
	whys []string
}

func (f *fakeTrigger) Trigger(why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.whys = append(f.whys, why)
}

func (f *fakeTrigger) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.whys)
}

type fixture struct {
	h   *Handler
	trg *fakeTrigger
	m   *metrics.Metrics
	now time.Time
}

func newFixture(t *testing.T, ref string) *fixture {
	t.Helper()
	f := &fixture{trg: &fakeTrigger{}, m: metrics.New(), now: time.Unix(1700000000, 0)}
	h, err := New(Options{Secret: []byte(secret), Ref: ref, Trigger: f.trg.Trigger, Metrics: f.m,
		MaxBody: 64 << 10, ReplayWindow: time.Minute, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func sign(key, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (f *fixture) do(t *testing.T, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var out struct{ Result, Message string }
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out.Result
}

func (f *fixture) counted(provider, result string) float64 {
	var m dto.Metric
	if err := f.m.Webhooks.WithLabelValues(provider, result).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func pushBody(ref, after string) string {
	return `{"ref":"` + ref + `","before":"0000","after":"` + after + `","repository":{"full_name":"acme/gateways"}}`
}

func github(body, delivery, sig string) map[string]string {
	return map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}
}

func TestGitHub(t *testing.T) {
	f := newFixture(t, "main")
	body := pushBody("refs/heads/main", "aaa")
	expect := func(name string, code int, result string, triggers int, gotCode int, gotResult string) {
		t.Helper()
		if gotCode != code || gotResult != result || f.trg.count() != triggers {
			t.Fatalf("%s: got %d %q with %d triggers, want %d %q with %d", name, gotCode, gotResult, f.trg.count(), code, result, triggers)
		}
	}

	c, r := f.do(t, "/hooks/github", body, github(body, "d-1", sign("wrong", body)))
	expect("wrong key", 401, ResultUnauthorized, 0, c, r)
	c, r = f.do(t, "/hooks/github", body, github(body, "d-1", ""))
	expect("no signature", 401, ResultUnauthorized, 0, c, r)
	c, r = f.do(t, "/hooks/github", body, github(body, "d-1", sign(secret, body+" ")))
	expect("signature of another body", 401, ResultUnauthorized, 0, c, r)
	c, r = f.do(t, "/hooks/github", body, github(body, "d-1", "sha256=zz"))
	expect("malformed signature", 401, ResultUnauthorized, 0, c, r)

	c, r = f.do(t, "/hooks/github", body, github(body, "d-1", sign(secret, body)))
	expect("valid push", 202, ResultTriggered, 1, c, r)
	if f.trg.whys[0] != "webhook/github" {
		t.Fatalf("trigger reason %q", f.trg.whys[0])
	}
	// GitHub's "Redeliver" sends the same delivery id and body.
	c, r = f.do(t, "/hooks/github", body, github(body, "d-1", sign(secret, body)))
	expect("same delivery id", 200, ResultDuplicate, 1, c, r)
	// Same body and signature under another delivery id: a replay too.
	c, r = f.do(t, "/hooks/github", body, github(body, "d-2", sign(secret, body)))
	expect("same body, new id", 200, ResultDuplicate, 1, c, r)

	other := pushBody("refs/heads/feature", "bbb")
	c, r = f.do(t, "/hooks/github", other, github(other, "d-3", sign(secret, other)))
	expect("other branch", 202, ResultIgnored, 1, c, r)

	tag := pushBody("refs/tags/mainline", "ccc")
	c, r = f.do(t, "/hooks/github", tag, github(tag, "d-4", sign(secret, tag)))
	expect("tag with the ref as prefix", 202, ResultIgnored, 1, c, r)

	ping := `{"zen":"Keep it logically awesome."}`
	c, r = f.do(t, "/hooks/github", ping, map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(secret, ping)})
	expect("ping", 200, ResultPing, 1, c, r)
	issue := `{"action":"opened"}`
	c, r = f.do(t, "/hooks/github", issue, map[string]string{"X-GitHub-Event": "issues", "X-Hub-Signature-256": sign(secret, issue)})
	expect("other event", 202, ResultIgnored, 1, c, r)

	second := pushBody("refs/heads/main", "ddd")
	c, r = f.do(t, "/hooks/github", second, github(second, "d-5", sign(secret, second)))
	expect("next push", 202, ResultTriggered, 2, c, r)

	// Past the window, the delivery is no longer remembered: a replay then
	// costs one more (idempotent) reconcile.
	f.now = f.now.Add(2 * time.Minute)
	c, r = f.do(t, "/hooks/github", body, github(body, "d-1", sign(secret, body)))
	expect("replay after the window", 202, ResultTriggered, 3, c, r)

	for result, want := range map[string]float64{ResultUnauthorized: 4, ResultTriggered: 3, ResultDuplicate: 2, ResultIgnored: 3, ResultPing: 1} {
		if got := f.counted("github", result); got != want {
			t.Errorf("gitxds_webhook_deliveries_total{provider=github,result=%s} = %v, want %v", result, got, want)
		}
	}
}

func TestGitHubForm(t *testing.T) {
	f := newFixture(t, "refs/heads/main")
	body := "payload=" + url.QueryEscape(pushBody("refs/heads/main", "aaa"))
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range github(body, "f-1", sign(secret, body)) {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != 202 || f.trg.count() != 1 {
		t.Fatalf("form push: %d %s, %d triggers", rec.Code, rec.Body, f.trg.count())
	}
}

func TestGitLab(t *testing.T) {
	f := newFixture(t, "main")
	body := pushBody("refs/heads/main", "aaa")
	hdr := func(tok, uuid string) map[string]string {
		return map[string]string{"X-Gitlab-Token": tok, "X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": uuid}
	}
	if c, r := f.do(t, "/hooks/gitlab", body, hdr("nope", "u1")); c != 401 || r != ResultUnauthorized || f.trg.count() != 0 {
		t.Fatalf("wrong token: %d %s", c, r)
	}
	if c, r := f.do(t, "/hooks/gitlab", body, hdr("", "u1")); c != 401 || r != ResultUnauthorized || f.trg.count() != 0 {
		t.Fatalf("no token: %d %s", c, r)
	}
	if c, r := f.do(t, "/hooks/gitlab", body, hdr(secret, "u1")); c != 202 || r != ResultTriggered || f.trg.count() != 1 {
		t.Fatalf("valid: %d %s", c, r)
	}
	if c, r := f.do(t, "/hooks/gitlab", body, hdr(secret, "u1")); c != 200 || r != ResultDuplicate || f.trg.count() != 1 {
		t.Fatalf("replay: %d %s", c, r)
	}
	mr := `{"object_kind":"merge_request"}`
	if c, r := f.do(t, "/hooks/gitlab", mr, map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Merge Request Hook"}); c != 202 || r != ResultIgnored {
		t.Fatalf("merge request: %d %s", c, r)
	}
	other := pushBody("refs/heads/dev", "bbb")
	if c, r := f.do(t, "/hooks/gitlab", other, hdr(secret, "u2")); c != 202 || r != ResultIgnored || f.trg.count() != 1 {
		t.Fatalf("other ref: %d %s", c, r)
	}
}

func TestGeneric(t *testing.T) {
	f := newFixture(t, "main")
	body := `{"ref":"refs/heads/main","after":"abc"}`
	if c, r := f.do(t, "/hooks/generic", body, map[string]string{"X-Signature": sign("x", body)}); c != 401 || r != ResultUnauthorized {
		t.Fatalf("bad signature: %d %s", c, r)
	}
	if c, r := f.do(t, "/hooks/generic", body, map[string]string{"X-Signature": sign(secret, body)}); c != 202 || r != ResultTriggered {
		t.Fatalf("valid: %d %s", c, r)
	}
	if c, r := f.do(t, "/hooks/generic", body, map[string]string{"X-Signature": sign(secret, body)}); c != 200 || r != ResultDuplicate {
		t.Fatalf("replay: %d %s", c, r)
	}
	// The delivery id alone makes a replay too.
	b2 := `{"ref":"refs/heads/main","after":"def"}`
	if c, r := f.do(t, "/hooks/generic", b2, map[string]string{"X-Signature": sign(secret, b2), "X-Delivery-Id": "x1"}); c != 202 || r != ResultTriggered {
		t.Fatalf("with id: %d %s", c, r)
	}
	b3 := `{"ref":"refs/heads/main","after":"ghi"}`
	if c, r := f.do(t, "/hooks/generic", b3, map[string]string{"X-Signature": sign(secret, b3), "X-Delivery-Id": "x1"}); c != 200 || r != ResultDuplicate {
		t.Fatalf("same id: %d %s", c, r)
	}
	bad := `{"after":"jkl"}`
	if c, r := f.do(t, "/hooks/generic", bad, map[string]string{"X-Signature": sign(secret, bad)}); c != 400 || r != ResultBadRequest {
		t.Fatalf("no ref: %d %s", c, r)
	}
	if f.trg.count() != 2 {
		t.Fatalf("%d triggers, want 2", f.trg.count())
	}
}

func TestBodyLimitAndMethod(t *testing.T) {
	f := newFixture(t, "main")
	big := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 100<<10) + `"}`
	if c, r := f.do(t, "/hooks/generic", big, map[string]string{"X-Signature": sign(secret, big)}); c != 413 || r != ResultTooLarge {
		t.Fatalf("big body: %d %s", c, r)
	}
	req := httptest.NewRequest(http.MethodGet, "/hooks/github", nil)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", rec.Code)
	}
	if f.trg.count() != 0 {
		t.Fatal("triggered")
	}
}

func TestUnauthenticatedDoesNotPoisonReplayCache(t *testing.T) {
	f := newFixture(t, "main")
	body := pushBody("refs/heads/main", "aaa")
	// An attacker who guesses the next delivery id cannot block it.
	f.do(t, "/hooks/github", body, github(body, "d-9", sign("attacker", body)))
	if c, r := f.do(t, "/hooks/github", body, github(body, "d-9", sign(secret, body))); c != 202 || r != ResultTriggered {
		t.Fatalf("genuine delivery after a forged one: %d %s", c, r)
	}
}

func TestRefMatches(t *testing.T) {
	for _, c := range []struct {
		watched, pushed string
		want            bool
	}{
		{"main", "refs/heads/main", true},
		{"main", "refs/tags/main", true},
		{"main", "refs/heads/main2", false},
		{"refs/heads/main", "refs/heads/main", true},
		{"refs/heads/main", "refs/tags/main", false},
		{"HEAD", "refs/heads/anything", true},
		{"HEAD", "refs/tags/v1", false},
		{"release/1.x", "refs/heads/release/1.x", true},
	} {
		if got := refMatches(c.watched, c.pushed); got != c.want {
			t.Errorf("refMatches(%q, %q) = %v", c.watched, c.pushed, got)
		}
	}
}

func TestReplayCacheBound(t *testing.T) {
	now := time.Unix(0, 0)
	c := newReplayCache(time.Hour, 3, func() time.Time { return now })
	for _, k := range []string{"a", "b", "c", "d"} {
		if !c.add(k) {
			t.Fatalf("%s seen", k)
		}
	}
	if c.add("d") || !c.add("a") {
		t.Fatal("want d remembered and a evicted")
	}
	if len(c.seen) != 3 || c.order.Len() != 3 {
		t.Fatalf("size %d/%d", len(c.seen), c.order.Len())
	}
}

func TestNewRefusesEmptySecret(t *testing.T) {
	if _, err := New(Options{Trigger: func(string) {}}); err == nil {
		t.Fatal("empty secret accepted")
	}
}
