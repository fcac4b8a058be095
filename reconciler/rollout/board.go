package rollout

import (
	"context"
	"errors"
	"time"

	"gitxds.dev/gitxds/reconciler/status"
)

// The fleet-wide rollout (high availability, docs/architecture.md): every
// replica renders each revision from Git itself and serves xDS to its own
// nodes; one replica, the leader, decides. Its decisions and the replicas'
// observations meet on a Board: in production, objects in the Kubernetes
// API (package kubestate); in tests, memory.
//
//   - FleetState is written only by the leader, with the epoch of its
//     leadership. Every replica serves it to its own nodes: a node whose
//     stage (computed from its id and labels only, by the Stages here) has
//     been reached gets Hash, the others LastGoodHash.
//   - ReplicaReport is written only by the replica it names: what its nodes
//     did with the state it last applied. The leader sums the reports to
//     decide whether a stage passes.
//
// Writes are bounded by stages and replicas, never by nodes: a report
// carries counts and at most a few node names.

// FleetState is the fleet-wide rollout.
type FleetState struct {
	// Epoch of the leadership that wrote it (from the leader election
	// Lease). Replicas ignore a state with a lower epoch than one they saw.
	Epoch int64 `json:"epoch"`
	// Revision and Hash are the target: its Git revision and the content
	// hash every replica must render from it.
	Revision string `json:"revision,omitempty"`
	Hash     string `json:"hash,omitempty"`
	// LastGoodRevision and LastGoodHash are what every node goes back to.
	LastGoodRevision string `json:"lastGoodRevision,omitempty"`
	LastGoodHash     string `json:"lastGoodHash,omitempty"`
	// Stages of the policy the rollout runs, so that every replica assigns
	// a node to the same stage whatever its own build of the policy.
	Stages []StageSpec `json:"stages,omitempty"`
	// Stage is the index of the stage reached: nodes of stages 0..Stage
	// are served the target while the phase is Progressing or Paused.
	Stage     int                 `json:"stage"`
	StageName string              `json:"stageName,omitempty"`
	Phase     status.RolloutPhase `json:"phase,omitempty"`
	// FastPath, when set, serves the target to every node at once.
	FastPath string `json:"fastPath,omitempty"`
	// BakeUntil is when the current stage's bake ends, while it bakes: a
	// new leader resumes with the remaining bake.
	BakeUntil *time.Time `json:"bakeUntil,omitempty"`
	StartedAt time.Time  `json:"startedAt,omitempty"`
	// Failed revisions, not retried until a new commit arrives.
	Failed  []status.FailedRevision `json:"failed,omitempty"`
	Reason  string                  `json:"reason,omitempty"`
	Message string                  `json:"message,omitempty"`
}

// StageSpec is a stage as replicas need it to place nodes.
type StageSpec struct {
	Name string `json:"name"`
	// Selector is a label selector in its string form (labels.Parse), ""
	// when the stage does not select by labels.
	Selector string `json:"selector,omitempty"`
	// Percent of the fleet by node id bucket; -1 when not by percent.
	Percent int `json:"percent"`
	// MinNodes the stage must select fleet-wide before it can pass.
	MinNodes int `json:"minNodes,omitempty"`
}

// ReplicaReport is what one replica's nodes did with the FleetState it
// last applied.
type ReplicaReport struct {
	Replica string `json:"replica"`
	// Epoch, Revision, Hash and Stage of the FleetState applied.
	Epoch    int64  `json:"epoch"`
	Revision string `json:"revision,omitempty"`
	Hash     string `json:"hash,omitempty"`
	Stage    int    `json:"stage"`
	// RenderedHash is the hash this replica rendered Revision to ("" until
	// it has); a different hash than Hash is version skew. RenderError is
	// why it could not render it.
	RenderedHash string `json:"renderedHash,omitempty"`
	RenderError  string `json:"renderError,omitempty"`
	// Counts of this replica's nodes: connected; of the current stage;
	// served the target; of those, ACKed and not yet.
	Connected int `json:"connected"`
	InStage   int `json:"inStage"`
	Moved     int `json:"moved"`
	Acked     int `json:"acked"`
	Pending   int `json:"pending"`
	// StageAcked is how many of the InStage nodes ACKed the target;
	// StageNodes names some of them (at most MaxReportedNodes), for the
	// status and the metric gates' {{ .NodeRegex }}.
	StageAcked int      `json:"stageAcked"`
	StageNodes []string `json:"stageNodes,omitempty"`
	// NodeIDs are the ids of the Connected nodes, sorted, while there are
	// at most MaxNodeIDs of them (none above): when this report goes
	// stale, the leader counts as pending only those of its nodes no live
	// replica reports (a node that reconnected elsewhere is not a ghost).
	NodeIDs []string `json:"nodeIDs,omitempty"`
	// PendingNodes names a few pending nodes, for messages.
	PendingNodes []string `json:"pendingNodes,omitempty"`
	// NACKs of the target by this replica's nodes (a few).
	NACKs []NodeNACK `json:"nacks,omitempty"`
	// ServedHash is what this replica serves nodes without an assignment.
	ServedHash string    `json:"servedHash,omitempty"`
	Heartbeat  time.Time `json:"heartbeat"`
}

// NodeNACK is a node's rejection of the target.
type NodeNACK struct {
	Node    string `json:"node"`
	TypeURL string `json:"typeURL"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error"`
}

// ErrFenced is returned by Board.PutRollout when a newer leadership wrote
// the FleetState, or it changed since this writer last read or wrote it:
// the writer is no longer the leader and must stop deciding.
var ErrFenced = errors.New("rollout: fenced: a newer leader owns the fleet-wide rollout")

// Board is where the fleet-wide rollout and the replicas' reports live.
type Board interface {
	// Rollout returns the FleetState; ok is false when none was written.
	Rollout(ctx context.Context) (s FleetState, ok bool, err error)
	// PutRollout writes s, fenced by s.Epoch and by what this writer last
	// read or wrote (ErrFenced).
	PutRollout(ctx context.Context, s FleetState) error
	// Reports returns every replica's last report.
	Reports(ctx context.Context) ([]ReplicaReport, error)
	// PutReport writes the report of r.Replica.
	PutReport(ctx context.Context, r ReplicaReport) error
	// Changes is signalled, without blocking and coalesced, when the
	// FleetState or a report changes.
	Changes() <-chan struct{}
}
