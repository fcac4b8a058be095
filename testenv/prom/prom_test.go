package prom_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gitxds.dev/gitxds/testenv/dataplane"
	"gitxds.dev/gitxds/testenv/prom"
)

// A real Prometheus scrapes the data plane's metrics every second.
func TestScrapesDataPlane(t *testing.T) {
	m, err := dataplane.StartMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Register("node-1")
	m.Observe("node-1", errors.New("boom"))

	start := time.Now()
	p := prom.StartT(t, prom.Options{Targets: []string{m.Addr()}})
	t.Logf("prometheus ready on %s in %s", p.Addr, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.WaitScraped(ctx, 1); err != nil {
		t.Fatal(err)
	}
	data, err := p.Query(ctx, `sum(`+dataplane.MetricName+`{code_class="5xx",node=~"node-1"})`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"1"`) {
		t.Fatalf("5xx of node-1: %s, want 1", data)
	}
}
