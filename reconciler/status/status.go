package status

import (
	"fmt"
	"strings"
	"time"

	fluxmeta "github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons, Flux-style. Reasons come from
// github.com/fluxcd/pkg/apis/meta where one fits.
const (
	Ready       = fluxmeta.ReadyCondition
	Reconciling = fluxmeta.ReconcilingCondition
	Stalled     = fluxmeta.StalledCondition

	// Own reasons, where Flux has none that fits.
	ReasonSourceFailed       = "SourceFailed" // Git unreachable, ref missing, auth failure
	ReasonRenderFailed       = fluxmeta.BuildFailedReason
	ReasonObjectsRejected    = "ObjectsRejected"    // some objects were rejected; the rest serves
	ReasonTranslateFailed    = "TranslateFailed"    // the model could not be turned into valid xDS
	ReasonModelFailed        = "ModelFailed"        // the model broke an invariant of the IR (a gitxds bug: report it)
	ReasonVerificationFailed = "VerificationFailed" // the head commit is unsigned or not signed by a trusted key
	ReasonRolloutFailed      = "RolloutFailed"      // NACK, ACK timeout or failed metric gate
	ReasonRollingOut         = fluxmeta.ProgressingReason
	ReasonSucceeded          = fluxmeta.ReconciliationSucceededReason
	ReasonRestoredLastGood   = "RestoredLastGood"     // started from the persisted last good snapshot
	ReasonBuildTimedOut      = "BuildTimedOut"        // the build exceeded its deadline and was abandoned
	ReasonBuildCrashed       = "BuildCrashed"         // the process died while building the revision
	ReasonMemoryBudget       = "MemoryBudgetExceeded" // the build went over the memory budget; the process exited
)

// IsBuildFailure reports whether a FailedRevision reason is a failed build
// (rather than a failed rollout).
func IsBuildFailure(reason string) bool {
	switch reason {
	case ReasonBuildTimedOut, ReasonBuildCrashed, ReasonMemoryBudget:
		return true
	}
	return false
}

// Status is what GET /status returns.
type Status struct {
	Conditions            []metav1.Condition `json:"conditions"`
	LastAttemptedRevision string             `json:"lastAttemptedRevision,omitempty"`
	LastAppliedRevision   string             `json:"lastAppliedRevision,omitempty"`
	// LastAppliedHash is the content hash of what completed its last rollout.
	LastAppliedHash string `json:"lastAppliedHash,omitempty"`
	// ObservedAt is when the status last changed.
	ObservedAt time.Time `json:"observedAt"`
	Source     Source    `json:"source"`
	// Rollout in progress or last finished.
	Rollout *Rollout `json:"rollout,omitempty"`
	// FailedRevisions are revisions whose rollout failed, or whose build
	// timed out or killed the process; they are not retried until a new
	// commit arrives.
	FailedRevisions []FailedRevision `json:"failedRevisions,omitempty"`
	// Objects of the last attempted revision that rendered, with their
	// Gateway API conditions.
	Objects []Object `json:"objects,omitempty"`
	// Warnings of the render of that revision: nothing is refused for
	// them, but something may not be what was meant (a team directory the
	// overlay does not deploy, a deprecated kustomization field).
	Warnings []string `json:"warnings,omitempty"`
}

// Source is the state of the Git source.
type Source struct {
	URL       string    `json:"url"`
	Ref       string    `json:"ref"`
	Path      string    `json:"path"`
	LastPoll  time.Time `json:"lastPoll,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	// ForcePush says the branch last moved to a commit that does not
	// descend from the applied one (applied all the same, as Flux does);
	// cleared when a later revision descends from the applied one.
	ForcePush string `json:"forcePush,omitempty"`
}

// Rollout is the state of a progressive rollout.
type Rollout struct {
	Revision  string       `json:"revision"`
	Hash      string       `json:"hash"`
	Phase     RolloutPhase `json:"phase"`
	Stage     string       `json:"stage,omitempty"`
	StageIdx  int          `json:"stageIndex"`
	Stages    []Stage      `json:"stages,omitempty"`
	StartedAt time.Time    `json:"startedAt"`
	Message   string       `json:"message,omitempty"`
	// FastPath is set when the revision went to every node at once, and why.
	FastPath string `json:"fastPath,omitempty"`
}

// Stage of a rollout.
type Stage struct {
	Name  string     `json:"name"`
	Phase StagePhase `json:"phase"`
	Nodes []string   `json:"nodes,omitempty"`
	// Acked is how many of this stage's Nodes have ACKed the revision.
	Acked int `json:"acked"`
	// NodeCount is how many nodes the stage selects now, fleet-wide; Nodes
	// may name only some of them under high availability (each replica
	// reports a few).
	NodeCount int `json:"nodeCount"`
	// MinNodes is how many nodes the stage must select to pass.
	MinNodes int `json:"minNodes,omitempty"`
	// Warning says why the stage waits besides ACKs: it selects fewer
	// nodes than MinNodes, a replica's report is stale or late.
	Warning   string      `json:"warning,omitempty"`
	Gates     []GateValue `json:"gates,omitempty"`
	StartedAt *time.Time  `json:"startedAt,omitempty"`
	Bake      string      `json:"bake,omitempty"` // e.g. "30s"
}

// Total is how many nodes the stage selects: NodeCount, or the nodes it
// names when it names more (a status written before NodeCount).
func (s Stage) Total() int { return max(s.NodeCount, len(s.Nodes)) }

// GateValue is the last value of a metric gate.
type GateValue struct {
	Name  string   `json:"name"`
	Value *float64 `json:"value,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	OK    bool     `json:"ok"`
	Error string   `json:"error,omitempty"`
}

// FailedRevision records a rollout that failed, or a build that timed out
// or killed the process (Reason says which).
type FailedRevision struct {
	Revision string    `json:"revision"`
	Hash     string    `json:"hash"`
	Reason   string    `json:"reason"`
	Message  string    `json:"message"`
	At       time.Time `json:"at"`
}

// Set sets a condition (type, status, reason, message) and keeps the list
// sorted by type, so output is deterministic.
func (s *Status) Set(typ string, st metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg})
}

// Get returns a condition by type, or nil.
func (s *Status) Get(typ string) *metav1.Condition {
	return apimeta.FindStatusCondition(s.Conditions, typ)
}

// Rejected returns the objects that are not fully accepted.
func Rejected(objs []Object) []Object {
	var out []Object
	for _, o := range objs {
		if !o.Accepted() {
			out = append(out, o)
		}
	}
	return out
}

// Line is one problem of an object, as `gitxds validate` prints it and as the
// Ready message lists it: "<file>: <Kind ns/name>: <reason>: <message>".
func Line(o Object) string {
	c := Problem(o)
	if c == nil {
		return fmt.Sprintf("%s: %s: Accepted", o.File, o.ObjectRef)
	}
	// Messages may already start with the file and the object; say them once.
	file := FileLine(o.File, o.Line)
	msg := strings.TrimPrefix(c.Message, fmt.Sprintf("%s: %s: ", file, o.ObjectRef))
	line := fmt.Sprintf("%s: %s: %s: %s", file, o.ObjectRef, c.Reason, msg)
	if o.ServingLastAccepted != "" {
		line += " (its last accepted version keeps serving)"
	}
	return line
}

// FileLine is "file:line", or file when the line is not known (0), the
// way compilers name a place in a file.
func FileLine(file string, line int) string {
	if line <= 0 {
		return file
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// RejectedMessage summarises rejected objects for a Ready=False message.
func RejectedMessage(rej []Object) string {
	lines := make([]string, 0, len(rej))
	for _, o := range rej {
		lines = append(lines, Line(o))
	}
	return fmt.Sprintf("%d object(s) rejected, the rest is served: %s", len(rej), strings.Join(lines, "; "))
}

// Revision is one entry of the history of revisions (GET /history): what
// became of a revision gitxds attempted, and how long it took.
type Revision struct {
	Revision string `json:"revision"`
	// Result: pending, success or failure (the commit status).
	Result  string `json:"result"`
	Reason  string `json:"reason,omitempty"`
	Stage   string `json:"stage,omitempty"`
	Message string `json:"message,omitempty"`
	// Attempted is when the revision was first seen; Finished when it was
	// applied, refused or rolled back.
	Attempted time.Time  `json:"attempted"`
	Finished  *time.Time `json:"finished,omitempty"`
	// Duration from Attempted to Finished, e.g. "1.2s".
	Duration string `json:"duration,omitempty"`
	// Changes are the route-level changes against the last good version,
	// one line each ("host match → backends (was ...)").
	Changes []string `json:"changes,omitempty"`
}
