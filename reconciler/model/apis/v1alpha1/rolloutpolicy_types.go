package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RolloutPolicy says how a new revision reaches the fleet (docs/architecture.md §4). Only
// platform/ may define it; without one, every node gets a revision at once.
type RolloutPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec lists the stages and the health gates.
	Spec RolloutPolicySpec `json:"spec"`
}

// RolloutPolicySpec is the rollout: stages in order and the health gates.
type RolloutPolicySpec struct {
	// AckTimeout is how long a node of a stage has to ACK the new version;
	// a node that does not ACK in time rolls the revision back.
	// Default: 10s.
	// Validation: positive.
	AckTimeout *metav1.Duration `json:"ackTimeout,omitempty"`
	// Stages in order. A node belongs to the first stage that selects it;
	// a node no stage selects moves with the last stage.
	// Validation: at least one; stage names unique.
	Stages []RolloutStage `json:"stages"`
	// Analysis is the metric gate checked while a stage bakes (only stages
	// with a bake are checked).
	Analysis *RolloutAnalysis `json:"analysis,omitempty"`
}

// RolloutStage selects nodes by label selector or by percent of all nodes
// (a stable hash of the node id), or both.
type RolloutStage struct {
	// Name of the stage, shown in status and in gitxds rollout status.
	Name string `json:"name"`
	// NodeSelector selects nodes by their labels: the string fields of the
	// xDS Node.metadata (e.g. rollout-group: canary).
	// Validation: nodeSelector or percent, or both.
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Percent of all nodes, chosen by a stable hash of the node id, so a
	// node stays in the same stage from one revision to the next.
	// Validation: 0..100.
	Percent *int32 `json:"percent,omitempty"`
	// Bake is how long the stage must stay healthy before the next starts;
	// the metric gates are checked during it. A revision whose served
	// configuration equals one that completed a rollout (a git revert)
	// goes to every node at once, without stages or bakes.
	// Default: 0s (no bake, no metric gate).
	// Validation: not negative.
	Bake *metav1.Duration `json:"bake,omitempty"`
	// MinNodes is how many nodes the stage must select, fleet-wide, before
	// it can pass: it waits up to ackTimeout for them to connect, then
	// fails and rolls back, naming the selector. Not enforced for the
	// very first revision (there is no last good version to protect).
	// Default: 1 for a stage with a nodeSelector and no percent, 0 for a
	// stage with a percent.
	// Validation: not negative.
	MinNodes *int32 `json:"minNodes,omitempty"`
}

// RolloutAnalysis queries Prometheus every Interval while a stage bakes.
type RolloutAnalysis struct {
	// Interval between two evaluations of the metrics while a stage bakes;
	// they are evaluated once more when the bake ends.
	// Default: 10s.
	// Validation: positive.
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Prometheus is the server queried.
	// Validation: required when metrics are set.
	Prometheus *PrometheusSource `json:"prometheus,omitempty"`
	// Metrics are the gates; one out of bounds fails the stage and rolls
	// the revision back.
	Metrics []RolloutMetric `json:"metrics,omitempty"`
	// FailureLimit is how many consecutive query errors (not out-of-bounds
	// results, which fail at once) fail the stage.
	// Default: 3.
	// Validation: not negative.
	FailureLimit *int32 `json:"failureLimit,omitempty"`
}

// PrometheusSource is where the metrics are queried.
type PrometheusSource struct {
	// Address is the base URL of the Prometheus HTTP API, e.g.
	// http://prometheus.monitoring:9090.
	Address string `json:"address"`
}

// RolloutMetric is a PromQL query whose result must stay within [Min, Max].
// The query is a Go template; {{ .NodeRegex }} selects the stage's nodes.
type RolloutMetric struct {
	// Name of the gate, shown in status.
	Name string `json:"name"`
	// Query is PromQL, as a Go template over {{ .NodeRegex }} (a regular
	// expression matching exactly the stage's node ids, escaped for a
	// PromQL string: node=~"{{ .NodeRegex }}"), {{ .Nodes }} (the ids,
	// comma-separated), {{ .Stage }} and {{ .Revision }}. The result must be
	// one number: a scalar or a vector of at most one series (no series
	// is 0).
	// Validation: a valid template.
	Query string `json:"query"`
	// Min is the lowest value that passes.
	// Validation: min or max, or both; min not above max.
	Min *float64 `json:"min,omitempty"`
	// Max is the highest value that passes. NaN always fails.
	// Validation: min or max, or both.
	Max *float64 `json:"max,omitempty"`
}
