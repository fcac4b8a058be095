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

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
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
	built, err := pipeline.New(render.Options{Whole: true}).Run(fsys, "overlays/dev", "main@sha1:0000000000000000000000000000000000000000", nil)
	if err != nil {
		return 0, 0, err
	}
	for _, c := range snapshot.Classes {
		if _, err := built.Set.CacheSnapshot(c); err != nil {
			return 0, 0, err
		}
	}
	return ms(built.Took[pipeline.StepRender]), ms(time.Since(t0)), nil
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
