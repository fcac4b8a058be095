package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gitxds.dev/gitxds/reconciler"
	"gitxds.dev/gitxds/reconciler/admin"
	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/reconciler/state"
)

// DefaultFollowInterval is how often a follower looks for new state.
const DefaultFollowInterval = 2 * time.Second

// forwardedHeader marks a request a follower forwarded to the leader, so
// that a request is forwarded once at most.
const forwardedHeader = "X-Gitxds-Forwarded-By"

// runHA is the reconcile side of a replica under leader election: it
// follows the persisted state until it leads, then restores that state
// (a rollout interrupted by the old leader starts over) and runs the
// reconcile loop while it leads. Losing the leadership ends the daemon
// with an error: the process should exit and start afresh as a follower.
func (d *Daemon) runHA(ctx context.Context, rec *reconciler.Reconciler, stateDir string, every time.Duration) {
	defer close(d.done)
	fctx, stopFollow := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() { defer close(followed); d.follow(fctx, rec, stateDir, every) }()
	d.Elector.Run(ctx, func(lctx context.Context) {
		stopFollow()
		<-followed
		if err := rec.Restore(); err != nil {
			d.log.Error("leader: restore state", "error", err)
		}
		rec.Run(lctx)
	})
	stopFollow()
	<-followed
	if ctx.Err() == nil {
		select {
		case d.errc <- errors.New("leader election: this replica lost the lease (or could not renew it); exiting so that a fresh process campaigns again"):
		default:
		}
	}
}

// follow re-reads the persisted state whenever a file of the state
// directory changes, and serves its last good snapshot.
func (d *Daemon) follow(ctx context.Context, rec *reconciler.Reconciler, dir string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := fingerprint(dir)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := fingerprint(dir)
		if fp == last {
			continue
		}
		if err := rec.Restore(); err != nil {
			// A file caught between the leader's writes: try again next tick.
			d.log.Warn("follower: reading the leader's state", "error", err)
			continue
		}
		last = fp
		d.log.Info("follower: serving the leader's last good snapshot", "revision", rec.Status().LastAppliedRevision)
	}
}

// fingerprint is the names, sizes and modification times of the state
// files that a follower serves from (the leader writes them by atomic
// rename).
func fingerprint(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, e := range entries {
		// The leader's rollout progress and build marker change often and
		// are not served; the last good snapshot and its metadata are.
		if !strings.HasSuffix(e.Name(), ".json") || e.Name() == state.Rollout.File() || e.Name() == state.Building.File() {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
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
