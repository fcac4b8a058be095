package scale

import (
	"context"
	"testing"
	"time"
)

// TestRunSmall runs the whole harness at a tiny size, in process: every
// metric it promises is there, the route changes reach every node, and the
// gRPC clients see no failed call with gitxds.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Teams: 4, Routes: 2, Nodes: 5, Changes: 2, GRPCClients: 2, Baseline: true, Delta: true, Timeout: time.Minute, ClientWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := res.GitXDS
	for name, v := range map[string]*float64{
		"render_ms": g.RenderMS, "one_team_change_ms": g.OneTeamChangeMS, "push_to_all_ack_ms": g.PushToAllAckMS,
		"rollback_ms": g.RollbackMS, "peak_rss_mb": g.PeakRSSMB, "xds_bytes_per_node_one_route_change": g.XDSBytesPerNodeOneRouteChange,
		"failed_rpcs_during_changes": g.FailedRPCsDuringChanges,
	} {
		if v == nil {
			t.Errorf("gitxds %s not measured (notes %q)", name, g.Notes)
		}
	}
	if g.FailedRPCsDuringChanges != nil && *g.FailedRPCsDuringChanges != 0 {
		t.Errorf("gitxds: %v failed RPCs during changes (notes %q)", *g.FailedRPCsDuringChanges, g.Notes)
	}
	if g.NACKedVersionResends == nil || *g.NACKedVersionResends != 0 {
		t.Errorf("gitxds re-sent a NACKed version: %v", g.NACKedVersionResends)
	}
	if res.Baseline == nil || res.Baseline.PushToAllAckMS == nil || res.GitXDSDelta == nil || res.GitXDSDelta.PushToAllAckMS == nil {
		t.Errorf("baseline or delta run missing: %+v %+v", res.Baseline, res.GitXDSDelta)
	}
}
