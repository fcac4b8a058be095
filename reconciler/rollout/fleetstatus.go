package rollout

import (
	"time"

	"gitxds.dev/gitxds/reconciler/status"
)

// StatusOf is the fleet-wide rollout s as any replica shows it (GET
// /status): its phase and stages from the FleetState, the current stage's
// nodes and ACKs summed from the replicas' reports at now.
func StatusOf(s FleetState, reports []ReplicaReport, now time.Time, staleAfter, goneAfter time.Duration) status.Rollout {
	if staleAfter <= 0 {
		staleAfter = DefaultStaleAfter
	}
	if goneAfter <= 0 {
		goneAfter = DefaultGoneAfter
	}
	ro := status.Rollout{Revision: s.Revision, Hash: s.Hash, Phase: s.Phase, Stage: s.StageName, StageIdx: s.Stage,
		StartedAt: s.StartedAt, Message: s.Message, FastPath: s.FastPath}
	for i, sp := range s.Stages {
		st := status.Stage{Name: sp.Name, Phase: status.StagePending, MinNodes: sp.MinNodes}
		switch {
		case i < s.Stage || s.Phase == Succeeded:
			st.Phase = status.StagePassed
		case i > s.Stage:
		case s.Phase == Failed || s.Phase == Aborted:
			st.Phase = status.StageFailed
		case s.Phase.Final():
		case s.BakeUntil != nil:
			st.Phase = status.StageBaking
		default:
			st.Phase = status.StageProgressing
		}
		if i == s.Stage && !s.Phase.Final() {
			o, _ := Sum(s, i, reports, now, staleAfter, goneAfter)
			st.Nodes, st.NodeCount, st.Acked, st.Warning = o.Nodes, o.InStage, o.Acked, o.Waiting
		}
		ro.Stages = append(ro.Stages, st)
	}
	return ro
}
