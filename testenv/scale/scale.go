// Package scale is gitxds's scale harness: it generates a repository of
// teams × routes (testenv/repogen), measures the render against `kubectl
// kustomize`, and runs a simulated fleet against gitxds's xDS server and,
// in the same run, against a plain go-control-plane SnapshotCache used the
// usual way (Baseline), with a few real gRPC-Go xDS clients sending traffic
// through route changes. cmd/scale prints the Result as JSON.
//
// Each control plane runs in its own child process when Config.ServerArgv is
// set (cmd/scale re-executes itself), so that its peak RSS is its own; the
// simulated nodes and the gRPC clients run in the calling process.
package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/translate"
	"gitxds.dev/gitxds/testenv/fleetsim"
	"gitxds.dev/gitxds/testenv/repogen"
	"gitxds.dev/gitxds/testenv/upstream"
	"gitxds.dev/gitxds/testenv/xdsclient"
)

// Config of a run.
type Config struct {
	Teams, Routes int
	// Nodes: simulated Envoy nodes (ADS streams) per control plane.
	Nodes int
	// Changes: one-route changes pushed while the gRPC clients send
	// traffic (default 20).
	Changes int
	// GRPCClients: real gRPC-Go xDS clients sending traffic (default 3).
	GRPCClients int
	// Kubectl: time `kubectl kustomize` on the same repository (when
	// kubectl is on PATH).
	Kubectl bool
	// WholeRender: time the baseline's render, kustomize in process on the
	// whole overlay (quadratic: ~1 minute at 200 teams).
	WholeRender bool
	// Baseline: run the plain SnapshotCache too.
	Baseline bool
	// Delta: also run gitxds with delta (incremental) ADS nodes.
	Delta bool
	// ServerArgv runs each control plane as a child process: argv[0] with
	// argv[1:] and the -serve flags of cmd/scale. Nil: in this process
	// (peak RSS is then the whole process's).
	ServerArgv []string
	// Timeout of each wait for the fleet (default 5 minutes).
	Timeout time.Duration
	// ProfileDir: child control planes write their CPU profiles to
	// DIR/<plane>.pprof.
	ProfileDir string
	// MemoryLimit, when set, is the GOMEMLIMIT of the child control planes
	// (both of them), as an operator sets it from the container's limit.
	MemoryLimit string
	// ClientWait: how long the gRPC clients may take to their first
	// successful call (default 30 s).
	ClientWait time.Duration
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// Side is what was measured of one control plane. Metrics that could not be
// measured are absent (nil); Notes say why.
type Side struct {
	RenderMS       *float64 `json:"render_ms,omitempty"`
	KustomizeCLIMS *float64 `json:"kustomize_cli_ms,omitempty"`
	// OneTeamChangeMS: a one-route change of one team, from the changed
	// files to the cache snapshots ready to serve (median over the changes).
	OneTeamChangeMS *float64 `json:"one_team_change_ms,omitempty"`
	// OneTeamChangeStagesMS: its stages (medians): render, model,
	// translate, snapshot (content hashes and cache snapshots).
	OneTeamChangeStagesMS map[string]float64 `json:"one_team_change_stages_ms,omitempty"`
	// FirstPushMS: the fleet connects to the running control plane -> the
	// last node ACKed every type.
	FirstPushMS *float64 `json:"first_push_ms,omitempty"`
	// PushToAllAckMS: one-route change, revision seen -> last node ACKed
	// (median; PushToAllAckMaxMS the worst).
	PushToAllAckMS    *float64 `json:"push_to_all_ack_ms,omitempty"`
	PushToAllAckMaxMS *float64 `json:"push_to_all_ack_max_ms,omitempty"`
	// RollbackMS: a Set every node NACKs (its RouteConfiguration) is
	// served -> the last node NACKed it, provided that then every node
	// runs the last good version of every type and is not sent the NACKed
	// version again within 2 s (else it is absent: no rollback).
	RollbackMS *float64 `json:"rollback_ms,omitempty"`
	// NACKedVersionResends: responses of the NACKed version after the
	// first, over all nodes, until 2 s after the last node's NACK.
	NACKedVersionResends *float64 `json:"nacked_version_resends,omitempty"`
	// PeakRSSMB: the control plane process's peak resident set size.
	PeakRSSMB *float64 `json:"peak_rss_mb,omitempty"`
	// PeakHeapMB: the largest Go heap in use (live and not yet collected
	// objects) in the control plane process, sampled every 20 ms.
	PeakHeapMB *float64 `json:"peak_heap_mb,omitempty"`
	// PeakRSSBeforeNodesMB: the same before any node connected (the first
	// render and Set, the xDS server up).
	PeakRSSBeforeNodesMB *float64 `json:"peak_rss_before_nodes_mb,omitempty"`
	// RSSAfterFirstPushMB: resident set size once every node runs the
	// first Set.
	RSSAfterFirstPushMB *float64 `json:"rss_after_first_push_mb,omitempty"`
	// XDSBytesPerNodeOneRouteChange: serialized xDS responses received per
	// node for a one-route change (mean over the changes).
	XDSBytesPerNodeOneRouteChange *float64 `json:"xds_bytes_per_node_one_route_change,omitempty"`
	// TeamRouteBytes: the serialized virtual host of the changed team.
	TeamRouteBytes *float64 `json:"team_route_bytes,omitempty"`
	// FailedRPCsDuringChanges: failed calls of the gRPC clients while the
	// changes were pushed, of RPCsDuringChanges.
	FailedRPCsDuringChanges *float64 `json:"failed_rpcs_during_changes,omitempty"`
	RPCsDuringChanges       *float64 `json:"rpcs_during_changes,omitempty"`
	Changes                 int      `json:"changes"`
	Nodes                   int      `json:"nodes"`
	Mode                    string   `json:"mode"`
	Notes                   []string `json:"notes,omitempty"`
}

// Result of a run.
type Result struct {
	Teams   int    `json:"teams"`
	Routes  int    `json:"routes"`
	Objects int    `json:"objects"`
	Nodes   int    `json:"nodes"`
	Machine string `json:"machine"`
	GitXDS  *Side  `json:"gitxds"`
	// GitXDSDelta: gitxds with delta ADS nodes.
	GitXDSDelta *Side `json:"gitxds_delta,omitempty"`
	Baseline    *Side `json:"baseline,omitempty"`
	// Ratio per metric: baseline / gitxds (lower is better for every metric,
	// so > 1 means gitxds does better), where both were measured and
	// gitxds's figure is not 0.
	Ratio map[string]float64 `json:"ratio,omitempty"`
	Notes []string           `json:"notes,omitempty"`
}

func (c *Config) defaults() {
	if c.Changes <= 0 {
		c.Changes = 20
	}
	if c.GRPCClients <= 0 {
		c.GRPCClients = 3
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.ClientWait <= 0 {
		c.ClientWait = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

func f64(x float64) *float64 { return &x }

// Run measures everything the Config asks for.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if cfg.Teams < cfg.GRPCClients+1 {
		return nil, fmt.Errorf("scale: need at least %d teams", cfg.GRPCClients+1)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	// Two upstreams: backend b of every team is on upstream b mod 2.
	var ups []*upstream.Server
	var addrs []string
	for i := 0; i < 2; i++ {
		u, err := upstream.Start(fmt.Sprintf("up-%d", i))
		if err != nil {
			return nil, err
		}
		defer u.Close()
		ups = append(ups, u)
		addrs = append(addrs, u.Addr())
	}
	spec := repogen.Spec{Teams: cfg.Teams, Routes: cfg.Routes, CatchAll: true, Endpoint: EndpointsFromAddrs(addrs)}
	res := &Result{Teams: cfg.Teams, Routes: cfg.Routes, Objects: spec.Objects(), Nodes: cfg.Nodes, Machine: machine(),
		GitXDS: &Side{Mode: "sotw ADS, reconciler/xds", Nodes: cfg.Nodes}}
	if cfg.Baseline {
		res.Baseline = &Side{Mode: "sotw ADS, go-control-plane SnapshotCache (ads mode, one version, shared snapshot)", Nodes: cfg.Nodes}
	}

	// Render: gitxds (sharded, cold), kubectl kustomize, kustomize whole.
	files := repogen.Generate(spec)
	fsys, err := files.FS()
	if err != nil {
		return nil, err
	}
	logf("render: %d teams x %d routes, %d objects", cfg.Teams, cfg.Routes, spec.Objects())
	t0 := time.Now()
	r, err := render.Render(fsys, "overlays/dev", render.Options{Cache: render.NewCache(0)})
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	res.GitXDS.RenderMS = f64(ms(time.Since(t0)))
	if r.Shards == 0 {
		res.GitXDS.Notes = append(res.GitXDS.Notes, "render was not sharded: "+r.WholeReason)
	}
	logf("render: %.0f ms (%d shards)", *res.GitXDS.RenderMS, r.Shards)
	if cfg.Kubectl {
		if d, err := kubectl(files); err != nil {
			res.Notes = append(res.Notes, "kubectl kustomize: "+err.Error())
		} else {
			res.GitXDS.KustomizeCLIMS = f64(d)
			if res.Baseline != nil {
				res.Baseline.KustomizeCLIMS = f64(d)
			}
			logf("kubectl kustomize: %.0f ms", d)
		}
	}
	if cfg.WholeRender && res.Baseline != nil {
		if err := repogen.ChangeRoute(spec, 1, 1, 1).WriteFS(fsys); err != nil {
			return nil, err
		}
		renderMS, totalMS, err := wholePipeline(fsys)
		if err != nil {
			return nil, err
		}
		res.Baseline.RenderMS, res.Baseline.OneTeamChangeMS = f64(renderMS), f64(totalMS)
		res.Baseline.Notes = append(res.Baseline.Notes, "render_ms and one_team_change_ms: kustomize in process on the whole overlay (no cache), then model and translate, once")
		logf("baseline render (whole): %.0f ms, with model and translate %.0f ms", renderMS, totalMS)
	}

	sides := []struct {
		role  string
		delta bool
		side  **Side
	}{}
	if cfg.Baseline {
		sides = append(sides, struct {
			role  string
			delta bool
			side  **Side
		}{Baseline, false, &res.Baseline})
	}
	sides = append(sides, struct {
		role  string
		delta bool
		side  **Side
	}{GitXDS, false, &res.GitXDS})
	if cfg.Delta {
		res.GitXDSDelta = &Side{Mode: "delta ADS, reconciler/xds", Nodes: cfg.Nodes}
		sides = append(sides, struct {
			role  string
			delta bool
			side  **Side
		}{GitXDS, true, &res.GitXDSDelta})
	}
	for _, s := range sides {
		logf("fleet: %s (delta %v), %d nodes", s.role, s.delta, cfg.Nodes)
		if err := runFleet(ctx, cfg, spec, addrs, s.role, s.delta, *s.side, logf); err != nil {
			return res, fmt.Errorf("%s: %w", s.role, err)
		}
	}
	if res.Baseline != nil {
		res.Ratio = ratios(res.Baseline, res.GitXDS)
	}
	return res, nil
}

// wholePipeline renders the whole overlay in one kustomize run and builds
// the Set, as a pipeline without sharding would.
func wholePipeline(fsys filesys.FileSystem) (renderMS, totalMS float64, err error) {
	t0 := time.Now()
	r, err := render.Render(fsys, "overlays/dev", render.Options{Whole: true})
	if err != nil {
		return 0, 0, err
	}
	renderMS = ms(time.Since(t0))
	out := model.Build(model.Input{Objects: r.Objects})
	if err := out.IR.Validate(); err != nil {
		return 0, 0, err
	}
	set, err := translate.Translate(out.IR, "main@sha1:0000000000000000000000000000000000000000")
	if err != nil {
		return 0, 0, err
	}
	for _, c := range snapshot.Classes {
		if _, err := set.CacheSnapshot(c); err != nil {
			return 0, 0, err
		}
	}
	return renderMS, ms(time.Since(t0)), nil
}

func kubectl(files repogen.Files) (float64, error) {
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		return 0, errors.New("not on PATH")
	}
	dir, err := os.MkdirTemp("", "gitxds-scale-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := files.WriteDir(dir); err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, "kustomize", filepath.Join(dir, "overlays", "dev"))
	cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return ms(time.Since(t0)), nil
}

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

type deltaWrap struct{ f *deltaFleet }

func (d deltaWrap) waitRuns(ctx context.Context, want *fleetsim.Want) (time.Time, error) {
	return d.f.waitRuns(ctx, want.Versions)
}
func (d deltaWrap) bytes() int64 { return d.f.bytes.Load() }
func (d deltaWrap) close()       { d.f.close() }

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
	if delta {
		d, err := startDelta(wctx, cfg.Nodes, start.Addr)
		if err != nil {
			cancel()
			return err
		}
		fl = deltaWrap{d}
	} else {
		n := &atomic.Int64{}
		opts := fleetsim.Options{Prefix: role, DialOptions: []grpc.DialOption{counting(n)}}
		if role == Baseline {
			// Its Envoy nodes use RDS only: no scoped routes.
			opts.Types = fleetsim.ClassicTypes
		}
		f, err := fleetsim.Start(wctx, cfg.Nodes, start.Addr, opts)
		if err != nil {
			cancel()
			return err
		}
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

// traffic: gRPC-Go xDS clients calling their team's hostname in a loop.
type traffic struct {
	clients []*xdsclient.Client
	targets []string
	ok      []atomic.Int64
	fail    atomic.Int64
	lastErr atomic.Value
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

func startTraffic(ctx context.Context, n int, addr string, spec repogen.Spec, role string) (*traffic, error) {
	ctx, cancel := context.WithCancel(ctx)
	tr := &traffic{ok: make([]atomic.Int64, n), cancel: cancel}
	for i := 0; i < n; i++ {
		c, err := xdsclient.New(xdsclient.Options{ServerAddr: addr, NodeID: fmt.Sprintf("%s-grpc-%d", role, i), Insecure: true, CallTimeout: 2 * time.Second})
		if err != nil {
			tr.stop()
			return nil, err
		}
		tr.clients = append(tr.clients, c)
		tr.targets = append(tr.targets, fmt.Sprintf("%s:%d", spec.Hostname(i), 8080))
	}
	for i := range tr.clients {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for ctx.Err() == nil {
				_, err := tr.clients[i].Invoke(ctx, tr.targets[i], nil)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					if tr.ok[i].Load() > 0 {
						tr.fail.Add(1)
					}
					tr.lastErr.Store(err.Error())
					time.Sleep(20 * time.Millisecond)
				default:
					tr.ok[i].Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return tr, nil
}

// waitAllOK waits until every client has had a successful call.
func (t *traffic) waitAllOK(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !t.allOK() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			e, _ := t.lastErr.Load().(string)
			return fmt.Errorf("after %v: %s", d, e)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (t *traffic) allOK() bool {
	for i := range t.ok {
		if t.ok[i].Load() == 0 {
			return false
		}
	}
	return true
}

// counts: successful and failed calls so far (failures are counted only
// once a client has had its first success).
func (t *traffic) counts() (ok, failed int64) {
	for i := range t.ok {
		ok += t.ok[i].Load()
	}
	return ok, t.fail.Load()
}

func (t *traffic) lastError() string {
	e, _ := t.lastErr.Load().(string)
	return e
}

func (t *traffic) stop() {
	t.once.Do(func() {
		t.cancel()
		t.wg.Wait()
		for _, c := range t.clients {
			_ = c.Close()
		}
	})
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

func maxOf(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		if x > m {
			m = x
		}
	}
	return m
}

func ratios(base, g *Side) map[string]float64 {
	out := map[string]float64{}
	pairs := map[string][2]*float64{
		"render_ms":                           {base.RenderMS, g.RenderMS},
		"one_team_change_ms":                  {base.OneTeamChangeMS, g.OneTeamChangeMS},
		"first_push_ms":                       {base.FirstPushMS, g.FirstPushMS},
		"push_to_all_ack_ms":                  {base.PushToAllAckMS, g.PushToAllAckMS},
		"rollback_ms":                         {base.RollbackMS, g.RollbackMS},
		"peak_rss_mb":                         {base.PeakRSSMB, g.PeakRSSMB},
		"xds_bytes_per_node_one_route_change": {base.XDSBytesPerNodeOneRouteChange, g.XDSBytesPerNodeOneRouteChange},
		"failed_rpcs_during_changes":          {base.FailedRPCsDuringChanges, g.FailedRPCsDuringChanges},
		"nacked_version_resends":              {base.NACKedVersionResends, g.NACKedVersionResends},
	}
	for k, p := range pairs {
		if p[0] != nil && p[1] != nil && *p[1] != 0 {
			out[k] = *p[0] / *p[1]
		}
	}
	if g.RenderMS != nil && g.KustomizeCLIMS != nil && *g.RenderMS != 0 {
		out["kustomize_cli_ms/render_ms"] = *g.KustomizeCLIMS / *g.RenderMS
	}
	return out
}

// machine describes this machine: CPUs, memory, CPU model.
func machine() string {
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				f := strings.Fields(l)
				if len(f) >= 2 {
					var kb float64
					fmt.Sscan(f[1], &kb)
					mem = fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s", runtime.NumCPU(), model, mem, runtime.Version())
}
