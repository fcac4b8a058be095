// Package fleetsim is the one ADS client of gitxds's tests and harnesses
// that play a node, and a fleet of them. A Node is one ADS stream, state of
// the world or delta (NodeOptions.Delta), over real gRPC (loopback in
// tests) that subscribes to every type (wildcard, as Envoy does for CDS,
// LDS and SRDS; Envoy names the EDS and RDS resources it wants, the bytes
// of a change are the same, and NodeOptions.Subscribe names them),
// decodes and validates every resource it receives (ValidateAll, or
// xdsres.Validate), ACKs what is valid and NACKs what is not, or what a
// test tells it to reject (Reject). It has a node id, labels (the string
// fields of its metadata) and a user agent, which gives its class.
//
// A single node for a test: ConnectT. A fleet: Start.
//
// Every node counts the responses it got per type and version, and
// remembers when it accepted each version, so that a test or benchmark can
// tell, without polling, when the last node ran a given snapshot and
// whether a NACKed version was sent again.
//
//	f, err := fleetsim.Start(ctx, 1000, xdsAddr, fleetsim.Options{})
//	defer f.Close()
//	f.Node(7).RejectVersion(resource.RouteType, bad, "injected")
//	at, err := f.WaitRuns(ctx, set) // every node ACKed set; at = the last ACK
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// Options of a simulated fleet.
type Options struct {
	// Prefix of the node ids "<prefix>-<i>" (default "sim").
	Prefix string
	// UserAgent is Node.user_agent_name (default "envoy": the Envoy class).
	UserAgent string
	// Labels returns node i's metadata (string fields: its labels); nil
	// for none.
	Labels func(i int) map[string]string
	// Types to subscribe to, in this order (default DefaultTypes: CDS,
	// EDS, LDS, SRDS, RDS).
	Types []string
	// Conns is how many gRPC connections the streams share, round robin
	// (default: one per node, as real nodes have).
	Conns int
	// NoValidate skips ValidateAll of the received resources.
	NoValidate bool
	// Delta opens incremental (delta) ADS streams instead of state of the
	// world ones.
	Delta bool
	// ConnectParallelism bounds how many streams open at once (default 64).
	ConnectParallelism int
	// DialOptions are added to the connections' options.
	DialOptions []grpc.DialOption
}

// DefaultTypes are snapshot.TypeURLs but SDS, in that order: Envoy asks for
// secrets by name, for the TLS listeners it has, never for all of them.
var DefaultTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.ScopedRouteType, resource.RouteType}

// ClassicTypes are the types of a node whose listeners use RDS only.
var ClassicTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// Fleet is a running simulated fleet.
type Fleet struct {
	opts  Options
	nodes []*Node
	byID  map[string]*Node
	conns []*grpc.ClientConn
}

// Start opens n ADS streams to the xDS server at addr, one per node, and
// sends each node's first requests. It does not wait for any response: use
// WaitRuns.
func Start(ctx context.Context, n int, addr string, opts Options) (*Fleet, error) {
	if opts.Prefix == "" {
		opts.Prefix = "sim"
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "envoy"
	}
	if len(opts.Types) == 0 {
		opts.Types = DefaultTypes
	}
	if opts.Conns <= 0 || opts.Conns > n {
		opts.Conns = n
	}
	if opts.ConnectParallelism <= 0 {
		opts.ConnectParallelism = 64
	}
	f := &Fleet{opts: opts, byID: map[string]*Node{}}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256 << 20)),
	}, opts.DialOptions...)
	for i := 0; i < opts.Conns; i++ {
		cc, err := grpc.NewClient(addr, dial...)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleetsim: dial %s: %w", addr, err)
		}
		f.conns = append(f.conns, cc)
	}
	for i := 0; i < n; i++ {
		no := NodeOptions{ID: fmt.Sprintf("%s-%d", opts.Prefix, i), UserAgent: opts.UserAgent, Types: opts.Types, Delta: opts.Delta}
		if opts.Labels != nil {
			no.Labels = opts.Labels(i)
		}
		if opts.NoValidate {
			no.Validate = ValidateNone
		}
		nd, err := newNode(no)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.nodes = append(f.nodes, nd)
		f.byID[nd.id] = nd
	}
	sem := make(chan struct{}, opts.ConnectParallelism)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, nd := range f.nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = nd.connect(ctx, f.conns[i%len(f.conns)])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Len is the number of nodes.
func (f *Fleet) Len() int { return len(f.nodes) }

// Nodes in index order.
func (f *Fleet) Nodes() []*Node { return append([]*Node(nil), f.nodes...) }

// Node i.
func (f *Fleet) Node(i int) *Node { return f.nodes[i] }

// ByID is the node with this id, or nil.
func (f *Fleet) ByID(id string) *Node { return f.byID[id] }

// IDs of the nodes in index order.
func (f *Fleet) IDs() []string {
	out := make([]string, len(f.nodes))
	for i, n := range f.nodes {
		out[i] = n.id
	}
	return out
}

// WaitRuns waits until every node runs set (WantOf) and returns the time
// the last of them accepted the last response that got it there. A node
// whose stream ended fails the wait.
func (f *Fleet) WaitRuns(ctx context.Context, set *snapshot.Set) (time.Time, error) {
	type key struct {
		c snapshot.Class
		g snapshot.Group
	}
	want := map[key]*Want{}
	for _, n := range f.nodes {
		k := key{n.class, n.group}
		if want[k] == nil {
			w := WantOf(set.In(n.group), n.class)
			want[k] = &w
		}
	}
	return f.Wait(ctx, func(n *Node) (time.Time, bool) { return n.RunsWant(want[key{n.class, n.group}]) })
}

// Wait waits until cond holds for every node and returns the latest time
// cond reported. It checks every 10ms (the times come from the nodes, so
// this does not limit their precision).
func (f *Fleet) Wait(ctx context.Context, cond func(*Node) (time.Time, bool)) (time.Time, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		var last time.Time
		missing := 0
		var first *Node
		for _, n := range f.nodes {
			if err := n.Err(); err != nil {
				return time.Time{}, fmt.Errorf("fleetsim: node %s: %w", n.id, err)
			}
			at, ok := cond(n)
			if !ok {
				if first == nil {
					first = n
				}
				missing++
				continue
			}
			if at.After(last) {
				last = at
			}
		}
		if missing == 0 {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("fleetsim: %d of %d node(s) not there yet (first: %s, accepted %v): %w",
				missing, len(f.nodes), first.id, first.Accepted(), ctx.Err())
		case <-t.C:
		}
	}
}

// Responses is the number of responses of typeURL at version over all
// nodes.
func (f *Fleet) Responses(typeURL, version string) int {
	k := 0
	for _, n := range f.nodes {
		k += n.Responses(typeURL, version)
	}
	return k
}

// Totals is the number of responses and NACKs over all nodes.
func (f *Fleet) Totals() (responses, nacks int) {
	for _, n := range f.nodes {
		r, k := n.Totals()
		responses += r
		nacks += k
	}
	return responses, nacks
}

// Reject sets the NACK rule of every node (nil: accept what validates).
func (f *Fleet) Reject(rule func(node, typeURL, version string) string) {
	for _, n := range f.nodes {
		if rule == nil {
			n.Reject(nil)
			continue
		}
		id := n.id
		n.Reject(func(t, v string) string { return rule(id, t, v) })
	}
}

// Close ends every stream and connection.
func (f *Fleet) Close() {
	for _, n := range f.nodes {
		n.Close()
	}
	for _, cc := range f.conns {
		_ = cc.Close()
	}
}
