package model

import (
	"fmt"
	"text/template"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// validateRollout checks a RolloutPolicy; it returns a message for the user,
// or "" when the policy is valid.
func validateRollout(p *v1alpha1.RolloutPolicy) string {
	names := map[string]bool{}
	for i, s := range p.Spec.Stages {
		if s.Name == "" {
			return fmt.Sprintf("spec.stages[%d] has no name", i)
		}
		if names[s.Name] {
			return fmt.Sprintf("spec.stages[%d]: stage name %q is used twice", i, s.Name)
		}
		names[s.Name] = true
		if s.Percent != nil && (*s.Percent < 0 || *s.Percent > 100) {
			return fmt.Sprintf("spec.stages[%d] (%s): percent %d must be 0..100", i, s.Name, *s.Percent)
		}
		if s.Percent == nil && s.NodeSelector == nil {
			return fmt.Sprintf("spec.stages[%d] (%s) selects no node: set nodeSelector or percent", i, s.Name)
		}
		if s.NodeSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(s.NodeSelector); err != nil {
				return fmt.Sprintf("spec.stages[%d] (%s): invalid nodeSelector: %v", i, s.Name, err)
			}
		}
		if negative(s.Bake) {
			return fmt.Sprintf("spec.stages[%d] (%s): bake must not be negative", i, s.Name)
		}
		if s.MinNodes != nil && *s.MinNodes < 0 {
			return fmt.Sprintf("spec.stages[%d] (%s): minNodes %d must not be negative", i, s.Name, *s.MinNodes)
		}
	}
	if negative(p.Spec.AckTimeout) {
		return "spec.ackTimeout must not be negative"
	}
	if a := p.Spec.Analysis; a != nil {
		if len(a.Metrics) > 0 && (a.Prometheus == nil || a.Prometheus.Address == "") {
			return "spec.analysis.metrics need spec.analysis.prometheus.address"
		}
		if a.Interval != nil && a.Interval.Duration <= 0 {
			return "spec.analysis.interval must be positive"
		}
		if a.FailureLimit != nil && *a.FailureLimit < 0 {
			return "spec.analysis.failureLimit must not be negative"
		}
		for i, m := range a.Metrics {
			if m.Name == "" || m.Query == "" {
				return fmt.Sprintf("spec.analysis.metrics[%d] needs a name and a query", i)
			}
			if _, err := template.New(m.Name).Option("missingkey=error").Parse(m.Query); err != nil {
				return fmt.Sprintf("spec.analysis.metrics[%d] (%s): query is not a valid template: %v", i, m.Name, err)
			}
			if m.Min == nil && m.Max == nil {
				return fmt.Sprintf("spec.analysis.metrics[%d] (%s) needs min or max", i, m.Name)
			}
			if m.Min != nil && m.Max != nil && *m.Min > *m.Max {
				return fmt.Sprintf("spec.analysis.metrics[%d] (%s): min is greater than max", i, m.Name)
			}
		}
	}
	return ""
}

func negative(d *metav1.Duration) bool { return d != nil && d.Duration < 0 }
