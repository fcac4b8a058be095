// Package daemon wires the stages into the running control plane: source,
// reconciler, rollout, xDS server and admin API. `gitxds serve`, the demo and
// the end-to-end tests all start it through Start.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	"k8s.io/client-go/kubernetes"

	"gitxds.dev/gitxds/reconciler"
	"gitxds.dev/gitxds/reconciler/admin"
	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/discovery"
	"gitxds.dev/gitxds/reconciler/kubeevents"
	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/reconciler/metrics"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/webhook"
	"gitxds.dev/gitxds/reconciler/xds"
)

// Config of a daemon; the flags of `gitxds serve`.
type Config struct {
	Repo, Ref, Path string
	Interval        time.Duration
	XDSAddress      string
	AdminAddress    string
	StateDir        string
	// AdminToken, when set, is required by mutating admin endpoints.
	AdminToken string
	Limits     source.Limits
	// RenderLimits bound every file a render reads (render.Limits).
	RenderLimits render.Limits
	// SystemCAFile is the proxy hosts' CA bundle (model.Input.SystemCAFile).
	SystemCAFile string
	// Build bounds each build (deadline, memory budget).
	Build reconciler.BuildLimits
	Log   *slog.Logger
	// ScopeDrain: how long Envoy nodes are still served a scope (SRDS)
	// their new Set drops (xds.Options.ScopeDrain): xds.DefaultScopeDrain
	// when zero, none when negative.
	ScopeDrain time.Duration

	// Notify are the providers told what becomes of each revision
	// (`serve --notify-config`).
	Notify []notify.Provider
	// WebhookSecret, when set, mounts POST /hooks/github, /hooks/gitlab and
	// /hooks/generic on the admin API (package webhook).
	WebhookSecret []byte
	// Auth authenticates to the repository (credentials.GitAuth).
	Auth transport.AuthMethod
	// VerifyCommit, when set, refuses a revision whose commit fails it
	// (credentials.PGPVerifier); status says VerificationFailed.
	VerifyCommit func(*object.Commit) error
	// XDSTLS, when set, serves xDS over TLS; mutual TLS when it requires
	// client certificates (credentials.ServerTLS).
	XDSTLS *tls.Config
	// NodeIdentity binds node ids and labels to client certificates or a
	// platform map (xds.NodeIdentity). With mutual TLS and no pattern, the
	// pattern is DefaultNodeIDPattern: a node id must be a SAN of its
	// certificate.
	NodeIdentity *xds.NodeIdentity
	// Leader, when set, runs this replica as one of several (high
	// availability, docs/architecture.md section 4.1), under leader election (package
	// leader): every replica polls Git, builds each revision itself, and
	// serves its own nodes as the fleet-wide rollout on Board says; the
	// replica holding the Lease also starts and decides rollouts, and the
	// others forward webhooks and controls to it. StateDir is this
	// replica's own (its last good, for a restart with Git unreachable).
	// An Identity without "@" gets "@" and the admin listener's address
	// appended. Losing the Lease, or a newer leader fencing this one, ends
	// the daemon with an error.
	Leader *leader.Options
	// Board is where the replicas meet (required with Leader): the
	// fleet-wide rollout the leader writes and each replica's report
	// (`serve --leader-elect` sets a kubestate.Board in the Lease's
	// namespace; rollout.NewMemoryBoard().Client() for replicas in one
	// process).
	Board rollout.Board
	// ReplicaHeartbeat, StaleAfter and GoneAfter: how often a replica
	// writes its report at least, and when one is stale or forgotten
	// (rollout's defaults when zero; tests shorten them).
	ReplicaHeartbeat, StaleAfter, GoneAfter time.Duration
	// KubeEvents, when set, records what becomes of each revision as
	// Kubernetes Events (package kubeevents). With Leader set and
	// KubeEvents nil, the Events regard the Lease, through the election's
	// client; NoKubeEvents turns that off.
	KubeEvents   *kubeevents.Options
	NoKubeEvents bool

	// Kube, when set, discovers the endpoints of Kubernetes Service
	// backendRefs from their EndpointSlices (package discovery) and pushes
	// them to the fleet as they change, without a revision. Without it,
	// Services resolve by DNS (model.Services).
	Kube kubernetes.Interface
	// ClusterDomain of Service DNS names (model.DefaultClusterDomain when
	// empty).
	ClusterDomain string

	// Translate replaces the translator (fault-injection tests only).
	Translate pipeline.TranslateFunc
	// NewQuerier replaces the Prometheus client of metric gates (tests only).
	NewQuerier func(address string) (rollout.Querier, error)
}

// Daemon is a running control plane.
type Daemon struct {
	Reconciler *reconciler.Reconciler
	XDS        *xds.Server
	Metrics    *metrics.Metrics
	// Elector is the leader election, when Config.Leader is set.
	Elector *leader.Elector
	// XDSAddr and AdminAddr are where the servers listen (useful with :0).
	XDSAddr, AdminAddr string

	cancel   context.CancelFunc
	notifier *notify.Notifier
	// adminAddrs are the admin API's addresses, for Origin checks.
	adminAddrs []string
	log        *slog.Logger
	http       *http.Server
	errc       chan error
	done       chan struct{} // the reconcile loop returned
	xdone      chan struct{} // the xDS server stopped
}

// Start restores the persisted state, then listens and serves. The last good
// snapshot is set before the xDS server accepts its first stream.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Ref == "" {
		cfg.Ref = "main"
	}
	if cfg.Leader != nil && cfg.Board == nil {
		return nil, errors.New("leader election needs a Board where the replicas meet (the fleet-wide rollout's objects); replicas share no state directory")
	}
	src, err := source.New(source.Options{URL: cfg.Repo, Ref: cfg.Ref, Auth: cfg.Auth, VerifyCommit: cfg.VerifyCommit,
		MaxFileSize: cfg.Limits.MaxFileSize, MaxRepoSize: cfg.Limits.MaxRepoSize})
	if err != nil {
		return nil, err
	}
	store, err := reconciler.OpenStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	ni, err := nodeIdentity(cfg)
	if err != nil {
		return nil, err
	}
	xopts := xds.Options{Logger: cfg.Log, ScopeDrain: cfg.ScopeDrain, NodeIdentity: ni}
	if cfg.XDSTLS != nil {
		xopts.ServerOptions = append(xopts.ServerOptions, grpc.Creds(grpccreds.NewTLS(cfg.XDSTLS)))
	}
	var disc *discovery.Discovery
	if cfg.Kube != nil {
		// The first Set comes with Restore, below, once disc exists.
		xopts.ServiceClusters = func(names []string) { disc.Want(names) }
	}
	xsrv := xds.New(xopts)
	if cfg.Kube != nil {
		disc = discovery.New(discovery.Options{Client: cfg.Kube, Log: cfg.Log, Publish: xsrv.SetEndpoints})
	}
	fleet := admin.NewXDSFleet(xsrv, m)
	pipe := pipeline.New(render.Options{Limits: cfg.RenderLimits})
	pipe.SystemCAFile = cfg.SystemCAFile
	pipe.Services = model.Services{Kubernetes: cfg.Kube != nil, ClusterDomain: cfg.ClusterDomain}
	if disc != nil {
		pipe.AddressPolicy = disc.SetAllowed
	}
	if cfg.Translate != nil {
		pipe.Translate = cfg.Translate
	}
	providers := cfg.Notify
	if ko := kubeEventsOptions(cfg); ko != nil {
		k, err := kubeevents.New(*ko)
		if err != nil {
			return nil, err
		}
		providers = append(slices.Clip(providers), k)
	}
	var notifier *notify.Notifier
	if len(providers) > 0 {
		notifier = notify.New(providers, notify.Options{Log: cfg.Log,
			Record: func(p string, r notify.Result) { m.Notifications.WithLabelValues(p, string(r)).Inc() }})
	}
	ropts := reconciler.Options{
		Source: src, URL: src.String(), Ref: cfg.Ref, Overlay: cfg.Path, Interval: cfg.Interval,
		Pipeline: pipe, Build: cfg.Build, Fleet: fleet, Store: store, Metrics: m, Log: cfg.Log, NewQuerier: cfg.NewQuerier,
		Notifier: notifier, Describe: DescribeRoutes,
	}
	if cfg.Leader != nil {
		ropts.Board, ropts.Replica = cfg.Board, replicaName(cfg.Leader.Identity)
		ropts.ReplicaHeartbeat, ropts.StaleAfter, ropts.GoneAfter = cfg.ReplicaHeartbeat, cfg.StaleAfter, cfg.GoneAfter
	}
	rec := reconciler.New(ropts)
	if err := rec.Restore(); err != nil {
		return nil, fmt.Errorf("restore state from %s: %w", cfg.StateDir, err)
	}
	var extra map[string]http.Handler
	if len(cfg.WebhookSecret) > 0 {
		hooks, err := webhook.New(webhook.Options{Secret: cfg.WebhookSecret, Ref: cfg.Ref,
			Trigger: rec.Trigger, Metrics: m, Log: cfg.Log})
		if err != nil {
			return nil, err
		}
		extra = hooks.Routes()
	}
	xlis, err := net.Listen("tcp", cfg.XDSAddress)
	if err != nil {
		return nil, err
	}
	alis, err := net.Listen("tcp", cfg.AdminAddress)
	if err != nil {
		xlis.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	adminAddrs := adminAddresses(alis.Addr().String(), cfg)
	d := &Daemon{
		Reconciler: rec, XDS: xsrv, Metrics: m,
		XDSAddr: xlis.Addr().String(), AdminAddr: alis.Addr().String(), adminAddrs: adminAddrs,
		cancel: cancel, notifier: notifier, log: cfg.Log, errc: make(chan error, 3), done: make(chan struct{}), xdone: make(chan struct{}),
		http: &http.Server{
			Handler: admin.New(admin.Options{Backend: rec, Fleet: fleet, Registry: m.Registry, Token: cfg.AdminToken, Log: cfg.Log, Extra: extra,
				Addresses: adminAddrs}),
			ReadHeaderTimeout: 10 * time.Second,
		},
	}
	if cfg.Leader != nil {
		lo := *cfg.Leader
		if lo.Log == nil {
			lo.Log = cfg.Log
		}
		if !strings.Contains(lo.Identity, "@") {
			lo.Identity = leader.Identity(lo.Identity, d.AdminAddr)
		}
		if d.Elector, err = leader.New(lo); err != nil {
			cancel()
			xlis.Close()
			alis.Close()
			return nil, err
		}
		d.http.Handler = d.haHandler(d.http.Handler)
		m.Registry.MustRegister(d.leaderGauge())
	}
	if disc != nil {
		go disc.Run(ctx)
	}
	go func() {
		defer close(d.xdone)
		if err := xsrv.Serve(ctx, xlis); err != nil && ctx.Err() == nil {
			d.errc <- fmt.Errorf("xds server: %w", err)
		}
	}()
	go func() {
		if err := d.http.Serve(alis); !errors.Is(err, http.ErrServerClosed) {
			d.errc <- fmt.Errorf("admin server: %w", err)
		}
	}()
	if d.Elector != nil {
		go d.runHA(ctx, rec)
	} else {
		go func() { rec.Run(ctx); close(d.done) }()
	}
	for _, w := range startWarnings(cfg, alis.Addr()) {
		cfg.Log.Warn(w)
	}
	cfg.Log.Info("gitxds serving", "repo", src.String(), "ref", cfg.Ref, "path", cfg.Path,
		"xds", d.XDSAddr, "admin", d.AdminAddr, "stateDir", cfg.StateDir,
		"xdsTLS", tlsMode(cfg.XDSTLS), "webhooks", len(extra) > 0, "verifyCommits", cfg.VerifyCommit != nil, "leaderElection", d.Elector != nil,
		"kubernetesEvents", kubeEventsOptions(cfg) != nil, "serviceDiscovery", serviceDiscovery(cfg))
	return d, nil
}

// Wait blocks until ctx is done or a server fails, then shuts down.
func (d *Daemon) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-d.errc:
	}
	d.Close()
	return err
}

// Close stops the loop, drains the xDS streams and the admin API, and
// returns once the xDS server has stopped and the reconcile loop has
// returned: the state is written synchronously at every change, so nothing
// is left to flush then.
func (d *Daemon) Close() {
	d.cancel()
	defer d.notifier.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = d.http.Shutdown(sctx)
	<-d.done
	select {
	case <-d.xdone:
	case <-sctx.Done():
	}
}

// serviceDiscovery says how Service backendRefs resolve, for the log.
func serviceDiscovery(cfg Config) string {
	if cfg.Kube != nil {
		return "EndpointSlices"
	}
	return "DNS"
}

// kubeEventsOptions is where Kubernetes Events go, if anywhere.
func kubeEventsOptions(cfg Config) *kubeevents.Options {
	switch {
	case cfg.KubeEvents != nil:
		return cfg.KubeEvents
	case cfg.Leader == nil || cfg.NoKubeEvents:
		return nil
	}
	return &kubeevents.Options{Client: cfg.Leader.Client, Instance: replicaName(cfg.Leader.Identity),
		Regarding: kubeevents.LeaseReference(cfg.Leader.Namespace, cfg.Leader.Name)}
}

// replicaName is a replica's name: its identity without the admin
// address.
func replicaName(identity string) string {
	name, _, _ := strings.Cut(identity, "@")
	return name
}

func tlsMode(c *tls.Config) string {
	switch {
	case c == nil:
		return "off"
	case c.ClientAuth == tls.RequireAndVerifyClientCert:
		return "mutual"
	}
	return "server"
}

// DefaultNodeIDPattern: with mutual TLS, a node id must be a URI or DNS
// SAN of the node's certificate.
const DefaultNodeIDPattern = "{id}"

func mutualTLS(c *tls.Config) bool { return c != nil && c.ClientAuth == tls.RequireAndVerifyClientCert }

// nodeIdentity is the xDS server's NodeIdentity for cfg.
func nodeIdentity(cfg Config) (*xds.NodeIdentity, error) {
	ni := cfg.NodeIdentity
	if ni == nil && !mutualTLS(cfg.XDSTLS) {
		return nil, nil
	}
	if ni == nil {
		ni = &xds.NodeIdentity{}
	}
	out := *ni
	switch {
	case out.Pattern == "" && mutualTLS(cfg.XDSTLS):
		out.Pattern = DefaultNodeIDPattern
	case out.Pattern != "" && !mutualTLS(cfg.XDSTLS):
		return nil, fmt.Errorf("a node identity pattern (%q) needs mutual TLS (--xds-client-ca-file)", out.Pattern)
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return &out, nil
}

// adminAddresses are the addresses the admin API is reached at: the
// listener's, --admin-address as given, and the advertised one.
func adminAddresses(listener string, cfg Config) []string {
	out := []string{listener, cfg.AdminAddress}
	if cfg.Leader != nil {
		if a := leader.AdminAddress(cfg.Leader.Identity); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// startWarnings are the warnings serve logs once at start about what an
// operator left open.
func startWarnings(cfg Config, adminAddr net.Addr) []string {
	var out []string
	if !mutualTLS(cfg.XDSTLS) {
		out = append(out, "xDS without mutual TLS (--xds-client-ca-file): any client that reaches --xds-address can claim any node id and labels, join rollout stages and delay or veto rollouts (docs/operations.md, threat model)")
	}
	if cfg.AdminToken == "" {
		if ta, ok := adminAddr.(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			out = append(out, fmt.Sprintf("the admin API listens on %s, not a loopback address, without --admin-token-file: anyone who reaches it can trigger reconciles and pause, resume or abort rollouts", adminAddr))
		}
	}
	return out
}

// DescribeRoutes lists the route-level changes of b against lastGood, one
// line each, for the history (reconciler.Options.Describe).
func DescribeRoutes(lastGood *snapshot.Set, b *pipeline.Result) []string {
	rep := diff.Snapshots(lastGood, b.Set)
	rep.Owners(b.Model.IR)
	lines := make([]string, 0, len(rep.Routes))
	for _, c := range rep.Routes {
		lines = append(lines, c.Line())
	}
	return lines
}
