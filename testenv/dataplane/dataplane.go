// Package dataplane is the data plane of the end-to-end tests: it drives
// traffic from real gRPC xDS clients, remembers who answered each node, and
// exports what it saw as Prometheus metrics, the way a proxy fleet's
// metrics would reach the rollout's metric gates:
//
//	gitxds_test_upstream_rq_total{node="<xDS node id>",code_class="2xx|5xx"}
//
// A call that succeeds counts as 2xx; a call that fails, whatever its gRPC
// code, as 5xx. Both series of a node exist from Register on (at 0), so
// rate() sees the first error at the next scrape.
//
// Without a Prometheus, the same endpoint answers the query API for one
// query, the error ratio of a set of nodes (query.go).
package dataplane

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/status"
)

// MetricName is the counter of calls per node and code class.
const MetricName = "gitxds_test_upstream_rq_total"

// Metrics is the data plane's /metrics endpoint.
type Metrics struct {
	reg *prometheus.Registry
	rq  *prometheus.CounterVec
	lis net.Listener
	srv *http.Server

	obsMu sync.Mutex
	obs   []observation // for the query API (query.go)
}

// StartMetrics serves /metrics on addr ("127.0.0.1:0" for any port).
func StartMetrics(addr string) (*Metrics, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dataplane: listen: %w", err)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), lis: lis}
	m.rq = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricName,
		Help: "Calls made by the test data plane, per xDS node id and response code class.",
	}, []string{"node", "code_class"})
	m.reg.MustRegister(m.rq)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/api/v1/query", m.queryAPI)
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go m.srv.Serve(lis) //nolint:errcheck // ErrServerClosed after Close
	return m, nil
}

// Addr is the "127.0.0.1:PORT" Prometheus scrapes.
func (m *Metrics) Addr() string { return m.lis.Addr().String() }

// Register creates the node's series at 0.
func (m *Metrics) Register(node string) {
	m.rq.WithLabelValues(node, "2xx")
	m.rq.WithLabelValues(node, "5xx")
}

// Observe counts one call of node.
func (m *Metrics) Observe(node string, err error) {
	class := "2xx"
	if err != nil {
		class = "5xx"
	}
	m.rq.WithLabelValues(node, class).Inc()
	m.record(node, err != nil)
}

// Close stops the endpoint.
func (m *Metrics) Close() { _ = m.srv.Close() }

// Caller is one node of the data plane: an xdsclient.Client.
type Caller interface {
	NodeID() string
	Call(ctx context.Context, target string, md map[string]string) (string, error)
}

// GRPCGoClusterRace is how gRPC-Go fails a call that its new config
// selector sends to a cluster its load balancer has not added yet
// (internal/xds/balancer/clustermanager/picker.go): when a route moves to
// a cluster the client did not use, the resolver's new config selector
// can be used a few milliseconds before the cluster manager's new picker.
// The server cannot close that window (gRPC-Go asks for the cluster only
// once the route names it, and resolves it before switching); grpc-java
// fixed the same race in its resolver (grpc/grpc-java#11947).
const GRPCGoClusterRace = "unknown cluster selected for RPC"

// RaceAnswer is the answer Traffic counts for a call failed by
// GRPCGoClusterRace, apart from every other error.
const RaceAnswer = "race: gRPC-Go cluster switch"

// Traffic calls a target from every client in a loop, counts every answer
// in Metrics, and remembers per node who answered (the upstream's name) or
// the error.
type Traffic struct {
	m       *Metrics
	target  string
	every   time.Duration
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	answers map[string]map[string]int // node -> answer -> count
	last    map[string]string
}

// StartTraffic starts one loop per client: a call to target every `every`
// (each call bounded by callTimeout).
func StartTraffic(m *Metrics, clients []Caller, target string, every, callTimeout time.Duration) *Traffic {
	ctx, cancel := context.WithCancel(context.Background())
	t := &Traffic{m: m, target: target, every: every, cancel: cancel,
		answers: map[string]map[string]int{}, last: map[string]string{}}
	for _, c := range clients {
		m.Register(c.NodeID())
		t.answers[c.NodeID()] = map[string]int{}
		t.wg.Add(1)
		go t.loop(ctx, c, callTimeout)
	}
	return t
}

func (t *Traffic) loop(ctx context.Context, c Caller, callTimeout time.Duration) {
	defer t.wg.Done()
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		id, err := c.Call(cctx, t.target, nil)
		cancel()
		if ctx.Err() != nil {
			return
		}
		t.m.Observe(c.NodeID(), err)
		answer := id
		switch {
		case err != nil && strings.Contains(err.Error(), GRPCGoClusterRace):
			answer = RaceAnswer
		case err != nil:
			answer = "error: " + status.Code(err).String()
		}
		t.mu.Lock()
		t.answers[c.NodeID()][answer]++
		t.last[c.NodeID()] = answer
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Answers is, per node, how many calls each upstream answered (or failed
// with "error: <code>") since the start or the last Reset.
func (t *Traffic) Answers() map[string]map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]map[string]int, len(t.answers))
	for n, a := range t.answers {
		c := make(map[string]int, len(a))
		for k, v := range a {
			c[k] = v
		}
		out[n] = c
	}
	return out
}

// Last is the last answer each node got.
func (t *Traffic) Last() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.last))
	for k, v := range t.last {
		out[k] = v
	}
	return out
}

// Reset forgets the answers counted so far (metrics are counters: they stay).
func (t *Traffic) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n := range t.answers {
		t.answers[n] = map[string]int{}
	}
}

// Stop ends every loop and waits for them.
func (t *Traffic) Stop() {
	t.cancel()
	t.wg.Wait()
}

// Format renders answers as "node: A=12 B=3; ..." sorted, for messages.
func Format(answers map[string]map[string]int) string {
	nodes := make([]string, 0, len(answers))
	for n := range answers {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	out := ""
	for i, n := range nodes {
		if i > 0 {
			out += "; "
		}
		keys := make([]string, 0, len(answers[n]))
		for k := range answers[n] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out += n + ":"
		for _, k := range keys {
			out += fmt.Sprintf(" %s=%d", k, answers[n][k])
		}
	}
	return out
}
