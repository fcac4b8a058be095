package reconciler

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/status"
)

// problem is what a step of the reconcile could not do: the reason of its
// negative condition and what happened. The summary adds what is still
// served.
type problem struct {
	reason, message string
}

// summarize computes Ready, Reconciling and Stalled from what the steps
// recorded, the way Flux's summary helpers compute them from the
// conditions each step owns. It is the one place conditions are set. It
// runs after each step of a reconcile, when a rollout reaches a new stage
// and when a rollout ends, and after Restore. Caller holds r.mu.
//
// Inputs, one per step:
//   - the source step: sourceProblem (a poll or fetch that failed) and
//     inBuild (a new revision is being built);
//   - the build step: refused (the last attempted revision cannot be built);
//   - the rollout: building (a rollout in progress, at rolloutStage) and the
//     failed revisions (a rollout that failed, or a build that killed or
//     outlasted the process);
//   - what is applied: LastAppliedRevision, appliedNote and the objects'
//     status.
//
// Stalled is True while the last attempted revision waits for a new commit.
// Reconciling is True while a revision is built or rolled out. Ready is True
// when the last attempted revision is served with every object accepted;
// while a new revision is built, and until the process has built one (after
// a restart), it is Unknown.
func (r *Reconciler) summarize() {
	defer r.touch()
	st := &r.st
	serving := "serving " + orNone(st.LastAppliedRevision)

	stalled := r.stalled()
	applied := "applied " + st.LastAppliedRevision
	if r.appliedNote != "" {
		applied += " (" + r.appliedNote + ")"
	}
	rolling := ""
	switch {
	case r.ha != nil:
		rolling = r.fleetRolling()
	case r.building != nil:
		rolling = "rolling out " + r.building.Revision
		if ro, ok := r.engine.Status(); ok && ro.Stage != "" && ro.Hash == r.building.Set.Hash() {
			rolling += " (stage " + ro.Stage + ")"
		}
	}
	attempted := st.LastAttemptedRevision != ""
	// Until this process has built a revision, it knows only what it
	// restored: Ready stays Unknown (the objects' status is not known).
	known := attempted && r.built

	// Stalled: the build step's refusal or a failed rollout.
	switch {
	case stalled != nil:
		st.Set(status.Stalled, metav1.ConditionTrue, stalled.reason, stalled.message)
	case rolling != "":
		st.Set(status.Stalled, metav1.ConditionFalse, status.ReasonRollingOut, rolling)
	case attempted:
		st.Set(status.Stalled, metav1.ConditionFalse, status.ReasonSucceeded, "")
	}

	// Reconciling: a build or a rollout in progress.
	switch {
	case rolling != "":
		st.Set(status.Reconciling, metav1.ConditionTrue, status.ReasonRollingOut, rolling)
	case r.inBuild != "":
		msg := "building " + r.inBuild
		if st.Source.ForcePush != "" {
			msg += ": " + st.Source.ForcePush
		}
		st.Set(status.Reconciling, metav1.ConditionTrue, status.ReasonRollingOut, msg)
	case r.sourceProblem != nil:
		st.Set(status.Reconciling, metav1.ConditionFalse, status.ReasonSourceFailed, "retried on the next poll")
	case stalled != nil:
		st.Set(status.Reconciling, metav1.ConditionFalse, stalled.reason, "waiting for a new commit")
	case attempted:
		st.Set(status.Reconciling, metav1.ConditionFalse, status.ReasonSucceeded, applied)
	}

	// Ready: the worst of the above, else what is applied.
	switch {
	case r.sourceProblem != nil:
		st.Set(status.Ready, metav1.ConditionFalse, r.sourceProblem.reason, r.sourceProblem.message+"; still "+serving)
	case stalled != nil:
		st.Set(status.Ready, metav1.ConditionFalse, stalled.reason, stalled.message)
	case rolling != "":
		st.Set(status.Ready, metav1.ConditionFalse, status.ReasonRollingOut, rolling+"; "+serving)
	case r.inBuild != "":
		// As Flux does while it reconciles: whether the new revision will
		// be ready is not known yet.
		st.Set(status.Ready, metav1.ConditionUnknown, status.ReasonRollingOut, "building "+r.inBuild+"; "+serving)
	case !known && st.LastAppliedRevision != "":
		st.Set(status.Ready, metav1.ConditionUnknown, status.ReasonRestoredLastGood,
			fmt.Sprintf("serving the last good snapshot of %s from the state directory; waiting for the source", st.LastAppliedRevision))
	case !known:
		st.Set(status.Ready, metav1.ConditionUnknown, status.ReasonRollingOut, "waiting for the first revision")
	default:
		if rej := status.Rejected(st.Objects); len(rej) > 0 {
			st.Set(status.Ready, metav1.ConditionFalse, status.ReasonObjectsRejected,
				fmt.Sprintf("%s; %s", applied, status.RejectedMessage(rej)))
			return
		}
		st.Set(status.Ready, metav1.ConditionTrue, status.ReasonSucceeded, applied)
	}
}

// stalled is why the last attempted revision waits for a new commit: the
// build step refused it, or its rollout (or a build that killed or
// outlasted the process) failed. Caller holds r.mu.
func (r *Reconciler) stalled() *problem {
	st := &r.st
	serving := "serving " + orNone(st.LastAppliedRevision)
	if r.refused != nil {
		return &problem{reason: r.refused.reason, message: r.refused.message + "; still " + serving}
	}
	f, ok := failedAttempt(st)
	if !ok {
		return nil
	}
	if status.IsBuildFailure(f.Reason) {
		return &problem{reason: f.Reason,
			message: fmt.Sprintf("build of %s failed: %s; %s; waiting for a new commit", f.Revision, f.Message, serving)}
	}
	return &problem{reason: status.ReasonRolloutFailed,
		message: fmt.Sprintf("rollout of %s failed and was rolled back: %s; %s; waiting for a new commit", f.Revision, f.Message, serving)}
}

// failedAttempt is the failed revision that is the last attempted one.
func failedAttempt(st *status.Status) (status.FailedRevision, bool) {
	for i := len(st.FailedRevisions) - 1; i >= 0; i-- {
		if f := st.FailedRevisions[i]; f.Revision == st.LastAttemptedRevision {
			return f, true
		}
	}
	return status.FailedRevision{}, false
}
