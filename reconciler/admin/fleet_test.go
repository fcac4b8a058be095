package admin

import (
	"testing"

	"gitxds.dev/gitxds/reconciler/metrics"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xds"
)

// TestNodesConnectedFromTheStart: gitxds_nodes_connected is 0 for every
// class before any node connects, not absent (an alert on it would see
// nothing).
func TestNodesConnectedFromTheStart(t *testing.T) {
	m := metrics.New()
	NewXDSFleet(xds.New(xds.Options{}), m)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "gitxds_nodes_connected" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got[mt.GetLabel()[0].GetValue()] = mt.GetGauge().GetValue()
		}
	}
	for _, c := range snapshot.Classes {
		if v, ok := got[string(c)]; !ok || v != 0 {
			t.Errorf("%s: %v (present %v)", c, v, ok)
		}
	}
}
