package fleetsim

import (
	"context"
	"fmt"
	"sort"
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
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// Validation is what a node checks of every resource before it ACKs.
type Validation int

const (
	// ValidateShallow decodes every resource and runs its ValidateAll (the
	// default).
	ValidateShallow Validation = iota
	// ValidateNone accepts what a rule does not reject.
	ValidateNone
	// ValidateDeep also validates every typed config packed in an Any
	// inside a resource (xdsres.Validate).
	ValidateDeep
)

// NodeOptions configure one node.
type NodeOptions struct {
	// ID is Node.id. Required.
	ID string
	// UserAgent is Node.user_agent_name (default "envoy": the Envoy class).
	UserAgent string
	// Labels become the string fields of Node.metadata.
	Labels map[string]string
	// Types to subscribe to, in this order (default DefaultTypes).
	Types []string
	// Delta opens an incremental (delta) ADS stream instead of a state of
	// the world one.
	Delta bool
	// Subscribe names the resources of a type the node asks for; a type
	// without names is a wildcard subscription.
	Subscribe map[string][]string
	// Validate is what the node checks before it ACKs.
	Validate Validation
	// Record keeps the bytes of every resource the node holds (Held) and a
	// log of every response (Log). A node of a large fleet does without.
	Record bool
	// Reject is the node's first NACK rule (see Node.Reject).
	Reject func(typeURL, version string) string
	// Delay is how long the node waits before each ACK or NACK.
	Delay time.Duration
	// FollowScopes: a state of the world node asks for the route
	// configurations its scopes name (RDS by name, as Envoy does), when a
	// scope list arrives and before it ACKs it, and ACKs a scope list only
	// once it holds the route configuration of every scope in it
	// (stricter than Envoy, which serves a new scope with an empty route
	// table meanwhile). Subscribe to SRDS and not to RDS with it.
	FollowScopes bool
	// ReRequestEDS: on a CDS response, a state of the world node first
	// sends its last EDS request again, byte for byte, as Envoy may when a
	// cluster it re-warms subscribes to its assignment again.
	ReRequestEDS bool
}

// Response is one response as a node with Record saw it; for delta,
// Version is the system_version_info.
type Response struct {
	TypeURL   string
	Version   string
	Names     []string
	Removed   []string
	Rejected  bool
	Resources int
	// Refs are the names its resources refer to, by type URL
	// (xdsres.References): the clusters of a route configuration.
	Refs map[string][]string
}

// Node is one simulated node: one ADS stream, state of the world or
// delta, that ACKs what it accepts and NACKs what does not validate or what
// its rule rejects.
type Node struct {
	id     string
	node   *corev3.Node
	class  snapshot.Class
	group  snapshot.Group // snapshot.GroupOf its labels
	opts   NodeOptions
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	reject   func(typeURL, version string) string
	silent   func(typeURL, version string) bool
	accepted map[string]version // type URL -> last accepted
	// held is what the node holds, by type URL and name: the content hash
	// of the partial types' resources (their sotw responses may carry only
	// some), and with Record the bytes of every resource.
	held map[string]map[string]heldResource
	gen  int // counts accepted responses
	memo struct {
		want *Want
		gen  int
		at   time.Time
		ok   bool
	}
	counts    map[string]map[string]int
	responses int
	nacks     int
	empty     int // listener or cluster responses without a resource
	lastNACK  string
	log       []Response
	lastEDS   *discovery.DiscoveryRequest
	scopes    struct { // FollowScopes
		routes   []string                    // the route configurations of the pending scope list
		ack      *discovery.DiscoveryRequest // its ACK, held back
		at       time.Time                   // when it was accepted
		rdsNonce string                      // of the last RDS response
	}
	err error
}

type version struct {
	v  string
	at time.Time
}

type heldResource struct {
	hash string
	raw  []byte
}

func newNode(opts NodeOptions) (*Node, error) {
	if opts.UserAgent == "" {
		opts.UserAgent = "envoy"
	}
	if len(opts.Types) == 0 {
		opts.Types = DefaultTypes
	}
	meta := map[string]any{}
	for k, v := range opts.Labels {
		meta[k] = v
	}
	md, err := structpb.NewStruct(meta)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: node %s metadata: %w", opts.ID, err)
	}
	pb := &corev3.Node{Id: opts.ID, UserAgentName: opts.UserAgent, Metadata: md}
	return &Node{
		id: opts.ID, node: pb, class: snapshot.ClassOf(pb), group: snapshot.GroupOf(snapshot.Labels(pb)), opts: opts, reject: opts.Reject,
		done: make(chan struct{}), accepted: map[string]version{}, counts: map[string]map[string]int{},
		held: map[string]map[string]heldResource{},
	}, nil
}

// Connect opens one node's ADS stream on cc and sends its first requests.
// The stream lives until Close.
func Connect(ctx context.Context, cc *grpc.ClientConn, opts NodeOptions) (*Node, error) {
	n, err := newNode(opts)
	if err != nil {
		return nil, err
	}
	return n, n.connect(ctx, cc)
}

// TB is the part of testing.TB ConnectT uses, so that this package does
// not import package testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// ConnectT is Connect for a test: it dials addr (loopback) on a connection
// of its own, fails t on error, and closes the node and the connection
// when the test ends.
func ConnectT(t TB, addr string, opts NodeOptions) *Node {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("fleetsim: dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	n, err := Connect(context.Background(), cc, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(n.Close)
	return n
}

func (n *Node) connect(ctx context.Context, cc *grpc.ClientConn) error {
	if err := ctx.Err(); err != nil {
		close(n.done)
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	fail := func(what string, err error) error {
		cancel()
		close(n.done)
		return fmt.Errorf("fleetsim: node %s: %s: %w", n.id, what, err)
	}
	ads := discovery.NewAggregatedDiscoveryServiceClient(cc)
	var run func() error
	if n.opts.Delta {
		stream, err := ads.DeltaAggregatedResources(sctx)
		if err != nil {
			return fail("open stream", err)
		}
		var first []*discovery.DeltaDiscoveryRequest
		for _, t := range n.opts.Types {
			first = append(first, &discovery.DeltaDiscoveryRequest{Node: n.node, TypeUrl: t, ResourceNamesSubscribe: n.opts.Subscribe[t]})
		}
		if run, err = pump(stream, first, n.answerDelta, n.opts.Delay); err != nil {
			return fail("first request", err)
		}
	} else {
		stream, err := ads.StreamAggregatedResources(sctx)
		if err != nil {
			return fail("open stream", err)
		}
		var first []*discovery.DiscoveryRequest
		for _, t := range n.opts.Types {
			first = append(first, &discovery.DiscoveryRequest{Node: n.node, TypeUrl: t, ResourceNames: n.opts.Subscribe[t]})
		}
		if run, err = pump(stream, first, n.answerSotw, n.opts.Delay); err != nil {
			return fail("first request", err)
		}
	}
	go func() {
		defer close(n.done)
		if err := run(); err != nil && sctx.Err() == nil {
			n.mu.Lock()
			n.err = err
			n.mu.Unlock()
		}
	}()
	return nil
}

// stream is an ADS stream, state of the world or delta, as a node uses it.
type stream[Req, Resp any] interface {
	Send(Req) error
	Recv() (Resp, error)
}

// pump sends the first requests on s and returns the loop that answers
// every response with the requests answer returns (none: no answer), each
// time after delay. The loop returns the error that ended the stream, nil
// when a send failed (the stream is closing).
func pump[Req, Resp any](s stream[Req, Resp], first []Req, answer func(Resp) []Req, delay time.Duration) (func() error, error) {
	for _, r := range first {
		if err := s.Send(r); err != nil {
			return nil, err
		}
	}
	return func() error {
		for {
			resp, err := s.Recv()
			if err != nil {
				return err
			}
			reqs := answer(resp)
			if len(reqs) == 0 {
				continue
			}
			time.Sleep(delay)
			for _, r := range reqs {
				if s.Send(r) != nil {
					return nil
				}
			}
		}
	}, nil
}

// check validates a response's resources as the node's options say and
// returns the NACK message, "" to accept.
func (n *Node) check(typ string, rs []*anypb.Any) string {
	if n.opts.Validate == ValidateNone {
		return ""
	}
	ms, err := xdsres.DecodeAll(typ, rs)
	for i := 0; err == nil && i < len(ms); i++ {
		if n.opts.Validate == ValidateDeep {
			err = xdsres.Validate(ms[i])
		} else {
			err = xdsres.ValidateAll(ms[i])
		}
		if err != nil {
			err = fmt.Errorf("resource %d: %w", i, err)
		}
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// decide records a response of typ at v and returns the NACK message, ""
// to accept. Call with n.mu held.
func (n *Node) decide(typ, v, invalid string) string {
	msg := invalid
	if msg == "" && n.reject != nil {
		msg = n.reject(typ, v)
	}
	n.responses++
	if n.counts[typ] == nil {
		n.counts[typ] = map[string]int{}
	}
	n.counts[typ][v]++
	if msg != "" {
		n.nacks++
		n.lastNACK = msg
	}
	return msg
}

// holdOf is the node's holdings of typ, made empty first when reset.
func (n *Node) holdOf(typ string, reset bool) map[string]heldResource {
	h := n.held[typ]
	if h == nil || reset {
		h = map[string]heldResource{}
		n.held[typ] = h
	}
	return h
}

// keep records one resource the node now holds.
func (n *Node) keep(h map[string]heldResource, typ, name string, raw []byte) {
	var r heldResource
	if isPartial(typ) {
		r.hash = cache.HashResource(raw)
	}
	if n.opts.Record {
		r.raw = raw
	}
	h[name] = r
}

// record appends a response to the log (Record).
func (n *Node) record(typ, v string, names, removed []string, rejected bool, rs [][]byte) {
	if !n.opts.Record {
		return
	}
	refs := map[string][]string{}
	for _, b := range rs {
		if m, err := xdsres.Decode(typ, b); err == nil {
			for t, ns := range xdsres.References(m) {
				refs[t] = append(refs[t], ns...)
			}
		}
	}
	n.log = append(n.log, Response{TypeURL: typ, Version: v, Names: names, Removed: removed, Rejected: rejected, Resources: len(names), Refs: refs})
}

// answerSotw decides ACK or NACK for a state of the world response,
// records it, and returns the requests to send: none when the node's
// silent rule says not to answer.
func (n *Node) answerSotw(resp *discovery.DiscoveryResponse) []*discovery.DiscoveryRequest {
	typ, v := resp.GetTypeUrl(), resp.GetVersionInfo()
	invalid := n.check(typ, resp.GetResources())
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	msg := n.decide(typ, v, invalid)
	if (typ == resource.ListenerType || typ == resource.ClusterType) && len(resp.GetResources()) == 0 {
		n.empty++
	}
	if n.opts.Record {
		names := make([]string, len(resp.GetResources()))
		raws := make([][]byte, len(resp.GetResources()))
		for i, a := range resp.GetResources() {
			names[i], raws[i] = xdsres.WireName(a.GetValue()), a.GetValue()
		}
		n.record(typ, v, names, nil, msg != "", raws)
	}
	if n.silent != nil && n.silent(typ, v) {
		return nil
	}
	var out []*discovery.DiscoveryRequest
	if n.opts.ReRequestEDS && typ == resource.ClusterType && n.lastEDS != nil {
		out = append(out, proto.Clone(n.lastEDS).(*discovery.DiscoveryRequest))
	}
	req := &discovery.DiscoveryRequest{Node: n.node, TypeUrl: typ, ResponseNonce: resp.GetNonce(), ResourceNames: n.opts.Subscribe[typ]}
	if msg != "" {
		req.VersionInfo = n.accepted[typ].v // the last version accepted, as the protocol says
		req.ErrorDetail = &statuspb.Status{Code: 3, Message: msg}
	} else {
		req.VersionInfo = v
		if isPartial(typ) || n.opts.Record {
			h := n.holdOf(typ, fullState(typ))
			for _, a := range resp.GetResources() {
				n.keep(h, typ, xdsres.WireName(a.GetValue()), a.GetValue())
			}
		}
	}
	if typ == resource.EndpointType {
		n.lastEDS = req
	}
	if !n.opts.FollowScopes {
		if msg == "" {
			n.accept(typ, v, now)
		}
		return append(out, req)
	}
	return append(out, n.followScopes(resp, req, msg == "", now)...)
}

// accept records version v of typ as accepted at now.
func (n *Node) accept(typ, v string, now time.Time) {
	n.accepted[typ] = version{v, now}
	n.gen++
}

// followScopes is FollowScopes: on a scope list it accepts, the node asks
// for the route configurations its scopes name and holds its ACK back
// until it holds every one of them. Call with n.mu held.
func (n *Node) followScopes(resp *discovery.DiscoveryResponse, req *discovery.DiscoveryRequest, ok bool, now time.Time) []*discovery.DiscoveryRequest {
	typ := resp.GetTypeUrl()
	var out []*discovery.DiscoveryRequest
	switch {
	case typ == resource.ScopedRouteType && ok:
		var names []string
		if ms, err := xdsres.DecodeAll(typ, resp.GetResources()); err == nil {
			for _, m := range ms {
				names = append(names, xdsres.References(m)[resource.RouteType]...)
			}
		}
		sort.Strings(names)
		n.scopes.routes, n.scopes.ack, n.scopes.at = names, req, now
		out = append(out, &discovery.DiscoveryRequest{TypeUrl: resource.RouteType, ResourceNames: names, ResponseNonce: n.scopes.rdsNonce})
	default:
		if typ == resource.RouteType {
			n.scopes.rdsNonce = resp.GetNonce()
		}
		if ok {
			n.accept(typ, resp.GetVersionInfo(), now)
		}
		out = append(out, req)
	}
	if ack := n.scopes.ack; ack != nil && n.holdsRoutes(n.scopes.routes) {
		out = append(out, ack)
		n.accept(resource.ScopedRouteType, ack.GetVersionInfo(), n.scopes.at)
		n.scopes.ack = nil
	}
	return out
}

// holdsRoutes reports whether the node holds every route configuration
// named.
func (n *Node) holdsRoutes(names []string) bool {
	for _, name := range names {
		if _, ok := n.held[resource.RouteType][name]; !ok {
			return false
		}
	}
	return true
}

// answerDelta decides ACK or NACK for a delta response and records it.
func (n *Node) answerDelta(resp *discovery.DeltaDiscoveryResponse) []*discovery.DeltaDiscoveryRequest {
	typ, v := resp.GetTypeUrl(), resp.GetSystemVersionInfo()
	anys := make([]*anypb.Any, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		anys = append(anys, r.GetResource())
	}
	invalid := n.check(typ, anys)
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	msg := n.decide(typ, v, invalid)
	if n.opts.Record {
		names := make([]string, len(resp.GetResources()))
		raws := make([][]byte, len(resp.GetResources()))
		for i, r := range resp.GetResources() {
			names[i], raws[i] = r.GetName(), r.GetResource().GetValue()
		}
		n.record(typ, v, names, resp.GetRemovedResources(), msg != "", raws)
	}
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}
	if msg != "" {
		req.ErrorDetail = &statuspb.Status{Code: 3, Message: msg}
		return []*discovery.DeltaDiscoveryRequest{req}
	}
	n.accept(typ, v, now)
	if n.opts.Record {
		h := n.holdOf(typ, false)
		for _, r := range resp.GetResources() {
			n.keep(h, typ, r.GetName(), r.GetResource().GetValue())
		}
		for _, name := range resp.GetRemovedResources() {
			delete(h, name)
		}
	}
	return []*discovery.DeltaDiscoveryRequest{req}
}

// ID is the node id.
func (n *Node) ID() string { return n.id }

// Class of the node (from its user agent).
func (n *Node) Class() snapshot.Class { return n.class }

// Group is the proxy group the node declares (label snapshot.GroupLabel).
func (n *Node) Group() snapshot.Group { return n.group }

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

// Silent sets the rule of the state of the world responses the node
// records but does not answer at all (neither ACK nor NACK).
func (n *Node) Silent(rule func(typeURL, version string) bool) {
	n.mu.Lock()
	n.silent = rule
	n.mu.Unlock()
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

// AcceptedVersion is the last version of typeURL the node accepted.
func (n *Node) AcceptedVersion(typeURL string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.accepted[typeURL].v
}

// Held is the bytes of the resource of typeURL named name the node holds
// (Record); false when it holds none.
func (n *Node) Held(typeURL, name string) ([]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.held[typeURL][name]
	return r.raw, ok
}

// Log is every response the node got, in arrival order (Record).
func (n *Node) Log() []Response {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Response(nil), n.log...)
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

// fullState: a sotw response of these types is the whole state: Listener,
// Cluster and, in Envoy, scopes (the xDS protocol); the others update what
// they carry.
func fullState(t string) bool {
	return t == resource.ListenerType || t == resource.ClusterType || t == resource.ScopedRouteType
}

// RunsAt reports whether the node runs set (WantOf its group's Set), and
// when it accepted the last response that got it there.
func (n *Node) RunsAt(set *snapshot.Set) (time.Time, bool) {
	w := WantOf(set.In(n.group), n.class)
	return n.RunsWant(&w)
}

// RunsWant is RunsAt for a Want.
func (n *Node) RunsWant(want *Want) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.memo.want == want && n.memo.gen == n.gen {
		return n.memo.at, n.memo.ok
	}
	var last time.Time
	ok := true
	for _, t := range n.opts.Types {
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
func holds(have map[string]heldResource, want map[string]string) bool {
	for name, h := range want {
		if have[name].hash != h {
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

// EmptyResponses is how many state of the world responses of listeners or
// clusters without any resource the node got: a node served one drops
// every listener (or cluster) it had, which a gateway's config never
// wants.
func (n *Node) EmptyResponses() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.empty
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

// Done is closed when the node's stream has ended (see Err) or the node
// was closed.
func (n *Node) Done() <-chan struct{} { return n.done }

// Close ends the node's stream and waits for its goroutine.
func (n *Node) Close() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
	}
}
