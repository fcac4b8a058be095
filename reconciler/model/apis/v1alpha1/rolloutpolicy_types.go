package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RolloutPolicy says how a new revision reaches the fleet (docs/architecture.md §4). Only
// platform/ may define it; without one, every node gets a revision at once.
type RolloutPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RolloutPolicySpec `json:"spec"`
}

// RolloutPolicySpec is the rollout: stages in order and the health gates.
type RolloutPolicySpec struct {
	// AckTimeout is how long a node of a stage has to ACK the new version.
	AckTimeout *metav1.Duration `json:"ackTimeout,omitempty"`
	// Stages in order; the last one should cover every node (percent: 100).
	Stages []RolloutStage `json:"stages"`
	// Analysis is the metric gate checked while a stage bakes.
	Analysis *RolloutAnalysis `json:"analysis,omitempty"`
}

// RolloutStage selects nodes by label selector or by percent of all nodes
// (a stable hash of the node id), or both.
type RolloutStage struct {
	Name         string                `json:"name"`
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Percent of all nodes, 0..100.
	Percent *int32 `json:"percent,omitempty"`
	// Bake is how long the stage must stay healthy before the next starts.
	Bake *metav1.Duration `json:"bake,omitempty"`
}

// RolloutAnalysis queries Prometheus every Interval while a stage bakes.
type RolloutAnalysis struct {
	Interval   *metav1.Duration  `json:"interval,omitempty"`
	Prometheus *PrometheusSource `json:"prometheus,omitempty"`
	Metrics    []RolloutMetric   `json:"metrics,omitempty"`
	// FailureLimit is how many consecutive query errors (not out-of-bounds
	// results, which fail at once) fail the stage.
	FailureLimit *int32 `json:"failureLimit,omitempty"`
}

// PrometheusSource is where the metrics are queried.
type PrometheusSource struct {
	Address string `json:"address"`
}

// RolloutMetric is a PromQL query whose result must stay within [Min, Max].
// The query is a Go template; {{ .NodeRegex }} selects the stage's nodes.
type RolloutMetric struct {
	Name  string   `json:"name"`
	Query string   `json:"query"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}
