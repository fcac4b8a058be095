// Package rollout moves the fleet from its last good snapshot to a new one,
// stage by stage, and back again by itself when a node NACKs, does not ACK in
// time, or a metric gate fails (docs/architecture.md §4).
package rollout

import (
	"errors"
	"fmt"
	"hash/fnv"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// Defaults of a RolloutPolicy.
const (
	DefaultAckTimeout       = 10 * time.Second
	DefaultAnalysisInterval = 10 * time.Second
	DefaultFailureLimit     = 3
)

// Policy is a compiled RolloutPolicy.
type Policy struct {
	AckTimeout time.Duration
	Stages     []Stage
	// Analysis; Prometheus is empty when there are no metric gates.
	Interval     time.Duration
	Prometheus   string
	Metrics      []Metric
	FailureLimit int
}

// Stage of a compiled policy.
type Stage struct {
	Name     string
	Selector labels.Selector // nil: not by labels
	Percent  int             // -1: not by percent
	Bake     time.Duration
	// MinNodes the stage must select (fleet-wide) to pass: it waits up to
	// the ackTimeout for them, then fails.
	MinNodes int
}

// Metric gate with its query template.
type Metric struct {
	Name     string
	Query    string
	Template *template.Template
	Min, Max *float64
}

// AllAtOnce is the policy when the platform defines none: one stage with
// every node, still with the NACK and ACK-timeout rules.
func AllAtOnce() *Policy {
	return &Policy{
		AckTimeout: DefaultAckTimeout,
		Stages:     []Stage{{Name: "all", Percent: 100}},
		Interval:   DefaultAnalysisInterval,
	}
}

// Compile validates a RolloutPolicy and applies its defaults. A nil policy
// compiles to AllAtOnce.
func Compile(p *v1alpha1.RolloutPolicy) (*Policy, error) {
	if p == nil {
		return AllAtOnce(), nil
	}
	out := &Policy{
		AckTimeout:   dur(p.Spec.AckTimeout, DefaultAckTimeout),
		Interval:     DefaultAnalysisInterval,
		FailureLimit: DefaultFailureLimit,
	}
	var errs []error
	if len(p.Spec.Stages) == 0 {
		errs = append(errs, errors.New("spec.stages: at least one stage is required"))
	}
	seen := map[string]bool{}
	for i, s := range p.Spec.Stages {
		st := Stage{Name: s.Name, Percent: -1, Bake: dur(s.Bake, 0)}
		if st.Name == "" {
			st.Name = fmt.Sprintf("stage-%d", i)
		}
		if seen[st.Name] {
			errs = append(errs, fmt.Errorf("spec.stages[%d]: duplicate stage name %q", i, st.Name))
		}
		seen[st.Name] = true
		if s.NodeSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(s.NodeSelector)
			if err != nil {
				errs = append(errs, fmt.Errorf("spec.stages[%d].nodeSelector: %w", i, err))
			}
			st.Selector = sel
		}
		if s.Percent != nil {
			if *s.Percent < 0 || *s.Percent > 100 {
				errs = append(errs, fmt.Errorf("spec.stages[%d].percent: %d is not within 0..100", i, *s.Percent))
			}
			st.Percent = int(*s.Percent)
		}
		if st.Selector == nil && st.Percent < 0 {
			errs = append(errs, fmt.Errorf("spec.stages[%d] (%s): needs nodeSelector or percent", i, st.Name))
		}
		st.MinNodes = DefaultMinNodes(st)
		if s.MinNodes != nil {
			if *s.MinNodes < 0 {
				errs = append(errs, fmt.Errorf("spec.stages[%d].minNodes: %d is negative", i, *s.MinNodes))
			}
			st.MinNodes = int(*s.MinNodes)
		}
		out.Stages = append(out.Stages, st)
	}
	if a := p.Spec.Analysis; a != nil {
		out.Interval = dur(a.Interval, DefaultAnalysisInterval)
		if a.FailureLimit != nil {
			out.FailureLimit = int(*a.FailureLimit)
		}
		if a.Prometheus != nil {
			out.Prometheus = a.Prometheus.Address
		}
		if len(a.Metrics) > 0 && out.Prometheus == "" {
			errs = append(errs, errors.New("spec.analysis.prometheus.address: required when metrics are set"))
		}
		for i, m := range a.Metrics {
			t, err := template.New(m.Name).Option("missingkey=error").Parse(m.Query)
			if err != nil {
				errs = append(errs, fmt.Errorf("spec.analysis.metrics[%d] (%s).query: %w", i, m.Name, err))
			}
			if m.Min == nil && m.Max == nil {
				errs = append(errs, fmt.Errorf("spec.analysis.metrics[%d] (%s): needs min or max", i, m.Name))
			}
			out.Metrics = append(out.Metrics, Metric{Name: m.Name, Query: m.Query, Template: t, Min: m.Min, Max: m.Max})
		}
	}
	if out.Interval <= 0 {
		errs = append(errs, errors.New("spec.analysis.interval: must be positive"))
	}
	if out.AckTimeout <= 0 {
		errs = append(errs, errors.New("spec.ackTimeout: must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// DefaultMinNodes is a stage's minNodes when the policy sets none: 1 for a
// stage that selects by labels only (a selector that matches no node is a
// mistake to report, not a stage to skip), 0 for a stage by percent (10 %
// of a small fleet may be no node).
func DefaultMinNodes(s Stage) int {
	if s.Selector != nil && s.Percent < 0 {
		return 1
	}
	return 0
}

func dur(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

// Bucket is the node's stable position in 0..99 for percent stages.
func Bucket(nodeID string) int {
	h := fnv.New32a()
	h.Write([]byte(nodeID))
	return int(h.Sum32() % 100)
}

// StageOf is the index of the first stage that selects the node. A node no
// stage selects moves with the last stage.
func (p *Policy) StageOf(nodeID string, nodeLabels map[string]string) int {
	return StageOf(p.Stages, nodeID, nodeLabels)
}

// StageOf is the index of the first of stages that selects the node, from
// its id and labels only (so every replica places a node alike). A node no
// stage selects moves with the last stage.
func StageOf(stages []Stage, nodeID string, nodeLabels map[string]string) int {
	b := Bucket(nodeID)
	for i, s := range stages {
		if s.Selector != nil && s.Selector.Matches(labels.Set(nodeLabels)) {
			return i
		}
		if s.Percent >= 0 && b < s.Percent {
			return i
		}
	}
	return len(stages) - 1
}
