// Package webhook receives push notifications from Git hosts so that gitxds
// reconciles a push at once instead of at the next poll (polling stays as
// the safety net). Three endpoints share one secret (docs/architecture.md §7):
//
//   - POST /hooks/github: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
//     the body>, X-GitHub-Event (push; ping is answered), X-GitHub-Delivery.
//     The body is JSON, or a form with a payload field; the signature covers
//     the raw body either way.
//   - POST /hooks/gitlab: X-Gitlab-Token equal to the secret, X-Gitlab-Event
//     "Push Hook" or "Tag Push Hook", X-Gitlab-Event-UUID as delivery id.
//   - POST /hooks/generic: X-Signature: sha256=<hex HMAC-SHA256 of the body>,
//     optional X-Delivery-Id; body {"ref": "refs/heads/main"} (other fields
//     are ignored; add e.g. "after": "<sha>" so each event's body differs).
//
// Answers: 202 when a push for the watched ref triggered a reconcile, 202
// with a message when the event or the ref is not one gitxds follows, 200
// "duplicate" for a replayed delivery (same delivery id, or same body and
// signature within the replay window), 401 on a missing or wrong signature
// (nothing else happens), 400 on a body that is not a push, 413 on a body
// over the limit. Every delivery is counted in
// gitxds_webhook_deliveries_total{provider,result}.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gitxds.dev/gitxds/reconciler/metrics"
)

// Defaults.
const (
	DefaultMaxBody      = 4 << 20 // GitHub caps payloads at 25 MB; pushes are far smaller
	DefaultReplayWindow = time.Hour
	DefaultReplayMax    = 10000
)

// Results, the values of the result label.
const (
	ResultTriggered    = "triggered"
	ResultIgnored      = "ignored"
	ResultDuplicate    = "duplicate"
	ResultUnauthorized = "unauthorized"
	ResultBadRequest   = "bad_request"
	ResultTooLarge     = "too_large"
	ResultPing         = "ping"
)

// Options of the webhook endpoints.
type Options struct {
	// Secret is the shared secret (HMAC key, or GitLab's token); required.
	Secret []byte
	// Ref is the watched ref as given to --ref: "main", "refs/heads/main", a
	// tag name, or "HEAD" (then a push to any branch triggers a reconcile).
	Ref string
	// Trigger asks for a reconcile now; it must not block.
	Trigger func(why string)
	// Metrics, when set, counts deliveries.
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// MaxBody bounds a request body (DefaultMaxBody when zero).
	MaxBody int64
	// ReplayWindow is how long a delivery id or body signature is
	// remembered (DefaultReplayWindow when zero); ReplayMax bounds how many
	// (DefaultReplayMax when zero).
	ReplayWindow time.Duration
	ReplayMax    int
	// Now is the clock (tests).
	Now func() time.Time
}

// Handler serves the webhook endpoints.
type Handler struct {
	o    Options
	seen *replayCache
}

// New checks o and returns the handler.
func New(o Options) (*Handler, error) {
	if len(o.Secret) == 0 {
		return nil, errors.New("webhook: empty secret")
	}
	if o.Trigger == nil {
		return nil, errors.New("webhook: no trigger")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = DefaultReplayWindow
	}
	if o.ReplayMax <= 0 {
		o.ReplayMax = DefaultReplayMax
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{o: o, seen: newReplayCache(o.ReplayWindow, o.ReplayMax, o.Now)}, nil
}

// Routes are the endpoints, keyed by ServeMux pattern, to mount on the admin
// API (admin.Options.Extra).
func (h *Handler) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /hooks/github":  http.HandlerFunc(h.github),
		"POST /hooks/gitlab":  http.HandlerFunc(h.gitlab),
		"POST /hooks/generic": http.HandlerFunc(h.generic),
	}
}

// ServeHTTP serves the three routes on their own (tests, or a separate
// listener).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	for p, hh := range h.Routes() {
		mux.Handle(p, hh)
	}
	mux.ServeHTTP(w, r)
}

// delivery is one request being handled.
type delivery struct {
	h        *Handler
	provider string
	w        http.ResponseWriter
	r        *http.Request
	body     []byte
}

func (h *Handler) start(provider string, w http.ResponseWriter, r *http.Request) (*delivery, bool) {
	d := &delivery{h: h, provider: provider, w: w, r: r}
	body, err := readBody(w, r, h.o.MaxBody)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			d.reply(http.StatusRequestEntityTooLarge, ResultTooLarge, "body over the size limit")
		} else {
			d.reply(http.StatusBadRequest, ResultBadRequest, "cannot read body")
		}
		return nil, false
	}
	d.body = body
	return d, true
}

func (h *Handler) github(w http.ResponseWriter, r *http.Request) {
	d, ok := h.start("github", w, r)
	if !ok {
		return
	}
	if !d.checkHMAC(r.Header.Get("X-Hub-Signature-256")) {
		return
	}
	switch ev := r.Header.Get("X-GitHub-Event"); ev {
	case "push":
	case "ping":
		d.reply(http.StatusOK, ResultPing, "pong")
		return
	default:
		d.reply(http.StatusAccepted, ResultIgnored, "ignored: event "+quote(ev)+" is not a push")
		return
	}
	body := d.body
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		v, err := url.ParseQuery(string(body))
		if err != nil || v.Get("payload") == "" {
			d.reply(http.StatusBadRequest, ResultBadRequest, "form body without a payload field")
			return
		}
		body = []byte(v.Get("payload"))
	}
	d.push(r.Header.Get("X-GitHub-Delivery"), r.Header.Get("X-Hub-Signature-256"), body)
}

func (h *Handler) gitlab(w http.ResponseWriter, r *http.Request) {
	d, ok := h.start("gitlab", w, r)
	if !ok {
		return
	}
	tok := r.Header.Get("X-Gitlab-Token")
	// Compare MACs of both, so the comparison's time says nothing about the
	// secret, not even its length.
	if tok == "" || subtle.ConstantTimeCompare(mac([]byte("gitlab"), []byte(tok)), mac([]byte("gitlab"), h.o.Secret)) != 1 {
		d.reply(http.StatusUnauthorized, ResultUnauthorized, "missing or wrong X-Gitlab-Token")
		return
	}
	switch ev := r.Header.Get("X-Gitlab-Event"); ev {
	case "Push Hook", "Tag Push Hook":
	default:
		d.reply(http.StatusAccepted, ResultIgnored, "ignored: event "+quote(ev)+" is not a push")
		return
	}
	id := r.Header.Get("X-Gitlab-Event-UUID")
	if id == "" {
		id = r.Header.Get("X-Gitlab-Webhook-UUID")
	}
	d.push(id, "", d.body)
}

func (h *Handler) generic(w http.ResponseWriter, r *http.Request) {
	d, ok := h.start("generic", w, r)
	if !ok {
		return
	}
	if !d.checkHMAC(r.Header.Get("X-Signature")) {
		return
	}
	d.push(r.Header.Get("X-Delivery-Id"), r.Header.Get("X-Signature"), d.body)
}

// checkHMAC verifies "sha256=<hex>" against the body; on failure it replies
// 401.
func (d *delivery) checkHMAC(header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil || !hmac.Equal(got, mac(d.h.o.Secret, d.body)) {
		d.reply(http.StatusUnauthorized, ResultUnauthorized, "missing or wrong signature")
		return false
	}
	return true
}

// push handles an authenticated push: replay check, then the ref.
func (d *delivery) push(id, sig string, payload []byte) {
	keys := []string{}
	if id != "" {
		keys = append(keys, d.provider+"/id/"+id)
	}
	sum := sha256.Sum256(d.body)
	keys = append(keys, d.provider+"/body/"+hex.EncodeToString(sum[:])+"/"+sig)
	if !d.h.seen.add(keys...) {
		d.reply(http.StatusOK, ResultDuplicate, "duplicate")
		return
	}
	var p struct {
		Ref string `json:"ref"`
	}
	if err := json.Unmarshal(payload, &p); err != nil || p.Ref == "" {
		d.reply(http.StatusBadRequest, ResultBadRequest, `body is not a push: want JSON with a "ref"`)
		return
	}
	if !refMatches(d.h.o.Ref, p.Ref) {
		d.reply(http.StatusAccepted, ResultIgnored, "ignored: "+quote(p.Ref)+" is not the watched ref "+quote(d.h.o.Ref))
		return
	}
	d.h.o.Trigger("webhook/" + d.provider)
	d.reply(http.StatusAccepted, ResultTriggered, "reconcile triggered for "+p.Ref)
}

func (d *delivery) reply(code int, result, msg string) {
	if d.h.o.Metrics != nil {
		d.h.o.Metrics.Webhooks.WithLabelValues(d.provider, result).Inc()
	}
	level := slog.LevelInfo
	if result == ResultUnauthorized || result == ResultTooLarge || result == ResultBadRequest {
		level = slog.LevelWarn
	}
	d.h.o.Log.Log(d.r.Context(), level, "webhook delivery", "provider", d.provider, "result", result,
		"message", msg, "remote", d.r.RemoteAddr)
	d.w.Header().Set("Content-Type", "application/json")
	d.w.WriteHeader(code)
	_ = json.NewEncoder(d.w).Encode(map[string]string{"result": result, "message": msg})
}

// refMatches reports whether a pushed ref is the watched one.
func refMatches(watched, pushed string) bool {
	switch {
	case watched == "" || watched == "HEAD":
		return strings.HasPrefix(pushed, "refs/heads/")
	case strings.HasPrefix(watched, "refs/"):
		return pushed == watched
	}
	return pushed == watched || pushed == "refs/heads/"+watched || pushed == "refs/tags/"+watched
}

func mac(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}
