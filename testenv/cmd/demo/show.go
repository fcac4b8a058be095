package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/prom"
)

// Gate sources: where the RolloutPolicy's metric gate reads the error ratio.
const (
	gateAuto       = "auto"
	gatePrometheus = "prometheus"
	gateDataplane  = "dataplane"
)

// The node groups of the demo, by their rollout-group label.
const (
	groupCanary = "canary"
	groupStable = "stable"
)

// printer writes the narrative.
type printer struct{ w io.Writer }

func (p printer) step(format string, args ...any) { fmt.Fprintf(p.w, "\n"+format+"\n", args...) }
func (p printer) say(format string, args ...any)  { fmt.Fprintf(p.w, "   "+format+"\n", args...) }

// short is a revision as the narrative names it: main@sha1: and 7 digits.
func short(rev string) string {
	if i := strings.Index(rev, ":"); i >= 0 && len(rev) > i+8 {
		return rev[:i+8]
	}
	return rev
}

// adminStatus is GET /status of gitxds's admin API: what `gitxds rollout
// status -o json` prints.
func adminStatus(ctx context.Context, admin string) (status.Status, error) {
	var st status.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// rolloutLine is one line of a rollout as gitxds reports it: its phase, and
// per stage its phase, the nodes that ACKed of those it holds, and the
// gates' last values. withValues false leaves the gate values out (to tell
// whether the rollout moved).
func rolloutLine(ro *status.Rollout, withValues bool) string {
	if ro == nil {
		return "no rollout"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rollout %s %s", short(ro.Revision), ro.Phase)
	if ro.FastPath != "" {
		fmt.Fprintf(&b, ", fast path: %s", ro.FastPath)
		return b.String()
	}
	for i, s := range ro.Stages {
		sep := " | "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%sstage %s %s", sep, s.Name, s.Phase)
		if len(s.Nodes) > 0 {
			fmt.Fprintf(&b, " (%d/%d ACKed: %s)", s.Acked, len(s.Nodes), strings.Join(s.Nodes, ", "))
		}
		for _, g := range s.Gates {
			switch {
			case g.Error != "":
				fmt.Fprintf(&b, ", %s: query error", g.Name)
			case g.Value != nil && withValues:
				fmt.Fprintf(&b, ", %s=%.3g", g.Name, *g.Value)
				if g.Max != nil {
					fmt.Fprintf(&b, " (max %g)", *g.Max)
				}
				if !g.OK {
					b.WriteString(" FAILING")
				}
			case g.Value != nil && !g.OK:
				fmt.Fprintf(&b, ", %s FAILING", g.Name)
			case g.Value != nil:
				fmt.Fprintf(&b, ", %s ok", g.Name)
			}
		}
	}
	return b.String()
}

// ready is the Ready condition in one line.
func ready(st status.Status) string {
	c := st.Get(status.Ready)
	if c == nil {
		return "Ready=Unknown"
	}
	return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

// follow polls gitxds's admin API and prints the rollout of rev each time
// it moves (a stage's phase, its nodes' ACKs, a gate passing or failing),
// until done holds.
func (d *demo) follow(ctx context.Context, rev string, timeout time.Duration, what string, done func(status.Status) bool) (status.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st, err := adminStatus(ctx, d.admin)
		if err == nil {
			if ro := st.Rollout; ro != nil && ro.Revision == rev {
				if key := rolloutLine(ro, false); key != d.lastRollout && !d.quiet {
					d.lastRollout = key
					d.say("status: %s", rolloutLine(ro, true))
				}
			}
			if done(st) {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("timed out after %s waiting for %s (status: attempted %s, applied %s, %s, %s)",
				timeout, what, st.LastAttemptedRevision, st.LastAppliedRevision, ready(st), rolloutLine(st.Rollout, true))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// applied waits until gitxds reports rev applied.
func (d *demo) applied(ctx context.Context, rev string) (status.Status, error) {
	return d.follow(ctx, rev, 30*time.Second, "applied "+rev, func(st status.Status) bool {
		return st.LastAppliedRevision == rev && st.LastAttemptedRevision == rev
	})
}

// traffic prints who answered each node group since the last reset.
func (d *demo) traffic(when string) {
	d.say("traffic %s: %s", when, d.split())
}

// split is the answers per node group: "canary node canary-1: payments-v1
// 9, payments-v2 31 | stable nodes stable-1, stable-2: payments-v1 80".
func (d *demo) split() string {
	answers := d.calls.Answers()
	var parts []string
	for _, g := range []string{groupCanary, groupStable} {
		ids := d.groups[g]
		total := map[string]int{}
		for _, id := range ids {
			for k, v := range answers[id] {
				total[k] += v
			}
		}
		noun := g + " node"
		if len(ids) > 1 {
			noun += "s"
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s", noun, strings.Join(ids, ", "), counts(total)))
	}
	return strings.Join(parts, " | ")
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "no call"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// settle lets the calls in flight when the nodes last switched finish
// before a window starts counting.
const settle = 250 * time.Millisecond

// window resets the traffic counts, lets the nodes call for dur, and prints
// who answered.
func (d *demo) window(ctx context.Context, dur time.Duration, when string) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(settle):
	}
	d.calls.Reset()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(dur):
	}
	d.traffic(when)
	return nil
}

// gate starts what the metric gate queries: a real Prometheus scraping the
// data plane's /metrics when it is installed (and required when
// GITXDS_REQUIRE_PROMETHEUS=1), otherwise the data plane's own query API.
// It returns the address for spec.analysis.prometheus and a sentence that
// says which.
func (d *demo) gate(ctx context.Context, dp *dataplane.Metrics, mode string) (addr, which string, err error) {
	bin, lookErr := prom.Binary()
	switch mode {
	case gateAuto:
		if lookErr != nil && os.Getenv(prom.EnvRequire) == "1" {
			return "", "", fmt.Errorf("%s=1 but prometheus is not installed: %v", prom.EnvRequire, lookErr)
		}
		if lookErr != nil {
			mode = gateDataplane
		} else {
			mode = gatePrometheus
		}
	case gatePrometheus:
		if lookErr != nil {
			return "", "", fmt.Errorf("-gate prometheus: %v", lookErr)
		}
	case gateDataplane:
	default:
		return "", "", fmt.Errorf("-gate %q: want auto, prometheus or dataplane", mode)
	}
	if mode == gateDataplane {
		return dp.QueryURL(), fmt.Sprintf("metric gate: the data plane's own Prometheus query API on %s (prometheus is not installed; "+
			"it answers the same PromQL from the calls it made)", dp.Addr()), nil
	}
	pm, err := prom.Start(ctx, prom.Options{Binary: bin, Targets: []string{dp.Addr()}})
	if err != nil {
		return "", "", err
	}
	d.cleanup = append(d.cleanup, pm.Close)
	d.prom = pm
	return pm.URL, fmt.Sprintf("metric gate: real Prometheus (%s) on %s, scraping the data plane's /metrics every second", bin, pm.Addr), nil
}
