package rollout_test

// Rollback latency (docs/architecture.md §4, BENCHMARKS.md "Rollback latency"): the real
// rollout engine, the reconciler's fleet adapter and the real xDS server on
// a loopback gRPC port, and 1,000 simulated nodes (testenv/fleetsim), each
// an ADS state-of-the-world stream that validates and ACKs what it gets.
//
//	go test ./reconciler/rollout -run '^$' -bench Rollback -benchtime 5x
//	go test ./reconciler/rollout -run '^$' -bench Rollback -benchtime 5x -rollback.nodes 2000
//
// Rollback latency is measured from the decision (the engine putting the
// nodes back: its Unassign call) to the moment the last node ACKed the last
// type of the last good snapshot, as that node saw it (the simulated client
// time-stamps every version it accepts), and, as a cross-check, until the
// server's registry shows every node ACKed (xds.Server.WaitACK).

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/admin"
	"gitxds.dev/gitxds/reconciler/metrics"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

var (
	benchNodes  = flag.Int("rollback.nodes", 1000, "simulated nodes of the rollback benchmarks")
	benchVHosts = flag.Int("rollback.vhosts", 50, "virtual hosts of the benchmark snapshots (5 routes each)")
	benchNoVal  = flag.Bool("rollback.novalidate", false, "simulated nodes ACK without decoding and validating (isolates the server's share)")
)

// timedFleet records when the engine puts nodes back (its rollback
// decision taking effect).
type timedFleet struct {
	rollout.Fleet
	mu         sync.Mutex
	unassigned time.Time
}

func (f *timedFleet) Unassign(ids []string) {
	f.mu.Lock()
	f.unassigned = time.Now()
	f.mu.Unlock()
	f.Fleet.Unassign(ids)
}

func (f *timedFleet) decision() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unassigned
}

// valueQuerier answers every query with the current value.
type valueQuerier struct{ v atomic.Uint64 }

func (q *valueQuerier) set(v float64) { q.v.Store(math.Float64bits(v)) }
func (q *valueQuerier) Query(context.Context, string) (float64, error) {
	return math.Float64frombits(q.v.Load()), nil
}

type bench struct {
	srv    *xds.Server
	fleet  *timedFleet
	sim    *fleetsim.Fleet
	engine *rollout.Engine
	q      *valueQuerier
	done   chan rollout.Result
	good   *snapshot.Set
	spec   fleetsim.SetSpec
}

func setup(b *testing.B) *bench {
	b.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := xds.New(xds.Options{Logger: discard})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(served) }()
	b.Cleanup(func() { cancel(); <-served })

	be := &bench{srv: srv, q: &valueQuerier{}, done: make(chan rollout.Result, 1),
		spec: fleetsim.SetSpec{VirtualHosts: *benchVHosts, RoutesPerHost: 5, Clusters: *benchVHosts}}
	be.spec.Revision = "main@sha1:good"
	be.good = fleetsim.BuildSet(be.spec)
	srv.SetDefault(be.good)
	be.fleet = &timedFleet{Fleet: admin.NewXDSFleet(srv, metrics.New())}
	be.engine = rollout.New(be.fleet, rollout.Options{
		Log:        discard,
		NewQuerier: func(string) (rollout.Querier, error) { return be.q, nil },
		OnDone:     func(res rollout.Result) { be.done <- res },
	})

	start := time.Now()
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	be.sim, err = fleetsim.Start(sctx, *benchNodes, lis.Addr().String(), fleetsim.Options{NoValidate: *benchNoVal})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(be.sim.Close)
	if _, err := be.sim.WaitRuns(sctx, be.good); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d simulated nodes connected and on the last good snapshot in %s (%d virtual hosts, %d routes, %d clusters)",
		be.sim.Len(), time.Since(start).Round(time.Millisecond), be.spec.VirtualHosts, be.spec.VirtualHosts*5, be.spec.Clusters)
	return be
}

func (be *bench) bad(i int) *snapshot.Set {
	spec := be.spec
	spec.Revision = fmt.Sprintf("main@sha1:bad-%d", i)
	spec.Variant = i + 1
	return fleetsim.BuildSet(spec)
}

// rolledBack waits for the failed result, then for every node back on the
// last good snapshot, and returns the latency from the decision, as the
// nodes saw it and as the server's registry saw it.
func (be *bench) rolledBack(b *testing.B, wantReason string) (nodes, registry time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res rollout.Result
	select {
	case res = <-be.done:
	case <-ctx.Done():
		b.Fatal("rollout did not finish")
	}
	if res.Phase != rollout.Failed || res.Reason != wantReason {
		b.Fatalf("rollout %s %s: %s; want Failed %s", res.Phase, res.Reason, res.Message, wantReason)
	}
	decision := be.fleet.decision()
	if _, err := be.sim.WaitRuns(ctx, be.good); err != nil {
		b.Fatal(err)
	}
	// A response already in flight could still move a node; settle, then
	// read the nodes' own time stamps.
	time.Sleep(200 * time.Millisecond)
	last, err := be.sim.WaitRuns(ctx, be.good)
	if err != nil {
		b.Fatal(err)
	}
	// The server's registry agrees: every node ACKed the last good
	// snapshot, as of the last ACK it recorded.
	if err := be.srv.WaitACK(ctx, be.sim.IDs(), be.good); err != nil {
		b.Fatal(err)
	}
	for _, n := range be.srv.Nodes() {
		for _, ts := range n.Types {
			if ts.ACKedAt.After(decision) && ts.ACKedAt.Sub(decision) > registry {
				registry = ts.ACKedAt.Sub(decision)
			}
		}
	}
	return last.Sub(decision), registry
}

type stats struct{ d []time.Duration }

func (s *stats) add(d time.Duration) { s.d = append(s.d, d) }
func (s *stats) report(b *testing.B, unit string) {
	sort.Slice(s.d, func(i, j int) bool { return s.d[i] < s.d[j] })
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(len(s.d)), unit+"-mean-ms")
	b.ReportMetric(float64(s.d[len(s.d)-1].Milliseconds()), unit+"-max-ms")
}

// BenchmarkRollbackNACK: a new snapshot goes to every node at once (no
// RolloutPolicy); one node NACKs its routes; every node goes back to the
// last good snapshot. Also counts how often the NACKed version reached the
// node that rejected it (1 = no re-send).
func BenchmarkRollbackNACK(b *testing.B) {
	be := setup(b)
	nacker := be.sim.Node(be.sim.Len() / 2)
	var nodesLat, regLat stats
	resends := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bad := be.bad(i)
		badRDS := bad.Version(snapshot.Envoy, resource.RouteType)
		nacker.RejectVersion(resource.RouteType, badRDS, "injected: route rejected")
		pol := rollout.AllAtOnce()
		pol.AckTimeout = time.Minute
		be.engine.Start(rollout.Plan{Revision: bad.Revision, Target: bad, LastGood: be.good, Policy: pol})
		n, r := be.rolledBack(b, "NACK")
		// A hot loop of re-sends would show within a second.
		time.Sleep(time.Second)
		sent := nacker.Responses(resource.RouteType, badRDS)
		resends += sent - 1
		reached := be.sim.Responses(resource.RouteType, badRDS)
		b.Logf("iteration %d: rollback %s (registry %s); the NACKed RDS version reached the NACKing node %d time(s); %d of %d nodes had received it",
			i, n.Round(time.Millisecond), r.Round(time.Millisecond), sent, reached, be.sim.Len())
		nodesLat.add(n)
		regLat.add(r)
	}
	b.StopTimer()
	nodesLat.report(b, "rollback")
	regLat.report(b, "registry")
	b.ReportMetric(float64(resends), "resends")
}

// BenchmarkRollbackGate: a new snapshot reaches every node (one stage,
// percent 100), is ACKed by all and bakes; then the metric gate fails and
// every node goes back to the last good snapshot: the worst case, all
// nodes moving at once.
func BenchmarkRollbackGate(b *testing.B) {
	be := setup(b)
	maxErr := 1.0
	pol := &rollout.Policy{
		AckTimeout:   time.Minute,
		Stages:       []rollout.Stage{{Name: "all", Percent: 100, Bake: time.Hour}},
		Interval:     50 * time.Millisecond,
		Prometheus:   "http://prometheus.invalid",
		Metrics:      []rollout.Metric{{Name: "errors", Query: "errors", Template: template.Must(template.New("errors").Parse("errors")), Max: &maxErr}},
		FailureLimit: 3,
	}
	var nodesLat, regLat stats
	var cpuTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bad := be.bad(i)
		be.q.set(0)
		be.engine.Start(rollout.Plan{Revision: bad.Revision, Target: bad, LastGood: be.good, Policy: pol})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		at, err := be.sim.WaitRuns(ctx, bad)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		for {
			st, _ := be.engine.Status()
			if st.Stages[0].Phase == "Baking" {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.Logf("iteration %d: every node on the new snapshot %s after the start", i, at.Sub(mustStarted(be)).Round(time.Millisecond))
		cpu0 := cpuTime()
		be.q.set(10) // the gate fails at the next analysis interval
		n, r := be.rolledBack(b, "MetricGate")
		cpu := cpuTime() - cpu0
		cpuTotal += cpu
		b.Logf("iteration %d: rollback of %d nodes %s (registry %s); process CPU from the gate flip to the check %s (server and simulated nodes, incl. a 200ms settle)",
			i, be.sim.Len(), n.Round(time.Millisecond), r.Round(time.Millisecond), cpu.Round(time.Millisecond))
		nodesLat.add(n)
		regLat.add(r)
	}
	b.StopTimer()
	nodesLat.report(b, "rollback")
	regLat.report(b, "registry")
	b.ReportMetric(float64(cpuTotal.Milliseconds())/float64(b.N), "rollback-cpu-ms")
	responses, nacks := be.sim.Totals()
	b.Logf("%d responses, %d NACKs over the run", responses, nacks)
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mustStarted(be *bench) time.Time {
	st, _ := be.engine.Status()
	return st.StartedAt
}
