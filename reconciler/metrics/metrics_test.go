package metrics

import (
	"strings"
	"testing"
)

// revisions returns the gitxds_revision_info series as "kind=revision".
func revisions(t *testing.T, m *Metrics) []string {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "gitxds_revision_info" {
			continue
		}
		for _, s := range mf.GetMetric() {
			var kind, rev string
			for _, l := range s.GetLabel() {
				switch l.GetName() {
				case "kind":
					kind = l.GetValue()
				case "revision":
					rev = l.GetValue()
				}
			}
			out = append(out, kind+"="+rev)
		}
	}
	return out
}

// SetRevision keeps one series per kind: the old revision is dropped, so a
// dashboard never shows two applied revisions.
func TestSetRevisionKeepsOneSeriesPerKind(t *testing.T) {
	m := New()
	m.SetRevision("applied", "main@sha1:aaa")
	m.SetRevision("attempted", "main@sha1:bbb")
	m.SetRevision("applied", "main@sha1:bbb")
	got := strings.Join(revisions(t, m), " ")
	if got != "applied=main@sha1:bbb attempted=main@sha1:bbb" {
		t.Fatalf("series %q", got)
	}
	m.SetRevision("attempted", "")
	if got := strings.Join(revisions(t, m), " "); got != "applied=main@sha1:bbb" {
		t.Fatalf("after clearing attempted: %q", got)
	}
}

// Every metric is registered and gathers (a duplicate or inconsistent
// registration panics in New or fails Gather); the rollout stage starts at
// -1 (none).
func TestNewRegistersEverything(t *testing.T) {
	m := New()
	m.Reconciles.WithLabelValues("applied").Inc()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]float64{}
	for _, mf := range mfs {
		if len(mf.GetMetric()) > 0 && mf.GetMetric()[0].GetGauge() != nil {
			names[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
		} else {
			names[mf.GetName()] = 0
		}
	}
	for _, want := range []string{"gitxds_reconciles_total", "gitxds_rollout_stage", "gitxds_rejected_objects", "go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := names[want]; !ok {
			t.Errorf("%s not gathered", want)
		}
	}
	if v := names["gitxds_rollout_stage"]; v != -1 {
		t.Errorf("gitxds_rollout_stage starts at %g, want -1", v)
	}
}
