// Package accept proves that real xDS clients accept a snapshot before it
// reaches the fleet: it serves the Set in process with gitxds's own xDS
// server (reconciler/xds) on a loopback port and connects
//
//   - for the gRPC class, real gRPC-Go proxyless xDS clients
//     (google.golang.org/grpc/xds), one per API listener, each dialing
//     "xds:///<listener>" with its own bootstrap and node id: gRPC-Go walks
//     LDS → RDS → CDS → EDS for that target and ACKs or NACKs each response
//     with its own validation, exactly as in production;
//   - for the Envoy class (no Envoy binary is available to a CLI), an ADS
//     client that behaves like an Envoy proxy: node user agent "envoy",
//     CDS and LDS wildcard, then EDS for the EDS clusters and RDS for the
//     route configurations the listeners name, and ACKs a response only when
//     every resource in it — and every typed config packed in an Any inside
//     it (HttpConnectionManager, HTTP filters, TLS contexts) — passes
//     ValidateAll. It is not Envoy: Envoy checks more than the proto
//     constraints.
//
// The verdict per type is what the xDS server recorded (the ACKed version
// equals the Set's version of that type, or a NACK with the client's
// message), not what the client says of itself.
package accept

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xds"
)

// Status of one type.
const (
	ACK          = "ACK"
	NACK         = "NACK"
	NotRequested = "not requested"
	NotReached   = "not reached"
	Timeout      = "timeout"
)

// Clients that run the check, per class.
const (
	GRPCClient  = "gRPC-Go xDS client (google.golang.org/grpc/xds)"
	EnvoyClient = "gitxds ADS client acting as an Envoy proxy (ValidateAll on every resource and typed config; not an Envoy binary)"
)

// DefaultTimeout bounds the whole check.
const DefaultTimeout = 15 * time.Second

// Options of Check.
type Options struct {
	// Timeout of the whole check; DefaultTimeout when zero.
	Timeout time.Duration
	// Logger of the in-process xDS server; discarded when nil.
	Logger *slog.Logger
	// Parallel bounds the gRPC clients connected at once; 8 when zero
	// (more only adds contention: each client is a full gRPC channel).
	Parallel int
	// AllListeners dials every API listener, not one per virtual host.
	AllListeners bool
}

// Result of Check.
type Result struct {
	// Accepted is true when every type requested by every client was ACKed.
	Accepted bool          `json:"accepted"`
	Classes  []ClassResult `json:"classes"`
	// Duration of the check, for humans; not part of the verdict.
	Duration time.Duration `json:"-"`
}

// ClassResult is the verdict of one node class.
type ClassResult struct {
	Class snapshot.Class `json:"class"`
	// Group is the proxy group whose resources were checked; empty for
	// the default group.
	Group  snapshot.Group `json:"proxyGroup,omitempty"`
	Client string         `json:"client"`
	// Nodes is the number of client nodes connected (gRPC: one per API
	// listener).
	Nodes int          `json:"nodes"`
	Types []TypeResult `json:"types"`
}

// Name is the class, and the proxy group when it is a named one
// ("envoy (proxy group internal)"), for reports.
func (c ClassResult) Name() string {
	if c.Group == snapshot.DefaultGroup {
		return string(c.Class)
	}
	return fmt.Sprintf("%s (proxy group %s)", c.Class, c.Group)
}

// TypeResult is the verdict of one resource type.
type TypeResult struct {
	// Type is CDS, EDS, LDS or RDS.
	Type    string `json:"type"`
	TypeURL string `json:"typeUrl"`
	// Resources of this type in the Set, for this class.
	Resources int `json:"resources"`
	// Fetched is how many of them the clients asked for (and so
	// validated): a gRPC client only asks for what its target uses.
	Fetched int `json:"fetched"`
	// Status: ACK, NACK, "not requested" (no client needed the type) or
	// "timeout".
	Status string `json:"status"`
	// Version is the Set's version of this type.
	Version string `json:"version"`
	// ACKs and NACKs count the nodes.
	ACKs  int `json:"acks"`
	NACKs int `json:"nacks"`
	// Error is the first NACK's message (with its node), or what timed out.
	Error string `json:"error,omitempty"`
}

// shortType names a type URL.
var shortType = map[string]string{
	resource.ClusterType:     "CDS",
	resource.EndpointType:    "EDS",
	resource.ListenerType:    "LDS",
	resource.RouteType:       "RDS",
	resource.ScopedRouteType: "SRDS",
	resource.SecretType:      "SDS",
}

// Check serves set and connects the clients of every class that has
// resources, for every proxy group (each group's resources on a server of
// their own, to clients that name no group). It fails only when it cannot
// run (no loopback port); the verdict is in the Result.
func Check(ctx context.Context, set *snapshot.Set, opts Options) (*Result, error) {
	res := &Result{Accepted: true}
	start := time.Now()
	for _, g := range append([]snapshot.Group{snapshot.DefaultGroup}, set.GroupNames()...) {
		r, err := checkGroup(ctx, set.In(g), opts) // a named group's Set has no groups
		if err != nil {
			return nil, err
		}
		for _, c := range r.Classes {
			c.Group = g
			res.Classes = append(res.Classes, c)
		}
		res.Accepted = res.Accepted && r.Accepted
	}
	res.Duration = time.Since(start)
	return res, nil
}

// checkGroup is Check of a Set without groups.
func checkGroup(ctx context.Context, set *snapshot.Set, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("accept: listen: %w", err)
	}
	srv := xds.New(xds.Options{Logger: opts.Logger})
	srv.SetDefault(set)
	serveCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(serveCtx, lis) }()
	defer func() {
		stop()
		<-done
	}()
	addr := lis.Addr().String()

	res := &Result{Accepted: true}
	var envoy, scoped, grpc *ClassResult
	var wg sync.WaitGroup
	if r := set.Classes[snapshot.Envoy]; r != nil && !empty(r) {
		wg.Go(func() {
			cr := checkEnvoy(ctx, srv, addr, set, snapshot.Envoy)
			envoy = &cr
		})
	}
	// The scoped class is checked when it serves something else.
	if r := set.Classes[snapshot.EnvoyScoped]; r != nil && !empty(r) && r != set.Classes[snapshot.Envoy] {
		wg.Go(func() {
			cr := checkEnvoy(ctx, srv, addr, set, snapshot.EnvoyScoped)
			scoped = &cr
		})
	}
	if r := set.Classes[snapshot.GRPC]; r != nil && len(r.Listeners) > 0 {
		wg.Go(func() {
			cr := checkGRPC(ctx, srv, addr, set, opts.Parallel, opts.AllListeners)
			grpc = &cr
		})
	}
	wg.Wait()
	for _, c := range []*ClassResult{envoy, scoped, grpc} {
		if c == nil {
			continue
		}
		res.Classes = append(res.Classes, *c)
		for _, t := range c.Types {
			if t.Status != ACK && t.Status != NotRequested {
				res.Accepted = false
			}
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

func empty(r *snapshot.Resources) bool {
	return len(r.Listeners)+len(r.Routes)+len(r.Clusters)+len(r.Endpoints)+len(r.ScopedRoutes) == 0
}

// expectation is, per node, the types it must answer.
type expectation map[string]map[string]bool // node id -> type URL -> needed

// wait returns once every node has ACKed set's version of every type it
// needs, or NACKed it, or ctx ends, with what the server recorded of each
// node then.
func wait(ctx context.Context, srv *xds.Server, c snapshot.Class, set *snapshot.Set, want expectation) map[string]xds.NodeInfo {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	// blockedSince: when every node was settled, some only because a NACK
	// stopped them before a type they need; give them graceBlocked to
	// prove otherwise.
	var blockedSince, doneSince time.Time
wait:
	for {
		done, blocked := settled(srv, c, set, want)
		switch {
		case done && !blocked && doneSince.IsZero():
			// Settled: stay settled for a moment, since a client that
			// ACKed a type may still subscribe to more of its resources.
			doneSince = time.Now()
		case done && !blocked && time.Since(doneSince) > graceSettled:
			break wait
		case done && !blocked:
		case done && blockedSince.IsZero():
			blockedSince = time.Now()
		case done && time.Since(blockedSince) > graceBlocked:
			break wait
		case !done:
			blockedSince, doneSince = time.Time{}, time.Time{}
		}
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	infos := make(map[string]xds.NodeInfo, len(want))
	for id := range want {
		infos[id], _ = srv.Node(id)
	}
	return infos
}

// tally counts the answers of the nodes per type.
func tally(c snapshot.Class, set *snapshot.Set, want expectation, infos map[string]xds.NodeInfo) []TypeResult {
	out := make([]TypeResult, 0, len(snapshot.TypeURLs))
	res := set.Classes[c]
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	types := []string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType}
	if len(res.ScopedRoutes) > 0 {
		types = slices.Insert(types, 1, resource.ScopedRouteType)
	}
	if len(res.Secrets) > 0 {
		types = append(types, resource.SecretType)
	}
	for _, t := range types {
		tr := TypeResult{Type: shortType[t], TypeURL: t, Resources: len(res.ByType(t)), Version: set.Version(c, t)}
		needed, waiting, blocked := 0, []string{}, []string{}
		for _, id := range ids {
			if !want[id][t] {
				continue
			}
			needed++
			n := infos[id]
			ts := n.Types[t]
			switch {
			case ts.LastNACK != nil && ts.LastNACK.Version == tr.Version:
				// A NACK of this version wins over an ACK of it: a gRPC
				// client ACKs a type, then subscribes to more names of it.
				tr.NACKs++
				if tr.Error == "" {
					tr.Error = fmt.Sprintf("%s: %s", id, ts.LastNACK.Error)
				}
			case ts.ACKed == tr.Version:
				tr.ACKs++
			case ts.LastNACK != nil:
				tr.NACKs++
				if tr.Error == "" {
					tr.Error = fmt.Sprintf("%s: %s", id, ts.LastNACK.Error)
				}
			case !ts.Requested && hasNACK(n):
				blocked = append(blocked, id)
			default:
				waiting = append(waiting, id)
			}
		}
		switch {
		case needed == 0:
			tr.Status = NotRequested
		case tr.NACKs > 0:
			tr.Status = NACK
		case len(waiting) == 0 && len(blocked) > 0:
			tr.Status = NotReached
			tr.Error = fmt.Sprintf("%d node(s) never asked for it after NACKing another type, e.g. %s", len(blocked), blocked[0])
		case len(waiting) > 0:
			tr.Status = Timeout
			tr.Error = fmt.Sprintf("no answer from %d node(s), e.g. %s", len(waiting), waiting[0])
		default:
			tr.Status = ACK
		}
		out = append(out, tr)
	}
	return out
}

// graceBlocked is how long a node that NACKed a type is given to ask for
// the types it has not asked for yet.
const graceBlocked = 250 * time.Millisecond

// graceSettled is how long every node must stay settled before the answer
// is final.
const graceSettled = 20 * time.Millisecond

// settled: every node answered every type it needs (done), or has not asked
// for some of them after a NACK (done and blocked).
func settled(srv *xds.Server, c snapshot.Class, set *snapshot.Set, want expectation) (done, blocked bool) {
	for id, types := range want {
		n, _ := srv.Node(id)
		for t := range types {
			ts := n.Types[t]
			switch {
			case ts.ACKed == set.Version(c, t) || ts.LastNACK != nil:
			case !ts.Requested && hasNACK(n):
				blocked = true
			default:
				return false, false
			}
		}
	}
	return true, blocked
}

func hasNACK(n xds.NodeInfo) bool {
	for _, ts := range n.Types {
		if ts.LastNACK != nil {
			return true
		}
	}
	return false
}
