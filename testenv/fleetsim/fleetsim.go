// Package fleetsim simulates a fleet of xDS nodes: each node is one ADS
// state-of-the-world stream over real gRPC (loopback in tests) that
// subscribes to every type (wildcard, as Envoy does for CDS, LDS and SRDS;
// Envoy names the EDS and RDS resources it wants, the bytes of a change
// are the same),
// decodes and validates every resource it receives (ValidateAll), ACKs what
// is valid and NACKs what is not, or what a test tells it to reject.
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
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

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
		nd, err := newNode(opts, i)
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

// Want is what a node runs when it runs a Set: the version of every type,
// and for the types whose sotw responses may carry only what changed (EDS
// and RDS), the content hash of every resource (cache.HashResource of its
// wire bytes, the Set's version map). A node that holds exactly those
// resources runs the Set even when it was never sent the type's version:
// nothing it subscribed to changed.
type Want struct {
	Versions  map[string]string            // type URL -> version
	Resources map[string]map[string]string // type URL -> name -> hash
}

// WantOf is what nodes of class c run when they run set.
func WantOf(set *snapshot.Set, c snapshot.Class) Want {
	w := Want{Versions: map[string]string{}, Resources: map[string]map[string]string{}}
	for _, t := range snapshot.TypeURLs {
		w.Versions[t] = set.Version(c, t)
	}
	if snap, err := set.CacheSnapshot(c); err == nil && snap != nil {
		for _, t := range partialTypes {
			// Content hashes: an Envoy assignment's entry also names
			// its cluster's hash ("content/cluster", package snapshot).
			vm := map[string]string{}
			for name, h := range snap.GetVersionMap(t) {
				vm[name], _, _ = strings.Cut(h, "/")
			}
			w.Resources[t] = vm
		}
	}
	return w
}

// partialTypes: a sotw response of these types may carry only some of the
// subscribed resources; the others are kept (the xDS protocol).
var partialTypes = []string{resource.EndpointType, resource.RouteType}

func isPartial(t string) bool { return t == resource.EndpointType || t == resource.RouteType }

// WaitRuns waits until every node runs set (WantOf) and returns the time
// the last of them accepted the last response that got it there. A node
// whose stream ended fails the wait.
func (f *Fleet) WaitRuns(ctx context.Context, set *snapshot.Set) (time.Time, error) {
	want := map[snapshot.Class]*Want{}
	for _, c := range snapshot.Classes {
		w := WantOf(set, c)
		want[c] = &w
	}
	return f.Wait(ctx, func(n *Node) (time.Time, bool) { return n.runsAt(want[n.class]) })
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
		n.close()
	}
	for _, cc := range f.conns {
		_ = cc.Close()
	}
}

// Node is one simulated node.
type Node struct {
	id     string
	node   *corev3.Node
	class  snapshot.Class
	types  []string
	verify bool
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	reject   func(typeURL, version string) string
	accepted map[string]version           // type URL -> last accepted
	held     map[string]map[string]string // partial type URL -> name -> hash of what it holds
	gen      int                          // counts accepted responses
	memo     struct {
		want *Want
		gen  int
		at   time.Time
		ok   bool
	}
	counts    map[string]map[string]int
	responses int
	nacks     int
	lastNACK  string
	err       error
}

type version struct {
	v  string
	at time.Time
}

func newNode(opts Options, i int) (*Node, error) {
	id := fmt.Sprintf("%s-%d", opts.Prefix, i)
	meta := map[string]any{}
	if opts.Labels != nil {
		for k, v := range opts.Labels(i) {
			meta[k] = v
		}
	}
	md, err := structpb.NewStruct(meta)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: node %s metadata: %w", id, err)
	}
	pb := &corev3.Node{Id: id, UserAgentName: opts.UserAgent, Metadata: md}
	return &Node{
		id: id, node: pb, class: snapshot.ClassOf(pb), types: opts.Types, verify: !opts.NoValidate,
		done: make(chan struct{}), accepted: map[string]version{}, counts: map[string]map[string]int{},
		held: map[string]map[string]string{},
	}, nil
}

func (n *Node) connect(ctx context.Context, cc *grpc.ClientConn) error {
	if err := ctx.Err(); err != nil {
		close(n.done)
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(sctx)
	if err != nil {
		cancel()
		close(n.done)
		return fmt.Errorf("fleetsim: node %s: open stream: %w", n.id, err)
	}
	for _, t := range n.types {
		if err := stream.Send(&discovery.DiscoveryRequest{Node: n.node, TypeUrl: t}); err != nil {
			cancel()
			close(n.done)
			return fmt.Errorf("fleetsim: node %s: first request: %w", n.id, err)
		}
	}
	go func() {
		defer close(n.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				if sctx.Err() == nil {
					n.mu.Lock()
					n.err = err
					n.mu.Unlock()
				}
				return
			}
			if err := stream.Send(n.answer(resp)); err != nil {
				return
			}
		}
	}()
	return nil
}

// answer decides ACK or NACK for a response and records it.
func (n *Node) answer(resp *discovery.DiscoveryResponse) *discovery.DiscoveryRequest {
	typ, v := resp.GetTypeUrl(), resp.GetVersionInfo()
	msg := ""
	if n.verify {
		if err := Validate(typ, resp.GetResources()); err != nil {
			msg = err.Error()
		}
	}
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if msg == "" && n.reject != nil {
		msg = n.reject(typ, v)
	}
	n.responses++
	if n.counts[typ] == nil {
		n.counts[typ] = map[string]int{}
	}
	n.counts[typ][v]++
	req := &discovery.DiscoveryRequest{Node: n.node, TypeUrl: typ, ResponseNonce: resp.GetNonce()}
	if msg != "" {
		n.nacks++
		n.lastNACK = msg
		req.VersionInfo = n.accepted[typ].v // the last version accepted, as the protocol says
		req.ErrorDetail = &statuspb.Status{Code: 3, Message: msg}
		return req
	}
	n.accepted[typ] = version{v, now}
	n.gen++
	if isPartial(typ) {
		h := n.held[typ]
		if h == nil {
			h = map[string]string{}
			n.held[typ] = h
		}
		for _, a := range resp.GetResources() {
			h[resourceName(a.GetValue())] = cache.HashResource(a.GetValue())
		}
	}
	req.VersionInfo = v
	return req
}

// resourceName reads field 1 of a resource's wire bytes: the name of a
// RouteConfiguration, the cluster_name of a ClusterLoadAssignment.
func resourceName(b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return ""
			}
			return string(v)
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return ""
		}
		b = b[m:]
	}
	return ""
}

// ID is the node id.
func (n *Node) ID() string { return n.id }

// Class of the node (from its user agent).
func (n *Node) Class() snapshot.Class { return n.class }

// Reject sets the node's NACK rule: a non-empty result NACKs the response
// with that message. nil accepts everything that validates.
func (n *Node) Reject(rule func(typeURL, version string) string) {
	n.mu.Lock()
	n.reject = rule
	n.mu.Unlock()
}

// RejectVersion NACKs every response of typeURL at version with msg.
func (n *Node) RejectVersion(typeURL, version, msg string) {
	n.Reject(func(t, v string) string {
		if t == typeURL && v == version {
			return msg
		}
		return ""
	})
}

// Accepted is the last accepted version per type URL.
func (n *Node) Accepted() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string, len(n.accepted))
	for t, v := range n.accepted {
		out[t] = v.v
	}
	return out
}

// RunsAt reports whether the node runs set (WantOf), and when it accepted
// the last response that got it there.
func (n *Node) RunsAt(set *snapshot.Set) (time.Time, bool) {
	w := WantOf(set, n.class)
	return n.RunsWant(&w)
}

// RunsWant is RunsAt for a Want.
func (n *Node) RunsWant(want *Want) (time.Time, bool) { return n.runsAt(want) }

func (n *Node) runsAt(want *Want) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.memo.want == want && n.memo.gen == n.gen {
		return n.memo.at, n.memo.ok
	}
	var last time.Time
	ok := true
	for _, t := range n.types {
		a := n.accepted[t]
		if a.v != want.Versions[t] && !(isPartial(t) && want.Resources[t] != nil && holds(n.held[t], want.Resources[t])) {
			ok = false
			break
		}
		if a.at.After(last) {
			last = a.at
		}
	}
	if !ok {
		last = time.Time{}
	}
	n.memo.want, n.memo.gen, n.memo.at, n.memo.ok = want, n.gen, last, ok
	return last, ok
}

// holds reports whether every wanted resource is held at its hash.
func holds(have, want map[string]string) bool {
	for name, h := range want {
		if have[name] != h {
			return false
		}
	}
	return true
}

// Runs reports whether the node runs set.
func (n *Node) Runs(set *snapshot.Set) bool {
	_, ok := n.RunsAt(set)
	return ok
}

// Responses is how many responses of typeURL at version the node got.
func (n *Node) Responses(typeURL, version string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.counts[typeURL][version]
}

// Counts is a copy of the responses per type URL and version.
func (n *Node) Counts() map[string]map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]map[string]int, len(n.counts))
	for t, vs := range n.counts {
		c := make(map[string]int, len(vs))
		for v, k := range vs {
			c[v] = k
		}
		out[t] = c
	}
	return out
}

// Totals is how many responses the node got and how many it NACKed.
func (n *Node) Totals() (responses, nacks int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.responses, n.nacks
}

// LastNACK is the message of the node's last NACK.
func (n *Node) LastNACK() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastNACK
}

// Err is the error that ended the node's stream, nil while it runs (or
// after Close).
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

func (n *Node) close() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
	}
}
