// Package admin is gitxds's admin HTTP API: status, what a node is served,
// reconcile and rollout controls, metrics and health.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

// Backend is what the admin API needs of the running server.
type Backend interface {
	Status() status.Status
	Trigger(why string)
	Rollout(action rollout.Action) error
	// LastGood is the snapshot that last completed a rollout (nil before).
	LastGood() *snapshot.Set
	// Memory is what the model keeps of the applied revision: the last
	// accepted version of every object and when each was first accepted
	// (what `gitxds diff --live` builds the head against).
	Memory() *model.Memory
}

// NodeSource is what the admin API needs of the xDS server (XDSFleet).
type NodeSource interface {
	// Served is what a node is being served now (of every proxy group),
	// its class and its group.
	Served(nodeID string) (set *snapshot.Set, class snapshot.Class, group snapshot.Group, ok bool)
	// NodesJSON lists the connected nodes (any JSON-encodable value).
	NodesJSON() any
}

// Options of the admin API.
type Options struct {
	Backend  Backend
	Fleet    NodeSource
	Registry *prometheus.Registry
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every mutating endpoint.
	Token string
	// Addresses the admin API is reached at (host:port: the listener's, an
	// advertised one). A mutating request with an Origin header must come
	// from one of them; a loopback or unspecified host also admits the
	// loopback names of the same port.
	Addresses []string
	Log       *slog.Logger
	// Extra handlers mounted on the mux (webhooks).
	Extra map[string]http.Handler
}

// New returns the admin API handler.
func New(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	a := &api{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", a.status)
	mux.HandleFunc("GET /snapshot", a.snapshot)
	mux.HandleFunc("GET /nodes", a.nodes)
	mux.HandleFunc("GET /accepted", a.accepted)
	mux.HandleFunc("POST /reconcile", a.mutating(a.reconcile))
	mux.HandleFunc("POST /rollout/{action}", a.mutating(a.rollout))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /history", a.history)
	mux.HandleFunc("GET /ui", a.ui)
	mux.HandleFunc("GET /ui/live", a.ui)
	mux.HandleFunc("GET /ui/{asset}", a.uiAsset)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui", http.StatusFound) })
	if o.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	}
	for p, h := range o.Extra {
		mux.Handle(p, h)
	}
	return mux
}

type api struct{ o Options }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// mutating guards the endpoints that change something (reconcile, rollout
// controls) against cross-site requests from a browser on the operator's
// machine or network:
//
//   - a request whose Origin header is not the admin API's own address is
//     refused (403), token or not;
//   - with a token configured, "Authorization: Bearer <token>" is required
//     (401);
//   - without one, the body must be declared "Content-Type:
//     application/json" (415): a page cannot send that cross-site without a
//     CORS preflight, which this API never answers.
func (a *api) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !a.sameOrigin(o) {
			writeErr(w, http.StatusForbidden, fmt.Sprintf("Origin %q is not the admin API's address; cross-site requests are refused", o))
			return
		}
		if a.o.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.o.Token)) != 1 {
				writeErr(w, http.StatusUnauthorized, "a bearer token is required")
				return
			}
		} else if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeErr(w, http.StatusUnsupportedMediaType, "mutating endpoints require Content-Type: application/json (or --admin-token-file and a bearer token)")
			return
		}
		h(w, r)
	}
}

// sameOrigin reports whether origin is one of the admin API's addresses.
func (a *api) sameOrigin(origin string) bool { return SameOrigin(a.o.Addresses, origin) }

// SameOrigin reports whether origin (scheme://host[:port], an Origin
// header) is one of addresses (host:port): the same host and port, or, for
// a loopback or unspecified address, a loopback name with the same port.
func SameOrigin(addresses []string, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := strings.ToLower(u.Hostname())
	for _, addr := range addresses {
		h, p, err := net.SplitHostPort(addr)
		if err != nil || p != port {
			continue
		}
		if strings.EqualFold(h, host) {
			return true
		}
		if ip := net.ParseIP(h); h == "" || h == "localhost" || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
			if hip := net.ParseIP(host); host == "localhost" || (hip != nil && hip.IsLoopback()) {
				return true
			}
		}
	}
	return false
}

// accepted prints what the model keeps of the applied revision, for
// `gitxds diff --live`.
func (a *api) accepted(w http.ResponseWriter, _ *http.Request) {
	m := a.o.Backend.Memory()
	if m == nil {
		m = &model.Memory{}
	}
	writeJSON(w, http.StatusOK, m)
}

func (a *api) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.o.Backend.Status())
}

func (a *api) nodes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.o.Fleet.NodesJSON())
}

// snapshot prints what a node is served, in the same form as `gitxds render
// -o json` (a node of a named proxy group under "groups"); without ?node= it prints the last good snapshot of every class.
func (a *api) snapshot(w http.ResponseWriter, r *http.Request) {
	var set *snapshot.Set
	if id := r.URL.Query().Get("node"); id != "" {
		s, class, group, ok := a.o.Fleet.Served(id)
		if !ok || s == nil {
			writeErr(w, http.StatusNotFound, fmt.Sprintf("node %q is not connected", id))
			return
		}
		// A node of a named proxy group: its resources under "groups",
		// so a reader knows the group (gitxds diff --live does).
		set = snapshot.NewGroups(s.Revision, map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{
			group: {class: s.In(group).Of(class)}})
	} else if set = a.o.Backend.LastGood(); set == nil {
		writeErr(w, http.StatusNotFound, "nothing is served yet")
		return
	}
	b, err := snapshot.RenderJSON(set)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (a *api) reconcile(w http.ResponseWriter, _ *http.Request) {
	a.o.Backend.Trigger("admin")
	writeJSON(w, http.StatusAccepted, map[string]string{"result": "reconcile requested"})
}

func (a *api) rollout(w http.ResponseWriter, r *http.Request) {
	action, err := rollout.ParseAction(r.PathValue("action"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.o.Backend.Rollout(action); err != nil {
		writeErr(w, http.StatusConflict, err.Error())
		return
	}
	a.o.Log.Info("rollout control", "action", action, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"result": string(action) + " requested"})
}

// readyz is ready once a snapshot is served: the persisted last good one or
// the first revision that completed a rollout.
func (a *api) readyz(w http.ResponseWriter, _ *http.Request) {
	if a.o.Backend.LastGood() == nil {
		http.Error(w, "no snapshot served yet", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// historian is implemented by a Backend that keeps the history of revisions.
type historian interface{ History() []status.Revision }

// history serves the last revisions attempted, newest first.
func (a *api) history(w http.ResponseWriter, _ *http.Request) {
	h, ok := a.o.Backend.(historian)
	if !ok {
		writeJSON(w, http.StatusOK, []status.Revision{})
		return
	}
	revs := h.History()
	out := make([]status.Revision, 0, len(revs))
	for i := len(revs) - 1; i >= 0; i-- {
		out = append(out, revs[i])
	}
	writeJSON(w, http.StatusOK, out)
}
