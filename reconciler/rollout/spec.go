package rollout

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
)

// Specs are stages as the FleetState carries them to every replica.
func Specs(stages []Stage) []StageSpec {
	out := make([]StageSpec, len(stages))
	for i, s := range stages {
		out[i] = StageSpec{Name: s.Name, Percent: s.Percent, MinNodes: s.MinNodes}
		switch {
		case s.Selector == nil:
		case s.Selector.Empty():
			// An empty selector matches every node, as 100 percent does
			// (its string form, "", would select none by labels).
			out[i].Percent = 100
		default:
			out[i].Selector = s.Selector.String()
		}
	}
	return out
}

// StagesOf compiles the stages a FleetState carries, for StageOf.
func StagesOf(specs []StageSpec) ([]Stage, error) {
	out := make([]Stage, len(specs))
	for i, s := range specs {
		out[i] = Stage{Name: s.Name, Percent: s.Percent, MinNodes: s.MinNodes}
		if s.Selector != "" {
			sel, err := labels.Parse(s.Selector)
			if err != nil {
				return nil, fmt.Errorf("stage %s: selector %q: %w", s.Name, s.Selector, err)
			}
			out[i].Selector = sel
		}
	}
	return out, nil
}

// describe names how the stage selects nodes, for messages.
func (s Stage) describe() string {
	switch {
	case s.Selector != nil && s.Percent >= 0:
		return fmt.Sprintf("nodeSelector %s or %d%% of node ids", s.Selector, s.Percent)
	case s.Selector != nil:
		return "nodeSelector " + s.Selector.String()
	default:
		return fmt.Sprintf("%d%% of node ids", s.Percent)
	}
}
