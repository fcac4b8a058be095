package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"gitxds.dev/gitxds/reconciler"
	"gitxds.dev/gitxds/reconciler/admin"
	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/reconciler/rollout"
)

// forwardedHeader marks a request a follower forwarded to the leader, so
// that a request is forwarded once at most.
const forwardedHeader = "X-Gitxds-Forwarded-By"

// runHA runs a replica under leader election: its reconcile loop (poll,
// build) and its applier run all along; while it holds the Lease it also
// leads the fleet-wide rollout (Reconciler.Lead, with the epoch the
// leadership claimed). Losing the Lease, or being fenced by a newer leader, ends the
// daemon with an error: the process should exit and start afresh.
func (d *Daemon) runHA(ctx context.Context, rec *reconciler.Reconciler) {
	defer close(d.done)
	loop := make(chan struct{})
	go func() { defer close(loop); rec.Run(ctx) }()
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	var lerr error
	d.Elector.Run(ectx, func(lctx context.Context) {
		// The epoch this leadership claimed on the Lease (package leader).
		lerr = rec.Lead(lctx, d.Elector.Epoch())
		stop() // fenced: give up the Lease now
	})
	if ctx.Err() == nil {
		err := errors.New("leader election: this replica lost the lease (or could not renew it); exiting so that a fresh process campaigns again")
		if errors.Is(lerr, rollout.ErrFenced) {
			err = fmt.Errorf("leader election: %w; exiting so that a fresh process campaigns again", lerr)
		}
		select {
		case d.errc <- err:
		default:
		}
	}
	<-loop
}

// haHandler serves GET /leader, and forwards what only the leader may do
// (webhooks, reconcile and rollout controls) to the leader's admin API
// when this replica follows. Everything else is served here.
func (d *Daemon) haHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leader" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"identity": d.Elector.Identity(), "leader": d.Elector.Leader(), "isLeader": d.Elector.IsLeader()})
			return
		}
		if r.Method != http.MethodPost || !leaderOnly(r.URL.Path) || d.Elector.IsLeader() {
			next.ServeHTTP(w, r)
			return
		}
		addr := leader.AdminAddress(d.Elector.Leader())
		if addr == "" || d.Elector.Leader() == d.Elector.Identity() || r.Header.Get(forwardedHeader) != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "no leader elected yet; retry"})
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !strings.HasPrefix(r.URL.Path, "/hooks/") {
			// The leader checks the Origin against its own addresses: check
			// it against this replica's, which the browser saw, and forward
			// without it.
			if !admin.SameOrigin(d.adminAddrs, o) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("Origin %q is not the admin API's address; cross-site requests are refused", o)})
				return
			}
			r.Header.Del("Origin")
		}
		target := &url.URL{Scheme: "http", Host: addr}
		p := httputil.NewSingleHostReverseProxy(target)
		p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
			d.log.Warn("forward to the leader failed", "leader", addr, "error", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "the leader is unreachable; retry"})
		}
		r.Header.Set(forwardedHeader, d.Elector.Identity())
		p.ServeHTTP(w, r)
	})
}

func leaderOnly(path string) bool {
	return path == "/reconcile" || strings.HasPrefix(path, "/rollout/") || strings.HasPrefix(path, "/hooks/")
}

// leaderGauge is gitxds_leader: 1 while this replica leads.
func (d *Daemon) leaderGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gitxds_leader",
		Help: "1 while this replica holds the leader election Lease (drives rollouts), else 0.",
	}, func() float64 {
		if d.Elector.IsLeader() {
			return 1
		}
		return 0
	})
}
