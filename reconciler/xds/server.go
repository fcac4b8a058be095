// Package xds is gitxds's xDS server: ADS (state of the world and delta) and
// the per-type CDS, EDS, LDS, RDS and SRDS services, on go-control-plane's
// sotw and delta servers, with a registry of the connected nodes, ACK/NACK
// tracking and a per-node reset on NACK.
//
// What a response carries is decided here, not by go-control-plane's
// SnapshotCache (which only holds each node's current step): sotw EDS and
// RDS responses and delta responses carry only the resources that changed,
// a response over 96 KB goes in parts, and every node is sent the same Any
// of a resource (sotw.go, watcher.go).
//
// What a node is served: the Set assigned to it (Assign), else the default
// (SetDefault), except a Set it has rejected, for which it keeps the last Set
// it fully ACKed. Every node of a class shares that class's cache.Snapshot.
//
// Ordering: a node moving from one Set to another (or from nothing to its
// first Set) gets the change in steps: CDS, EDS, then LDS, SRDS and RDS
// together (a client asks for the scopes and routes a listener names only
// once it has the listener, which warms until they arrive); when the new
// Set drops clusters, CDS and EDS first carry the union of
// old and new, and the removals follow after RDS ("make before break"). Each
// step is one SetSnapshot, set only once the node has ACKed the previous
// step for every type it subscribed to (or after Options.StepTimeout), so
// a node never holds a route to a cluster it has not been sent, even when
// Sets follow each other faster than it ACKs. A new node's first request is
// answered at once; Envoy, which asks CDS first, then gets EDS, then LDS
// (and the SRDS and RDS it asks for after it); gRPC, which asks LDS, RDS, CDS, EDS as it walks the
// references, gets each as it asks.
//
// NACK: the node is set back at once to the last Set it fully ACKed (all
// types it subscribed to), the rejected Set is recorded as failed for that
// node and is not served to it again. If it never ACKed a Set, it keeps the
// one it has, and the rejected type is held: without either, the
// SnapshotCache would answer every NACK with the same version again, in a
// hot loop.
//
// Where to read, in the order a Set travels: assign.go (SetDefault,
// Assign: what each node is served), plan.go and step.go (the ordered
// steps of a move), watcher.go and sotw.go (answering delta and sotw
// watches), callbacks.go (requests, ACKs and NACKs), nodes.go (the
// registry of connected nodes), events.go (Subscribe: what the rollout
// waits on); besides: drain.go (scopes kept for draining connections),
// endpoints.go (discovered Service endpoints), identity.go (node
// identity from client certificates).
package xds

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/delta/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/rest/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// DefaultEventBuffer is the capacity of a subscriber's channel.
const DefaultEventBuffer = 1024

// Options configure a Server.
type Options struct {
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
	// EventBuffer is the capacity of each Subscribe channel;
	// DefaultEventBuffer when zero.
	EventBuffer int
	// StepTimeout: how long a node may take to ACK one step of a move
	// between Sets before the next step is sent anyway;
	// DefaultStepTimeout when zero.
	StepTimeout time.Duration
	// ScopeDrain is how long a scope (Envoy SRDS) a node's new Set drops,
	// and the route configuration it names, are still served to it, so
	// that connections still draining on an older listener keep their
	// routes (drain.go); DefaultScopeDrain when zero, none when negative.
	ScopeDrain time.Duration
	// ServerOptions are appended to the options of the gRPC server Serve
	// creates (credentials, interceptors, ...).
	ServerOptions []grpc.ServerOption
	// NodeIdentity, when set, binds node ids and labels to client
	// certificates or a platform map (identity.go). It must Validate.
	NodeIdentity *NodeIdentity
	// ServiceClusters, when set, is told the names of the EDS clusters of
	// Kubernetes Services (ir.ServiceClusterName) in every Set a node may
	// be served, each time they change, so that their endpoints are
	// discovered and given to SetEndpoints (endpoints.go). It is called
	// with the Server's lock held and must not call the Server.
	ServiceClusters func(names []string)
}

// Server is the xDS server. Create it with New.
type Server struct {
	log     *slog.Logger
	opts    Options
	ident   *identityMatcher // nil: node ids and labels are taken as claimed
	cache   cache.SnapshotCache
	handler serverv3.Server
	ctx     context.Context // ends every xDS stream when done
	stop    context.CancelFunc

	mu           sync.Mutex
	def          *snapshot.Set
	assigned     map[string]*snapshot.Set
	nodes        map[string]*nodeState
	streams      map[streamKey]*streamState
	deltaWatches map[string]map[int64]*deltaWatch // node id -> watch id
	sotwWatches  map[string]map[int64]*sotwWatch  // node id -> watch id (sotw.go)
	anys         anyCache
	nextWatch    int64
	plans        planCache
	drainSnaps   map[drainKey]*cache.Snapshot // drain.go
	eps          map[string]Discovered        // endpoints.go
	epsSnaps     map[epsKey]*cache.Snapshot
	svcClusters  map[*snapshot.Set][]string
	svcReported  []string
	changed      chan struct{} // closed and replaced on every state change
	subs         map[*subscriber]struct{}

	dropped atomic.Uint64
}

// New returns a Server. It serves nothing until SetDefault or Assign gives
// it a Set: a node that connects before then waits.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StepTimeout <= 0 {
		opts.StepTimeout = DefaultStepTimeout
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = DefaultEventBuffer
	}
	if opts.ScopeDrain == 0 {
		opts.ScopeDrain = DefaultScopeDrain
	}
	ident, err := compileIdentity(opts.NodeIdentity)
	if err != nil {
		panic(err) // Options.NodeIdentity must Validate
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{
		log:          opts.Logger,
		opts:         opts,
		ident:        ident,
		ctx:          ctx,
		stop:         stop,
		assigned:     map[string]*snapshot.Set{},
		nodes:        map[string]*nodeState{},
		streams:      map[streamKey]*streamState{},
		deltaWatches: map[string]map[int64]*deltaWatch{},
		sotwWatches:  map[string]map[int64]*sotwWatch{},
		plans:        planCache{m: map[planKey][]*cache.Snapshot{}},
		drainSnaps:   map[drainKey]*cache.Snapshot{},
		epsSnaps:     map[epsKey]*cache.Snapshot{},
		svcClusters:  map[*snapshot.Set][]string{},
		changed:      make(chan struct{}),
		subs:         map[*subscriber]struct{}{},
	}
	cpLog := cpLogger{l: opts.Logger.With("component", "go-control-plane")}
	// ads=false: in ADS mode the SnapshotCache never answers a request that
	// does not name every resource of the snapshot (a gRPC client names only
	// its own listener). Ordering comes from the SetSnapshot steps instead.
	s.cache = cache.NewSnapshotCache(false, cache.IDHash{}, cpLog)
	w := &watcher{SnapshotCache: s.cache, s: s}
	cb := callbacks{s: s}
	s.handler = serverv3.NewServerAdvanced(
		rest.NewServer(w, cb),
		sotw.NewServer(ctx, w, cb, sotw.WithOrderedADS(), sotw.WithLogger(cpLog)),
		delta.NewServer(ctx, w, cb, delta.WithLogger(cpLog)),
	)
	return s
}

// Register adds the xDS services to r: ADS (sotw and delta) and the per-type
// CDS, EDS, LDS, RDS, SRDS and SDS services for clients that do not use ADS.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(r, s.handler)
	clusterservice.RegisterClusterDiscoveryServiceServer(r, s.handler)
	endpointservice.RegisterEndpointDiscoveryServiceServer(r, s.handler)
	listenerservice.RegisterListenerDiscoveryServiceServer(r, s.handler)
	routeservice.RegisterRouteDiscoveryServiceServer(r, s.handler)
	routeservice.RegisterScopedRoutesDiscoveryServiceServer(r, s.handler)
	secretservice.RegisterSecretDiscoveryServiceServer(r, s.handler)
}

// BufferPool is the gRPC server option of the buffers responses are
// encoded into. gRPC's default pool rounds any buffer over 32 KB up to
// 1 MB, so 1,000 nodes each being sent a 300 KB response held 1 GB; and a
// pooled buffer stays reachable for two garbage collections after use, so
// that the collector counts the pool as live heap and lets the heap grow to
// twice that. Responses over 32 KB (sotw.go keeps most under 96 KB) are
// therefore encoded into buffers of their exact size, collected as soon as
// they are sent; smaller ones use gRPC's pool.
func BufferPool() grpc.ServerOption {
	return experimental.BufferPool(largeUnpooled{small: mem.DefaultBufferPool()})
}

// largeUnpooled pools buffers up to largeBuffer bytes and allocates larger
// ones.
type largeUnpooled struct{ small mem.BufferPool }

const largeBuffer = 32 << 10

func (p largeUnpooled) Get(n int) *[]byte {
	if n <= largeBuffer {
		return p.small.Get(n)
	}
	b := make([]byte, n)
	return &b
}

func (p largeUnpooled) Put(b *[]byte) {
	if cap(*b) <= largeBuffer {
		p.small.Put(b)
	}
}

// ServerOptions are the gRPC server options Serve uses: the buffer pool,
// keepalive pings to
// find dead peers, and an enforcement policy that lets clients ping every
// 10 s (Envoy bootstraps often set 30 s; gRPC's default minimum of 5 minutes
// would answer them with GOAWAY too_many_pings).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		BufferPool(),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// Serve runs a gRPC server with the xDS services on lis until ctx is done,
// then ends every xDS stream of this Server (including those served through
// Register elsewhere) and stops gracefully. It returns nil after a shutdown
// through ctx. A Server serves once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	gs := grpc.NewServer(append(ServerOptions(), s.opts.ServerOptions...)...)
	s.Register(gs)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	s.log.Info("xDS server listening", "address", lis.Addr().String())
	select {
	case err := <-errc:
		s.stop()
		return fmt.Errorf("xds: serve: %w", err)
	case <-ctx.Done():
		s.stop() // xDS streams never end by themselves: end them first
		gs.GracefulStop()
		<-errc
		return nil
	}
}

// cpLogger adapts slog to go-control-plane's logger. Its Info messages are
// per watch and per stream, so they go to Debug.
type cpLogger struct{ l *slog.Logger }

func (c cpLogger) logf(level slog.Level, format string, args []any) {
	if c.l.Enabled(context.Background(), level) {
		c.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (c cpLogger) Debugf(format string, args ...any) { c.logf(slog.LevelDebug, format, args) }
func (c cpLogger) Infof(format string, args ...any)  { c.logf(slog.LevelDebug, format, args) }
func (c cpLogger) Warnf(format string, args ...any)  { c.logf(slog.LevelWarn, format, args) }
func (c cpLogger) Errorf(format string, args ...any) { c.logf(slog.LevelError, format, args) }
