package status

// RolloutPhase is where a rollout is. A rollout is in progress while it is
// Progressing or Paused; every other phase is final.
type RolloutPhase string

const (
	RolloutProgressing RolloutPhase = "Progressing"
	RolloutPaused      RolloutPhase = "Paused"
	RolloutSucceeded   RolloutPhase = "Succeeded"
	RolloutFailed      RolloutPhase = "Failed"
	RolloutSuperseded  RolloutPhase = "Superseded"
	RolloutAborted     RolloutPhase = "Aborted"
	// RolloutInterrupted: a restart stopped it; nodes are back on the last
	// good version and it starts over when its revision is built again.
	RolloutInterrupted RolloutPhase = "Interrupted"
)

// Final reports whether the rollout is over (not progressing or paused).
func (p RolloutPhase) Final() bool { return p != RolloutProgressing && p != RolloutPaused }

// StagePhase is where one stage of a rollout is.
type StagePhase string

const (
	StagePending     StagePhase = "Pending"     // not started
	StageProgressing StagePhase = "Progressing" // its nodes moved, waiting for their ACKs
	StageBaking      StagePhase = "Baking"      // ACKed, under watch for its bake time
	StagePassed      StagePhase = "Passed"
	StageFailed      StagePhase = "Failed"
)

// Why a rollout failed (Result.Reason, FailedRevision.Reason; a failed build
// records one of the build reasons of status.go instead).
const (
	ReasonNACK       = "NACK"       // a node rejected the revision
	ReasonAckTimeout = "AckTimeout" // a node did not ACK within ackTimeout
	ReasonMetricGate = "MetricGate" // a metric gate was out of bounds
	ReasonQueryError = "QueryError" // the metric gates could not be queried
	ReasonAborted    = "Aborted"    // an operator aborted it
	// ReasonTooFewNodes: the stage selected fewer nodes than its minNodes
	// within ackTimeout.
	ReasonTooFewNodes = "TooFewNodes"
	// ReasonVersionSkew: a replica rendered the revision to another content
	// hash than the leader did (high availability).
	ReasonVersionSkew = "VersionSkew"
)
