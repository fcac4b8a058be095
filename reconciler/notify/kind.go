package notify

import "gitxds.dev/gitxds/reconciler/status"

// Kind of an event: what happened to the revision, as the log line's
// "kind" and a Kubernetes Event's reason name it.
type Kind string

const (
	// RevisionAttempted: a new revision is built and its rollout begins.
	RevisionAttempted Kind = "RevisionAttempted"
	// StageStarted: the rollout of the revision reached a stage.
	StageStarted Kind = "StageStarted"
	// RolloutSucceeded: the revision is applied fleet-wide, every object
	// accepted.
	RolloutSucceeded Kind = "RolloutSucceeded"
	// ObjectsRejected: the revision is applied, but some of its objects
	// were rejected (the rest serves).
	ObjectsRejected Kind = "ObjectsRejected"
	// RolledBack: the rollout failed (NACK, ACK timeout, a metric gate) or
	// was aborted; nodes are back on the last good version.
	RolledBack Kind = "RolledBack"
	// RevisionRefused: the revision failed to build (render, translate,
	// signature, deadline, memory) and was never rolled out.
	RevisionRefused Kind = "RevisionRefused"
)

// Kind classifies e.
func (e Event) Kind() Kind {
	switch e.State {
	case Pending:
		if e.Stage != "" {
			return StageStarted
		}
		return RevisionAttempted
	case Success:
		return RolloutSucceeded
	}
	switch e.Reason {
	case status.ReasonObjectsRejected:
		return ObjectsRejected
	case status.ReasonRolloutFailed:
		return RolledBack
	}
	return RevisionRefused
}
