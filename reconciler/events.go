package reconciler

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

// Events: what becomes of each revision, derived from the status every time
// it changes (touch), so that no step has to remember to send one. A
// revision is pending while it is built and rolled out (per stage), a
// success when it is applied with every object accepted, and a failure when
// it is refused, rolled back, or applied with objects rejected (the commit
// broke something, though the rest of it serves). A source failure is no
// event: it says nothing about the commit. Each event is logged as one
// structured line and handed to the Notifier.

type eventKey struct {
	revision string
	state    notify.State
	stage    string
	reason   string
}

// observe sends the event the status now stands for, unless it was the
// last one sent. Caller holds r.mu.
func (r *Reconciler) observe() {
	e, ok := r.event()
	if !ok {
		return
	}
	k := eventKey{e.Revision, e.State, e.Stage, e.Reason}
	if k == r.notified {
		return
	}
	r.notified = k
	r.log.Info("event", "revision", e.Revision, "kind", string(e.Kind()), "state", string(e.State), "reason", e.Reason, "stage", e.Stage, "message", e.Message)
	r.record(e)
	// Under high availability every replica follows the same revisions;
	// only the leader tells the providers, so each event is sent once.
	if r.opts.Notifier != nil && (r.ha == nil || r.ha.leading) {
		r.opts.Notifier.Notify(e)
	}
}

// event is what the status says of the last attempted revision.
func (r *Reconciler) event() (notify.Event, bool) {
	st := &r.st
	rev := st.LastAttemptedRevision
	ready, rec := st.Get(status.Ready), st.Get(status.Reconciling)
	building := rec != nil && rec.Status == metav1.ConditionTrue && st.LastAppliedRevision != rev
	if rev == "" || ready == nil || (ready.Status == metav1.ConditionUnknown && !building) || ready.Reason == status.ReasonSourceFailed {
		// Nothing known of the revision yet (after a restart), or the
		// source failing: no event. A revision being built is pending.
		return notify.Event{}, false
	}
	e := notify.Event{Revision: rev, Reason: ready.Reason, Message: ready.Message, Overlay: r.opts.Overlay}
	switch {
	case building:
		e.State, e.Reason, e.Message = notify.Pending, rec.Reason, rec.Message
		if r.building != nil && r.building.Revision == rev {
			e.Stage = r.rolloutStage
		}
	case st.LastAppliedRevision == rev && ready.Status == metav1.ConditionTrue:
		e.State = notify.Success
	case st.LastAppliedRevision == rev || ready.Status == metav1.ConditionFalse:
		e.State = notify.Failure
		if f, ok := failedAttempt(st); ok && f.Revision == rev {
			e.Message = f.Message
		} else if rej := status.Rejected(st.Objects); st.LastAppliedRevision == rev && len(rej) > 0 {
			// Commit statuses are short: the first problem first.
			e.Message = fmt.Sprintf("%d object(s) rejected, the rest is served: %s", len(rej), status.Line(rej[0]))
		}
	default:
		return notify.Event{}, false
	}
	return e, true
}

// historySize is how many revisions GET /history keeps.
const historySize = 50

// record updates the history with an event. Caller holds r.mu.
func (r *Reconciler) record(e notify.Event) {
	now := time.Now().UTC()
	h := r.history
	if n := len(h); n == 0 || h[n-1].Revision != e.Revision {
		h = append(h, status.Revision{Revision: e.Revision, Attempted: now})
		if len(h) > historySize {
			h = h[len(h)-historySize:]
		}
	}
	cur := &h[len(h)-1]
	cur.Result, cur.Reason, cur.Message = string(e.State), e.Reason, e.Message
	if e.Stage != "" {
		cur.Stage = e.Stage
	}
	cur.Finished, cur.Duration = nil, ""
	if e.State != notify.Pending {
		cur.Finished = &now
		cur.Duration = now.Sub(cur.Attempted).Round(time.Millisecond).String()
	}
	r.history = h
	if err := r.opts.Store.SaveHistory(h); err != nil {
		r.log.Error("persist history", "error", err)
	}
}

// History is the last revisions attempted, oldest first.
func (r *Reconciler) History() []status.Revision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]status.Revision(nil), r.history...)
}

// maxChanges bounds the route changes kept per revision in the history.
const maxChanges = 20

// describeChanges computes, off the reconcile path, the route-level changes
// of b against lastGood (Options.Describe) and keeps them in b's history
// entry.
func (r *Reconciler) describeChanges(b *pipeline.Result, lastGood *snapshot.Set) {
	if r.opts.Describe == nil || lastGood == nil || b == nil || b.Set == nil {
		return
	}
	lines := r.opts.Describe(lastGood, b)
	if len(lines) > maxChanges {
		lines = append(lines[:maxChanges:maxChanges], fmt.Sprintf("… and %d more", len(lines)-maxChanges))
	}
	if len(lines) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.history) - 1; i >= 0; i-- {
		if r.history[i].Revision == b.Revision {
			r.history[i].Changes = lines
			if err := r.opts.Store.SaveHistory(r.history); err != nil {
				r.log.Error("persist history", "error", err)
			}
			return
		}
	}
}
