package scale

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
	"gitxds.dev/gitxds/testenv/repogen"
)

// fleet is either simulated fleet.
type fleet interface {
	waitRuns(ctx context.Context, want *fleetsim.Want) (time.Time, error)
	bytes() int64
	close()
}

type sotwFleet struct {
	f *fleetsim.Fleet
	n *atomic.Int64
}

func (s sotwFleet) waitRuns(ctx context.Context, want *fleetsim.Want) (time.Time, error) {
	return s.f.Wait(ctx, func(n *fleetsim.Node) (time.Time, bool) { return runs(n, want) })
}
func (s sotwFleet) bytes() int64 { return s.n.Load() }
func (s sotwFleet) close()       { s.f.Close() }

// deltaFleet is a fleet of incremental (delta) nodes: each subscribes to
// every type but SDS as a wildcard (fleetsim.DefaultTypes, for either
// role), validates what it receives and ACKs or NACKs. Its wait ends at
// the last node's ACK.
type deltaFleet struct{ sotwFleet }

func (d deltaFleet) waitRuns(ctx context.Context, want *fleetsim.Want) (time.Time, error) {
	return d.f.Wait(ctx, func(n *fleetsim.Node) (time.Time, bool) { return n.RunsWant(want) })
}

// runs: the node runs want (fleetsim.Want: every type at want's version,
// or holding want's resources). The time is now: fleetsim.Fleet.Wait polls
// every 10 ms, so the wait ends with the poll that saw the last node's ACK
// (an upper bound of the ACK's time by one poll).
func runs(n *fleetsim.Node, want *fleetsim.Want) (time.Time, bool) {
	if _, ok := n.RunsWant(want); !ok {
		return time.Time{}, false
	}
	return time.Now(), true
}

// envoyWant is what an Envoy node runs after the reply's revision.
func envoyWant(r reply) *fleetsim.Want {
	return &fleetsim.Want{Versions: r.Versions[string(snapshot.Envoy)], Resources: r.Hashes[string(snapshot.Envoy)]}
}

// counting counts the serialized size of every DiscoveryResponse received.
func counting(n *atomic.Int64) grpc.DialOption {
	return grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return countStream{cs, n}, nil
	})
}

type countStream struct {
	grpc.ClientStream
	n *atomic.Int64
}

func (c countStream) RecvMsg(m any) error {
	err := c.ClientStream.RecvMsg(m)
	if err == nil {
		if pm, ok := m.(proto.Message); ok {
			c.n.Add(int64(proto.Size(pm)))
		}
	}
	return err
}

func runFleet(ctx context.Context, cfg Config, spec repogen.Spec, upstreams []string, role string, delta bool, side *Side, logf func(string, ...any)) error {
	var cp controlPlane
	if cfg.ServerArgv != nil {
		argv := cfg.ServerArgv
		if cfg.ProfileDir != "" {
			name := role
			if delta {
				name += "-delta"
			}
			argv = append(append([]string{}, argv...), "-cpuprofile", filepath.Join(cfg.ProfileDir, name+".pprof"))
		}
		var env []string
		if cfg.MemoryLimit != "" {
			env = append(env, "GOMEMLIMIT="+cfg.MemoryLimit)
		}
		c, err := startChild(argv, env, role, spec, upstreams)
		if err != nil {
			return err
		}
		cp = c
	} else {
		p, err := newPlane(role, spec)
		if err != nil {
			return err
		}
		cp = p
		side.Notes = append(side.Notes, "control plane in the harness process: peak_rss_mb includes the simulated fleet")
	}
	defer cp.close()
	start, err := cp.do(request{Op: "start"})
	if err != nil {
		return err
	}
	envoyVersions := envoyWant(start)
	heapProfile := func(when string) string {
		if cfg.ProfileDir == "" {
			return ""
		}
		name := role
		if delta {
			name += "-delta"
		}
		return filepath.Join(cfg.ProfileDir, name+"-heap-"+when+".pprof")
	}
	if st, err := cp.do(request{Op: "stats", HeapProfile: heapProfile("before-nodes")}); err == nil {
		side.PeakRSSBeforeNodesMB = f64(st.PeakRSSMB)
		logf("  before any node: peak RSS %.0f MB", st.PeakRSSMB)
	}

	// The fleet.
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	t0 := time.Now()
	var fl fleet
	var sim *fleetsim.Fleet
	n := &atomic.Int64{}
	opts := fleetsim.Options{Prefix: role, DialOptions: []grpc.DialOption{counting(n)}}
	switch {
	case delta:
		opts.Prefix, opts.Delta = "delta", true
	case role == Baseline:
		// Its Envoy nodes use RDS only: no scoped routes.
		opts.Types = fleetsim.ClassicTypes
	}
	f, err := fleetsim.Start(wctx, cfg.Nodes, start.Addr, opts)
	if err != nil {
		cancel()
		return err
	}
	if delta {
		fl = deltaFleet{sotwFleet{f, n}}
	} else {
		sim = f
		fl = sotwFleet{f, n}
	}
	defer fl.close()
	last, err := fl.waitRuns(wctx, envoyVersions)
	cancel()
	if err != nil {
		return fmt.Errorf("first push: %w", err)
	}
	side.FirstPushMS = f64(ms(last.Sub(t0)))
	logf("  first push: %.0f ms", *side.FirstPushMS)
	if st, err := cp.do(request{Op: "stats", HeapProfile: heapProfile("first-push")}); err == nil {
		side.RSSAfterFirstPushMB = f64(st.RSSMB)
		logf("  after the first push: RSS %.0f MB, peak %.0f MB", st.RSSMB, st.PeakRSSMB)
	}

	// Real gRPC clients, one per traffic team, calling its hostname.
	tr, err := startTraffic(ctx, cfg.GRPCClients, start.Addr, spec, role)
	if err != nil {
		return err
	}
	defer tr.stop()
	if err := tr.waitAllOK(ctx, cfg.ClientWait); err != nil {
		side.Notes = append(side.Notes, "gRPC clients never got a successful call before the changes: "+err.Error()+"; failed_rpcs_during_changes not measured")
		logf("  gRPC clients: %v", err)
	}
	okBefore, failBefore := tr.counts()

	// One-route changes under traffic.
	var pushes, pipes, bytes []float64
	stages := map[string][]float64{}
	teamBytes := 0
	gen := map[int]int{}
	for i := 0; i < cfg.Changes; i++ {
		team := i % cfg.GRPCClients
		gen[team]++
		prep, err := cp.do(request{Op: "prepare", Team: team, Route: 0, Gen: gen[team]})
		if err != nil {
			return err
		}
		teamBytes = prep.TeamRouteBytes
		b0 := fl.bytes()
		srv, err := cp.do(request{Op: "serve"})
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		last, err := fl.waitRuns(wctx, envoyWant(prep))
		cancel()
		if err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
		time.Sleep(50 * time.Millisecond) // late responses (e.g. a re-send) count too
		pipes = append(pipes, prep.PipelineMS)
		for k, v := range map[string]float64{"render": prep.RenderMS, "model": prep.ModelMS, "translate": prep.TranslateMS, "snapshot": prep.SnapshotMS} {
			stages[k] = append(stages[k], v)
		}
		pushes = append(pushes, prep.PipelineMS+ms(last.Sub(time.Unix(0, srv.ServedAt))))
		bytes = append(bytes, float64(fl.bytes()-b0)/float64(cfg.Nodes))
		envoyVersions = envoyWant(prep)
		logf("  change %d: pipeline %.0f ms, push to all ACKed %.0f ms, %.0f bytes/node", i, prep.PipelineMS, pushes[len(pushes)-1], bytes[len(bytes)-1])
	}
	time.Sleep(200 * time.Millisecond)
	okAfter, failAfter := tr.counts()
	side.Changes = cfg.Changes
	if role == GitXDS || side.OneTeamChangeMS == nil {
		side.OneTeamChangeMS = f64(median(pipes))
		side.OneTeamChangeStagesMS = map[string]float64{}
		for k, v := range stages {
			side.OneTeamChangeStagesMS[k] = median(v)
		}
	}
	if role == Baseline {
		side.Notes = append(side.Notes, "the baseline serves what gitxds's pipeline builds (same Sets); its render figures are measured separately")
	}
	side.PushToAllAckMS, side.PushToAllAckMaxMS = f64(median(pushes)), f64(maxOf(pushes))
	side.XDSBytesPerNodeOneRouteChange = f64(mean(bytes))
	side.TeamRouteBytes = f64(float64(teamBytes))
	if tr.allOK() {
		side.FailedRPCsDuringChanges = f64(float64(failAfter - failBefore))
		side.RPCsDuringChanges = f64(float64(okAfter + failAfter - okBefore - failBefore))
		if e := tr.lastError(); e != "" && failAfter > failBefore {
			side.Notes = append(side.Notes, "last failed RPC: "+e)
		}
	}
	tr.stop()

	// Rollback: every node rejects the next Set's RouteConfiguration.
	if sim != nil {
		if err := rollback(ctx, cfg, cp, sim, envoyVersions, side, logf); err != nil {
			return err
		}
	} else {
		side.Notes = append(side.Notes, "rollback not measured with delta nodes")
	}
	st, err := cp.do(request{Op: "stats", HeapProfile: heapProfile("end")})
	if err != nil {
		return err
	}
	side.PeakRSSMB = f64(st.PeakRSSMB)
	side.PeakHeapMB = f64(st.PeakHeapMB)
	logf("  peak RSS %.0f MB, peak Go heap %.0f MB", st.PeakRSSMB, st.PeakHeapMB)
	return nil
}

func rollback(ctx context.Context, cfg Config, cp controlPlane, sim *fleetsim.Fleet, good *fleetsim.Want, side *Side, logf func(string, ...any)) error {
	team := cfg.GRPCClients // not a traffic team
	prep, err := cp.do(request{Op: "prepare", Team: team, Route: 1, Gen: 1})
	if err != nil {
		return err
	}
	bad := prep.Versions[string(snapshot.Envoy)][resource.RouteType]
	var mu sync.Mutex
	nacked := map[string]time.Time{}
	sim.Reject(func(node, typeURL, version string) string {
		if typeURL != resource.RouteType || version != bad {
			return ""
		}
		mu.Lock()
		if _, ok := nacked[node]; !ok {
			nacked[node] = time.Now()
		}
		mu.Unlock()
		return "scale: injected rejection"
	})
	defer sim.Reject(nil)
	srv, err := cp.do(request{Op: "serve"})
	if err != nil {
		return err
	}
	served := time.Unix(0, srv.ServedAt)
	// Every node gets the Set and NACKs it (at 1,000 nodes that takes as
	// long as a push); then 2 s more to count re-sends.
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	for {
		mu.Lock()
		k := len(nacked)
		mu.Unlock()
		if k == sim.Len() {
			break
		}
		if wctx.Err() != nil {
			side.Notes = append(side.Notes, fmt.Sprintf("rollback: only %d of %d nodes received and NACKed the Set within %v", k, sim.Len(), cfg.Timeout))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	resends := 0
	back := true
	var last time.Time
	for _, n := range sim.Nodes() {
		k := n.Responses(resource.RouteType, bad)
		if k > 1 {
			resends += k - 1
		}
		mu.Lock()
		at, ok := nacked[n.ID()]
		mu.Unlock()
		if _, runs := runs(n, good); !ok || !runs || k > 1 {
			back = false
			continue
		}
		if at.After(last) {
			last = at
		}
	}
	side.NACKedVersionResends = f64(float64(resends))
	if back {
		side.RollbackMS = f64(prep.PipelineMS + ms(last.Sub(served)))
		logf("  rollback: every node NACKed and runs the last good version, %.0f ms; %d re-sends", *side.RollbackMS, resends)
	} else {
		side.Notes = append(side.Notes, fmt.Sprintf("rollback: 2 s after every node NACKed, not every node runs the last good version of every type with the NACKed version sent once (%d re-sends of the NACKed version)", resends))
		logf("  rollback: not back on last good; %d re-sends", resends)
	}
	return nil
}
