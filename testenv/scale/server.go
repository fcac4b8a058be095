package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/translate"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/testenv/fleetsim"
	"gitxds.dev/gitxds/testenv/repogen"
)

// Control planes under test.
const (
	// GitXDS is reconciler/xds's Server, fed by pipeline.Pipeline (sharded
	// render with its cache, model, translate).
	GitXDS = "gitxds"
	// Baseline is a plain go-control-plane v0.14.0 SnapshotCache used the
	// usual way: ADS mode, one version string for every type ("v<n>"), one
	// Snapshot per node class shared by every node and set for each node on
	// every change, the sotw ADS server; the resources are the same Sets'
	// (for Envoy nodes one RouteConfiguration with every virtual host).
	Baseline = "baseline"
)

// request and reply are the control protocol between the harness and a
// control plane, one JSON object per line (a control plane may run in a
// child process, so that its peak memory is its own).
type request struct {
	Op    string `json:"op"` // start, prepare, serve, stats, quit
	Team  int    `json:"team,omitempty"`
	Route int    `json:"route,omitempty"`
	Gen   int    `json:"gen,omitempty"`
	// stats: also write a heap profile (after a GC) to this file.
	HeapProfile string `json:"heap_profile,omitempty"`
}

type reply struct {
	Err  string `json:"err,omitempty"`
	Addr string `json:"addr,omitempty"`
	// prepare: the pipeline from the changed files to a Set with its cache
	// snapshots built (commit seen -> snapshot ready), and its parts.
	PipelineMS  float64 `json:"pipeline_ms,omitempty"`
	RenderMS    float64 `json:"render_ms,omitempty"`
	ModelMS     float64 `json:"model_ms,omitempty"`
	TranslateMS float64 `json:"translate_ms,omitempty"`
	SnapshotMS  float64 `json:"snapshot_ms,omitempty"`
	ShardsBuilt int     `json:"shards_built,omitempty"`
	// Versions the nodes will see, per class and type URL.
	Versions map[string]map[string]string `json:"versions,omitempty"`
	// Hashes of the resources of the types whose sotw responses carry
	// only what changed (gitxds), per class, type URL and name: a node
	// that holds them runs the revision (fleetsim.Want).
	Hashes map[string]map[string]map[string]string `json:"hashes,omitempty"`
	// TeamRouteBytes: the serialized size of the changed team's virtual
	// host (Envoy class).
	TeamRouteBytes int `json:"team_route_bytes,omitempty"`
	// serve: when the prepared Set was handed to the xDS side.
	ServedAt int64 `json:"served_at,omitempty"`
	// stats
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	// PeakHeapMB: the largest Go heap in use (live objects and garbage not
	// yet collected: /memory/classes/heap/objects:bytes) seen by sampling
	// every 20 ms.
	PeakHeapMB float64 `json:"peak_heap_mb,omitempty"`
	RSSMB      float64 `json:"rss_mb,omitempty"`
}

// controlPlane is one control plane under test, reached in process or over
// the control protocol.
type controlPlane interface {
	do(request) (reply, error)
	close()
}

// plane runs one control plane: the repository in memory, the pipeline,
// and either the gitxds xDS server or the baseline SnapshotCache.
type plane struct {
	role string
	spec repogen.Spec
	fsys filesys.FileSystem
	// pipe builds every revision, as the reconciler's does (its render
	// cache and the model's decode cache kept across changes).
	pipe *pipeline.Pipeline
	rev  int

	ctx    context.Context
	cancel context.CancelFunc
	lis    net.Listener
	gs     *grpc.Server

	srv *xds.Server // gitxds

	// baseline
	cache    cache.SnapshotCache
	mu       sync.Mutex
	nodes    map[string]snapshot.Class
	current  map[snapshot.Class]*cache.Snapshot
	baseline atomic.Int64 // version counter

	pending     *snapshot.Set
	pendingSnap map[snapshot.Class]*cache.Snapshot
}

// peakHeap is the largest HeapAlloc seen by sampleHeap.
var peakHeap atomic.Uint64

var sampleOnce sync.Once

// sampleHeap samples the Go heap every 20 ms for the life of the process
// (runtime/metrics: no stop-the-world, unlike ReadMemStats).
func sampleHeap() {
	sampleOnce.Do(func() {
		go func() {
			sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			for range time.Tick(20 * time.Millisecond) {
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > peakHeap.Load() {
					peakHeap.Store(v)
				}
			}
		}()
	})
}

func newPlane(role string, spec repogen.Spec) (*plane, error) {
	sampleHeap()
	if role != GitXDS && role != Baseline {
		return nil, fmt.Errorf("scale: unknown control plane %q", role)
	}
	fsys, err := repogen.Generate(spec).FS()
	if err != nil {
		return nil, err
	}
	pipe := pipeline.New(render.Options{Cache: render.NewCache(0)})
	// The baseline serves one RouteConfiguration per port, as most
	// control planes do; gitxds one per hostname (scoped routes, which a
	// real Envoy gets from 1.38: the simulated nodes send no version).
	topts := translate.Options{PortRouteConfigs: role == Baseline, ScopedRoutes: role != Baseline}
	pipe.Translate = func(x *ir.IR, revision string) (*snapshot.Set, error) {
		return translate.TranslateWith(x, revision, topts)
	}
	p := &plane{role: role, spec: spec, fsys: fsys, pipe: pipe, nodes: map[string]snapshot.Class{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

func (p *plane) do(r request) (reply, error) {
	switch r.Op {
	case "start":
		return p.start()
	case "prepare":
		return p.prepare(r)
	case "serve":
		return p.serve()
	case "stats":
		rss, peak := memStats()
		if r.HeapProfile != "" {
			if err := writeHeapProfile(r.HeapProfile); err != nil {
				return reply{}, err
			}
		}
		return reply{PeakRSSMB: peak, RSSMB: rss, PeakHeapMB: float64(peakHeap.Load()) / (1 << 20)}, nil
	case "quit":
		p.close()
		return reply{}, nil
	}
	return reply{}, fmt.Errorf("unknown op %q", r.Op)
}

// start builds the first revision and serves it.
func (p *plane) start() (reply, error) {
	rep, err := p.prepare(request{Team: -1})
	if err != nil {
		return rep, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	p.lis = lis
	// No keepalive (xds.ServerOptions has it): the simulated fleet can keep
	// the harness's CPUs so busy that a ping goes unanswered for its
	// timeout, and a dropped connection would end the run.
	opts := []grpc.ServerOption{grpc.MaxConcurrentStreams(1 << 20)}
	if p.role == GitXDS {
		opts = append(opts, xds.BufferPool())
	}
	p.gs = grpc.NewServer(opts...)
	switch p.role {
	case GitXDS:
		// Quiet: a thousand nodes connecting and NACKing would flood the
		// harness's output.
		p.srv = xds.New(xds.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
		p.srv.Register(p.gs)
	case Baseline:
		p.cache = cache.NewSnapshotCache(true, cache.IDHash{}, nil)
		srv := serverv3.NewServer(p.ctx, p.cache, baselineCallbacks{p})
		discovery.RegisterAggregatedDiscoveryServiceServer(p.gs, srv)
	}
	go func() { _ = p.gs.Serve(lis) }()
	if _, err := p.serve(); err != nil {
		return rep, err
	}
	rep.Addr = lis.Addr().String()
	return rep, nil
}

// prepare applies a one-route change (Team < 0: none) to the repository
// and runs the pipeline up to cache snapshots ready to serve.
func (p *plane) prepare(r request) (reply, error) {
	t0 := time.Now()
	if r.Team >= 0 {
		if err := repogen.ChangeRoute(p.spec, r.Team, r.Route, r.Gen).WriteFS(p.fsys); err != nil {
			return reply{}, err
		}
	}
	p.rev++
	built, err := p.pipe.Run(p.fsys, "overlays/dev", fmt.Sprintf("main@sha1:%040d", p.rev), nil)
	if err != nil {
		return reply{}, err
	}
	set, rendered := built.Set, built.Rendered
	t4 := time.Now()
	rep := reply{RenderMS: ms(built.Took[pipeline.StepRender]), ModelMS: ms(built.Took[pipeline.StepModel]), TranslateMS: ms(built.Took[pipeline.StepTranslate]),
		ShardsBuilt: rendered.Shards - rendered.ShardsCached, Versions: map[string]map[string]string{}}
	snaps := map[snapshot.Class]*cache.Snapshot{}
	for _, c := range snapshot.Classes {
		switch p.role {
		case GitXDS:
			if _, err := set.CacheSnapshot(c); err != nil {
				return reply{}, err
			}
		case Baseline:
			s, err := baselineSnapshot(set.Classes[c], p.baseline.Load()+1)
			if err != nil {
				return reply{}, err
			}
			snaps[c] = s
		}
	}
	rep.SnapshotMS = ms(time.Since(t4))
	rep.PipelineMS = ms(time.Since(t0))
	for _, c := range snapshot.Classes {
		vs := map[string]string{}
		for _, t := range snapshot.TypeURLs {
			if p.role == GitXDS {
				vs[t] = set.Version(c, t)
			} else {
				vs[t] = snaps[c].GetVersion(t)
			}
		}
		rep.Versions[string(c)] = vs
		if p.role == GitXDS {
			w := fleetsim.WantOf(set, c)
			if rep.Hashes == nil {
				rep.Hashes = map[string]map[string]map[string]string{}
			}
			rep.Hashes[string(c)] = w.Resources
		}
	}
	if r.Team >= 0 {
		rep.TeamRouteBytes = teamRouteBytes(set, p.spec.Hostname(r.Team))
	}
	p.pending, p.pendingSnap = set, snaps
	return rep, nil
}

// serve hands the prepared Set to the xDS side.
func (p *plane) serve() (reply, error) {
	if p.pending == nil {
		return reply{}, fmt.Errorf("nothing prepared")
	}
	at := time.Now()
	switch p.role {
	case GitXDS:
		p.srv.SetDefault(p.pending)
	case Baseline:
		p.baseline.Add(1)
		p.mu.Lock()
		p.current = p.pendingSnap
		ids := make(map[string]snapshot.Class, len(p.nodes))
		for id, c := range p.nodes {
			ids[id] = c
		}
		p.mu.Unlock()
		for id, c := range ids {
			if err := p.cache.SetSnapshot(p.ctx, id, p.current[c]); err != nil {
				return reply{}, err
			}
		}
	}
	p.pending = nil
	return reply{ServedAt: at.UnixNano()}, nil
}

func (p *plane) close() {
	p.cancel()
	if p.gs != nil {
		p.gs.Stop()
	}
}

// baselineSnapshot is a Snapshot of res with version "v<n>" for every type.
func baselineSnapshot(res *snapshot.Resources, n int64) (*cache.Snapshot, error) {
	if res == nil {
		res = &snapshot.Resources{}
	}
	m := map[resource.Type][]types.Resource{}
	for _, t := range snapshot.TypeURLs {
		m[t] = res.ByType(t)
	}
	return cache.NewSnapshot("v"+strconv.FormatInt(n, 10), m)
}

// baselineCallbacks give a new node the current snapshot, as every
// SnapshotCache control plane does (the cache answers nothing for a node
// without one).
type baselineCallbacks struct{ p *plane }

func (c baselineCallbacks) OnStreamRequest(_ int64, req *discovery.DiscoveryRequest) error {
	n := req.GetNode()
	if n == nil {
		return nil
	}
	p := c.p
	p.mu.Lock()
	_, known := p.nodes[n.GetId()]
	class := snapshot.ClassOf(n)
	if !known {
		p.nodes[n.GetId()] = class
	}
	snap := p.current[class]
	p.mu.Unlock()
	if !known && snap != nil {
		return p.cache.SetSnapshot(p.ctx, n.GetId(), snap)
	}
	return nil
}

func (baselineCallbacks) OnStreamOpen(context.Context, int64, string) error { return nil }
func (baselineCallbacks) OnStreamClosed(int64, *corev3.Node)                {}
func (baselineCallbacks) OnStreamResponse(context.Context, int64, *discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {
}
func (baselineCallbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error {
	return nil
}
func (baselineCallbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
func (baselineCallbacks) OnDeltaStreamOpen(context.Context, int64, string) error                    { return nil }
func (baselineCallbacks) OnDeltaStreamClosed(int64, *corev3.Node)                                   {}
func (baselineCallbacks) OnStreamDeltaRequest(int64, *discovery.DeltaDiscoveryRequest) error {
	return nil
}
func (baselineCallbacks) OnStreamDeltaResponse(int64, *discovery.DeltaDiscoveryRequest, *discovery.DeltaDiscoveryResponse) {
}

// teamRouteBytes is the size of the virtual host(s) of hostname in the
// Envoy class's route configurations: what a one-route change of that team
// needs to send, at the least.
func teamRouteBytes(set *snapshot.Set, hostname string) int {
	res := set.Classes[snapshot.Envoy]
	if res == nil {
		return 0
	}
	n := 0
	for _, rc := range res.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			if hasDomain(vh, hostname) {
				n += proto.Size(vh)
			}
		}
	}
	return n
}

func hasDomain(vh *routev3.VirtualHost, host string) bool {
	for _, d := range vh.GetDomains() {
		if d == host || strings.HasPrefix(d, host+":") {
			return true
		}
	}
	return false
}

// memStats reads this process's resident set size and its peak (VmRSS,
// VmHWM) in MB.
func memStats() (rss, peak float64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Serve runs one control plane for the harness in this process, reading
// requests from in and writing replies to out (the child side of a
// subprocess control plane; cmd/scale calls it with -serve).
func Serve(role string, spec repogen.Spec, in io.Reader, out io.Writer) error {
	p, err := newPlane(role, spec)
	if err != nil {
		return err
	}
	defer p.close()
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return err
		}
		rep, err := p.do(r)
		if err != nil {
			rep.Err = err.Error()
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
		if r.Op == "quit" {
			return nil
		}
	}
	return sc.Err()
}

// child is a control plane in a child process.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startChild(argv []string, env []string, role string, spec repogen.Spec, upstreams []string) (*child, error) {
	args := append(append([]string{}, argv[1:]...), "-serve", role,
		"-teams", strconv.Itoa(spec.Teams), "-routes", strconv.Itoa(spec.Routes))
	if spec.CatchAll {
		args = append(args, "-catch-all")
	}
	if len(upstreams) > 0 {
		args = append(args, "-upstreams", strings.Join(upstreams, ","))
	}
	cmd := exec.Command(argv[0], args...)
	cmd.Stderr = os.Stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &child{cmd: cmd, in: in, out: sc}, nil
}

func (c *child) do(r request) (reply, error) {
	b, _ := json.Marshal(r)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return reply{}, err
	}
	if !c.out.Scan() {
		return reply{}, fmt.Errorf("control plane exited: %v", c.out.Err())
	}
	var rep reply
	if err := json.Unmarshal(c.out.Bytes(), &rep); err != nil {
		return reply{}, err
	}
	if rep.Err != "" {
		return rep, fmt.Errorf("%s", rep.Err)
	}
	return rep, nil
}

func (c *child) close() {
	_, _ = c.do(request{Op: "quit"})
	_ = c.in.Close()
	_ = c.cmd.Wait()
}

// EndpointsFromAddrs is a repogen.Spec.Endpoint that puts backend b of every
// team on addrs[b mod len(addrs)] ("ip:port").
func EndpointsFromAddrs(addrs []string) func(t, b int) (string, int) {
	return func(_, b int) (string, int) {
		host, port, _ := net.SplitHostPort(addrs[b%len(addrs)])
		p, _ := strconv.Atoi(port)
		return host, p
	}
}
