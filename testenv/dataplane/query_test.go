package dataplane

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/reconciler/rollout"
)

// TestQueryAPIErrorRatio: the data plane's query API answers its error
// ratio through the Prometheus client gitxds's metric gates use, for the
// nodes the gate's node regex selects only, and refuses any other query.
func TestQueryAPIErrorRatio(t *testing.T) {
	m, err := StartMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	boom := errors.New("boom")
	// canary-1: 2 failed of 5; stable-1: 1 failed of 4 (not selected).
	for i := range 5 {
		var e error
		if i < 2 {
			e = boom
		}
		m.Observe("canary-1", e)
	}
	for i := range 4 {
		var e error
		if i == 0 {
			e = boom
		}
		m.Observe("stable-1", e)
	}
	q, err := rollout.NewPromQuerier(m.QueryURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The template a RolloutPolicy holds, executed as the rollout does.
	query := func(nodes ...string) string {
		return strings.ReplaceAll(ErrorRatioQuery("{{ .NodeRegex }}", 300*time.Second), "{{ .NodeRegex }}", rollout.NewQueryData(nodes, "canary", "r").NodeRegex)
	}
	for _, c := range []struct {
		nodes []string
		want  float64
	}{
		{[]string{"canary-1"}, 0.4},
		{[]string{"stable-1"}, 0.25},
		{[]string{"canary-1", "stable-1"}, 3.0 / 9},
		{[]string{"canary"}, 0}, // anchored: no node is named "canary"
		{nil, 0},
	} {
		got, err := q.Query(ctx, query(c.nodes...))
		if err != nil || got != c.want {
			t.Errorf("error ratio of %v = %g, %v; want %g", c.nodes, got, err, c.want)
		}
	}
	if _, err := q.Query(ctx, `sum(rate(`+MetricName+`[5s]))`); err == nil || !strings.Contains(err.Error(), "answers only its error ratio") {
		t.Errorf("another query: err %v, want a bad_data error", err)
	}
}

// TestErrorRatioWindow: only the calls inside the window count.
func TestErrorRatioWindow(t *testing.T) {
	m := &Metrics{}
	t0 := time.Unix(1000, 0)
	m.obs = []observation{
		{at: t0, node: "n", failed: true},
		{at: t0.Add(4 * time.Second), node: "n"},
		{at: t0.Add(6 * time.Second), node: "n", failed: true},
		{at: t0.Add(7 * time.Second), node: "n"},
	}
	re := regexp.MustCompile("^(?:n)$")
	if r, n := m.ErrorRatio(re, 5*time.Second, t0.Add(8*time.Second)); n != 3 || r != 1.0/3 {
		t.Errorf("last 5s at t0+8s: ratio %g of %d calls, want 1/3 of 3", r, n)
	}
	if r, n := m.ErrorRatio(re, 5*time.Second, t0.Add(20*time.Second)); n != 0 || r != 0 {
		t.Errorf("no call in the window: ratio %g of %d calls, want none", r, n)
	}
}
