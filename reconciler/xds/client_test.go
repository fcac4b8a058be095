package xds

import (
	"context"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// fakeNode is a hand-written ADS client (sotw or delta) that behaves like
// Envoy: it subscribes to every type (wildcard), ACKs what it accepts,
// NACKs what reject says to, and logs every response in arrival order.
type fakeNode struct {
	t      *testing.T
	node   *corev3.Node
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	reject   func(typeURL, version string) string // non-empty: NACK with this message
	delay    time.Duration                        // before each ACK or NACK
	silent   func(typeURL, version string) bool   // true: do not answer at all
	log      []response
	accepted map[string]string            // type URL -> version
	held     map[string]map[string][]byte // type URL -> name -> accepted bytes (sotw)
	// reRequestEDS: on a CDS response, send first the node's last EDS
	// request again, byte for byte (sotw), as Envoy may when a cluster it
	// re-warms subscribes to its assignment again.
	reRequestEDS bool
	lastEDS      *discovery.DiscoveryRequest
	// types it subscribes to (wildcard); fourTypes when nil.
	types []string
}

func (n *fakeNode) subscribed() []string {
	if n.types != nil {
		return n.types
	}
	return fourTypes
}

// fourTypes are what the fakes subscribe to: the test Sets have no scoped
// routes (the scale harness and translate's tests cover those).
var fourTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// response is one response as the fake saw it; for delta, Version is the
// system_version_info.
type response struct {
	TypeURL   string
	Version   string
	Names     []string
	Removed   []string
	Rejected  bool
	Resources int
	Refs      []string // RDS: the clusters its routes use
}

func newFakeNode(t *testing.T, id, userAgent string, labels map[string]string) *fakeNode {
	meta := map[string]any{}
	for k, v := range labels {
		meta[k] = v
	}
	md, err := structpb.NewStruct(meta)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeNode{
		t:        t,
		node:     &corev3.Node{Id: id, UserAgentName: userAgent, Metadata: md},
		accepted: map[string]string{},
		held:     map[string]map[string][]byte{},
		done:     make(chan struct{}),
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// connectSotw opens an ADS stream and asks for CDS, EDS, LDS, RDS in that
// order (as Envoy does at startup).
func connectSotw(t *testing.T, addr string, n *fakeNode) *fakeNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(dial(t, addr)).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range n.subscribed() {
		if err := stream.Send(&discovery.DiscoveryRequest{Node: n.node, TypeUrl: typ}); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		defer close(n.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			again := n.edsAgain(resp)
			req := n.answerSotw(resp)
			if req == nil {
				continue
			}
			time.Sleep(n.delay)
			if again != nil {
				if err := stream.Send(again); err != nil {
					return
				}
			}
			if err := stream.Send(req); err != nil {
				return
			}
		}
	}()
	t.Cleanup(n.close)
	return n
}

func (n *fakeNode) answerSotw(resp *discovery.DiscoveryResponse) *discovery.DiscoveryRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	typ, v := resp.GetTypeUrl(), resp.GetVersionInfo()
	msg := ""
	if n.reject != nil {
		msg = n.reject(typ, v)
	}
	var names, refs []string
	for _, r := range resp.GetResources() {
		names = append(names, resourceName(typ, r.GetValue()))
		if typ == resource.RouteType {
			refs = append(refs, routeClusters(r.GetValue())...)
		}
	}
	n.log = append(n.log, response{TypeURL: typ, Version: v, Names: names, Rejected: msg != "", Resources: len(names), Refs: refs})
	if n.silent != nil && n.silent(typ, v) {
		return nil
	}
	req := &discovery.DiscoveryRequest{Node: n.node, TypeUrl: typ, ResponseNonce: resp.GetNonce()}
	if msg != "" {
		req.VersionInfo = n.accepted[typ] // the last version accepted, as the protocol says
		req.ErrorDetail = &statuspb.Status{Code: 3, Message: msg}
	} else {
		n.accepted[typ] = v
		req.VersionInfo = v
		// Listener, Cluster and (in Envoy) scope responses are the whole
		// state; the others update what they carry (the xDS protocol).
		if typ == resource.ListenerType || typ == resource.ClusterType || typ == resource.ScopedRouteType || n.held[typ] == nil {
			n.held[typ] = map[string][]byte{}
		}
		for i, r := range resp.GetResources() {
			n.held[typ][names[i]] = r.GetValue()
		}
	}
	if typ == resource.EndpointType {
		n.lastEDS = req
	}
	return req
}

// edsAgain is the request to send before answering resp: the last EDS
// request again, when reRequestEDS says so and resp is a CDS response.
func (n *fakeNode) edsAgain(resp *discovery.DiscoveryResponse) *discovery.DiscoveryRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.reRequestEDS || resp.GetTypeUrl() != resource.ClusterType || n.lastEDS == nil {
		return nil
	}
	return proto.Clone(n.lastEDS).(*discovery.DiscoveryRequest)
}

// connectDelta opens a delta ADS stream with wildcard subscriptions to the
// four types; subscribe overrides the names of a type.
func connectDelta(t *testing.T, addr string, n *fakeNode, subscribe map[string][]string) *fakeNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(dial(t, addr)).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range n.subscribed() {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: n.node, TypeUrl: typ, ResourceNamesSubscribe: subscribe[typ]}); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		defer close(n.done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			if err := stream.Send(n.answerDelta(resp)); err != nil {
				return
			}
		}
	}()
	t.Cleanup(n.close)
	return n
}

func (n *fakeNode) answerDelta(resp *discovery.DeltaDiscoveryResponse) *discovery.DeltaDiscoveryRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	typ, v := resp.GetTypeUrl(), resp.GetSystemVersionInfo()
	msg := ""
	if n.reject != nil {
		msg = n.reject(typ, v)
	}
	var names []string
	for _, r := range resp.GetResources() {
		names = append(names, r.GetName())
	}
	n.log = append(n.log, response{TypeURL: typ, Version: v, Names: names, Removed: resp.GetRemovedResources(), Rejected: msg != "", Resources: len(names)})
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}
	if msg != "" {
		req.ErrorDetail = &statuspb.Status{Code: 3, Message: msg}
	} else {
		n.accepted[typ] = v
	}
	return req
}

func (n *fakeNode) close() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
	}
}

func (n *fakeNode) setReject(f func(typeURL, version string) string) {
	n.mu.Lock()
	n.reject = f
	n.mu.Unlock()
}

func (n *fakeNode) responses() []response {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]response(nil), n.log...)
}

func (n *fakeNode) acceptedVersion(typeURL string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.accepted[typeURL]
}

// runs reports whether the node accepted set's version of every type, or,
// for a type whose sotw responses carry only what changed, holds set's
// resources of that type.
func (n *fakeNode) runs(set *snapshot.Set) bool {
	c := snapshot.ClassOf(n.node)
	for _, typ := range fourTypes {
		if n.acceptedVersion(typ) != set.Version(c, typ) && !(partialSotw(typ) && n.holds(set, typ)) {
			return false
		}
	}
	return true
}

func (n *fakeNode) holds(set *snapshot.Set, typ string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range set.Classes[snapshot.ClassOf(n.node)].ByType(typ) {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			return false
		}
		got, ok := n.held[typ][cache.GetResourceName(r)]
		if !ok || !proto.Equal(unmarshalAs(typ, got), unmarshalAs(typ, want)) {
			return false
		}
	}
	return true
}

// unmarshalAs decodes b as a resource of typeURL; nil when it cannot.
func unmarshalAs(typeURL string, b []byte) proto.Message {
	var m types.Resource
	switch typeURL {
	case resource.ClusterType:
		m = &clusterv3.Cluster{}
	case resource.EndpointType:
		m = &endpointv3.ClusterLoadAssignment{}
	case resource.ListenerType:
		m = &listenerv3.Listener{}
	case resource.RouteType:
		m = &routev3.RouteConfiguration{}
	case resource.ScopedRouteType:
		m = &routev3.ScopedRouteConfiguration{}
	default:
		return nil
	}
	if proto.Unmarshal(b, m) != nil {
		return nil
	}
	return m
}

// count is how many responses of typeURL carried version.
func (n *fakeNode) count(typeURL, version string) int {
	k := 0
	for _, r := range n.responses() {
		if r.TypeURL == typeURL && r.Version == version {
			k++
		}
	}
	return k
}

func resourceName(typeURL string, b []byte) string {
	m := unmarshalAs(typeURL, b)
	if m == nil {
		return "?"
	}
	return cache.GetResourceName(m)
}

func routeClusters(b []byte) []string {
	var rc routev3.RouteConfiguration
	if err := proto.Unmarshal(b, &rc); err != nil {
		return []string{"!" + err.Error()}
	}
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if c := r.GetRoute().GetCluster(); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}
