// Package discovery finds the endpoints of the Kubernetes Services that
// the served Sets send to, from their EndpointSlices
// (discovery.k8s.io/v1, label kubernetes.io/service-name) and the Service
// itself (its ports' names and appProtocol), through client-go shared
// informers, and hands them to the xDS server as ClusterLoadAssignments.
//
// Endpoints are discovery, not configuration: they are in no revision, a
// change reaches every node at once (xds.Server.SetEndpoints), without a
// commit and without rollout stages.
//
// Only the Services the Sets refer to are watched (Want): two informers
// per Service, one on the Service by name, one on its EndpointSlices by
// label, both in its namespace, so memory follows what is served, not the
// size of the cluster. A Service that is no longer referenced is no longer
// watched.
//
// An endpoint is served as Envoy's HealthStatus: ready is HEALTHY;
// serving and terminating (a Pod shutting down that still answers) is
// DRAINING; neither is left out. Envoy excludes a DRAINING host from load
// balancing for new requests while keeping it in the cluster
// (HostImplBase::setEdsHealthFlag sets EDS_STATUS_DRAINING, in
// source/common/upstream/upstream_impl.cc); proxyless gRPC uses only
// HEALTHY and UNKNOWN endpoints (gRFC A27). A Service without endpoints,
// or that does not exist, gets an empty assignment: its requests fail
// (Envoy 503, gRPC UNAVAILABLE) until it has some.
package discovery

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/xds"
)

// Options of a Discovery.
type Options struct {
	Client kubernetes.Interface
	Log    *slog.Logger
	// Publish is given what is discovered of every wanted cluster, by
	// cluster name, after each change (xds.Server.SetEndpoints). It is
	// called from one goroutine at a time.
	Publish func(map[string]xds.Discovered)
	// Allowed, when set, says whether an endpoint address may be served
	// ("" when allowed, else the rule that denies it): the backend address
	// policy. A denied address is left out.
	Allowed func(netip.Addr) string
}

// Discovery watches the Services of the clusters it is told to Want.
type Discovery struct {
	opts Options
	kick chan struct{}

	mu      sync.Mutex
	wanted  map[string]ir.ServiceRef // cluster name -> Service port
	watches map[svcKey]*watch
	allowed func(netip.Addr) string
}

type svcKey struct{ ns, name string }

// watch holds the two informers of one Service.
type watch struct {
	stop     chan struct{}
	services cache.SharedIndexInformer
	slices   cache.SharedIndexInformer
}

// New returns a Discovery; Run starts it.
func New(opts Options) *Discovery {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Discovery{opts: opts, kick: make(chan struct{}, 1), wanted: map[string]ir.ServiceRef{},
		watches: map[svcKey]*watch{}, allowed: opts.Allowed}
}

// Want sets the clusters to discover: names of ir.ServiceClusterName
// (others are ignored). It does not block; it may be called with the xDS
// server's lock held (xds.Options.ServiceClusters).
func (d *Discovery) Want(clusters []string) {
	d.mu.Lock()
	d.wanted = map[string]ir.ServiceRef{}
	for _, c := range clusters {
		if s, ok := ir.ParseServiceCluster(c); ok {
			d.wanted[c] = s
		}
	}
	d.mu.Unlock()
	d.changed()
}

// SetAllowed replaces Options.Allowed (the backend address policy of the
// latest revision) and publishes again.
func (d *Discovery) SetAllowed(f func(netip.Addr) string) {
	d.mu.Lock()
	d.allowed = f
	d.mu.Unlock()
	d.changed()
}

func (d *Discovery) changed() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run starts and stops watches as Want says and publishes the assignments
// at every change, until ctx is done.
func (d *Discovery) Run(ctx context.Context) {
	defer d.stopAll()
	var last map[string]xds.Discovered
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		d.sync()
		cur := d.assignments()
		if !sameAssignments(last, cur) {
			d.opts.Publish(cur)
			last = cur
		}
	}
}

// sync starts the watches of wanted Services and stops the others.
func (d *Discovery) sync() {
	d.mu.Lock()
	defer d.mu.Unlock()
	need := map[svcKey]bool{}
	for _, s := range d.wanted {
		need[svcKey{s.Namespace, s.Name}] = true
	}
	for k, w := range d.watches {
		if !need[k] {
			close(w.stop)
			delete(d.watches, k)
		}
	}
	for k := range need {
		if _, ok := d.watches[k]; !ok {
			d.watches[k] = d.startWatch(k)
		}
	}
}

func (d *Discovery) startWatch(k svcKey) *watch {
	w := &watch{stop: make(chan struct{})}
	core := d.opts.Client.CoreV1().RESTClient()
	disc := d.opts.Client.DiscoveryV1().RESTClient()
	w.services = cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(core, "services", k.ns, fields.OneTermEqualSelector("metadata.name", k.name)),
		&corev1.Service{}, 0, cache.Indexers{})
	w.slices = cache.NewSharedIndexInformer(
		cache.NewFilteredListWatchFromClient(disc, "endpointslices", k.ns, func(o *metav1.ListOptions) {
			o.LabelSelector = labels.Set{discoveryv1.LabelServiceName: k.name}.String()
		}),
		&discoveryv1.EndpointSlice{}, 0, cache.Indexers{})
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.changed() },
		UpdateFunc: func(any, any) { d.changed() },
		DeleteFunc: func(any) { d.changed() },
	}
	for _, inf := range []cache.SharedIndexInformer{w.services, w.slices} {
		if _, err := inf.AddEventHandler(h); err != nil {
			d.opts.Log.Error("discovery: event handler", "service", k.ns+"/"+k.name, "error", err)
		}
		go inf.Run(w.stop)
	}
	d.opts.Log.Info("discovering endpoints", "service", k.ns+"/"+k.name)
	return w
}

func (d *Discovery) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, w := range d.watches {
		close(w.stop)
		delete(d.watches, k)
	}
}

// assignments computes what is discovered of every wanted cluster from
// the informers' stores.
func (d *Discovery) assignments() map[string]xds.Discovered {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]xds.Discovered, len(d.wanted))
	for name, s := range d.wanted {
		w := d.watches[svcKey{s.Namespace, s.Name}]
		var svc *corev1.Service
		var slices []*discoveryv1.EndpointSlice
		if w != nil {
			for _, o := range w.services.GetStore().List() {
				if v, ok := o.(*corev1.Service); ok && v.Name == s.Name {
					svc = v
				}
			}
			for _, o := range w.slices.GetStore().List() {
				if v, ok := o.(*discoveryv1.EndpointSlice); ok {
					slices = append(slices, v)
				}
			}
		}
		ap := AppProtocol(s.Port, svc)
		out[name] = xds.Discovered{Assignment: Assignment(name, s.Port, svc, slices, d.allowed),
			HTTP2: ap == AppProtocolH2C || ap == AppProtocolGRPC, WebSocket: ap == AppProtocolWS}
	}
	return out
}

// Endpoint is one address of an assignment, with its health.
type Endpoint struct {
	Address string
	Port    uint32
	Health  corev3.HealthStatus
}

// Assignment is the ClusterLoadAssignment of Service port port of svc
// (nil when the Service is not known) from its EndpointSlices.
//
// The port is a Service port: with the Service known, its name selects the
// EndpointSlice port of that name (the target port, which may differ); a
// Service port without a name is the slice port without one. Without the
// Service (selectorless slices written by hand), a slice port with the
// same number is used. Only IPv4 and IPv6 slices are read (an FQDN slice
// is deprecated, and Envoy has no EDS hostname endpoints for it here).
func Assignment(cluster string, port uint32, svc *corev1.Service, slices []*discoveryv1.EndpointSlice, allowed func(netip.Addr) string) *endpointv3.ClusterLoadAssignment {
	eps := Endpoints(port, svc, slices, allowed)
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	if len(eps) == 0 {
		return cla
	}
	// One locality, as translate's loadAssignment: gRPC requires it set and
	// ignores a locality of weight 0.
	loc := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{}, LoadBalancingWeight: wrapperspb.UInt32(1)}
	for _, e := range eps {
		loc.LbEndpoints = append(loc.LbEndpoints, &endpointv3.LbEndpoint{
			HealthStatus: e.Health,
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: e.Address, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: e.Port},
				}}},
			}},
		})
	}
	cla.Endpoints = []*endpointv3.LocalityLbEndpoints{loc}
	return cla
}

// Endpoints are the served endpoints of Service port port, sorted by
// address and port, each address once (a ready copy winning).
func Endpoints(port uint32, svc *corev1.Service, slices []*discoveryv1.EndpointSlice, allowed func(netip.Addr) string) []Endpoint {
	portName, byName := "", false
	if svc != nil {
		for _, p := range svc.Spec.Ports {
			if uint32(p.Port) == port {
				portName, byName = p.Name, true
			}
		}
		if !byName {
			return nil // the Service has no such port
		}
	}
	type addrPort struct {
		addr string
		port uint32
	}
	best := map[addrPort]Endpoint{}
	for _, sl := range slices {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 && sl.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		target, ok := slicePort(sl, port, portName, byName)
		if !ok {
			continue
		}
		for _, ep := range sl.Endpoints {
			health, ok := healthOf(ep.Conditions)
			if !ok {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || ip.Zone() != "" {
					continue
				}
				if allowed != nil && allowed(ip) != "" {
					continue
				}
				e := Endpoint{Address: ip.String(), Port: target, Health: health}
				k := addrPort{e.Address, target}
				if old, seen := best[k]; !seen || old.Health != corev3.HealthStatus_HEALTHY {
					best[k] = e
				}
			}
		}
	}
	out := make([]Endpoint, 0, len(best))
	for _, e := range best {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Address != out[j].Address {
			return out[i].Address < out[j].Address
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// slicePort is the target port of the slice for the Service port.
func slicePort(sl *discoveryv1.EndpointSlice, port uint32, name string, byName bool) (uint32, bool) {
	for _, p := range sl.Ports {
		if p.Port == nil {
			continue
		}
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if byName && pn == name || !byName && uint32(*p.Port) == port {
			return uint32(*p.Port), true
		}
	}
	return 0, false
}

// healthOf maps EndpointConditions to Envoy's HealthStatus. Unset
// conditions take the API's defaults: ready unknown is ready, serving
// unknown is ready's value, terminating unknown is false.
func healthOf(c discoveryv1.EndpointConditions) (corev3.HealthStatus, bool) {
	ready := c.Ready == nil || *c.Ready
	serving := ready
	if c.Serving != nil {
		serving = *c.Serving
	}
	terminating := c.Terminating != nil && *c.Terminating
	switch {
	case ready && !terminating:
		return corev3.HealthStatus_HEALTHY, true
	case serving && terminating:
		return corev3.HealthStatus_DRAINING, true
	}
	return corev3.HealthStatus_UNKNOWN, false
}

// AppProtocol is the appProtocol of Service port port of svc, "" when
// unknown.
func AppProtocol(port uint32, svc *corev1.Service) string {
	if svc == nil {
		return ""
	}
	for _, p := range svc.Spec.Ports {
		if uint32(p.Port) == port && p.AppProtocol != nil {
			return *p.AppProtocol
		}
	}
	return ""
}

// Service port appProtocols gitxds acts on: kubernetes.io/h2c
// (Kubernetes' name for prior-knowledge HTTP/2) and grpc (gRPC is HTTP/2)
// make Envoy speak HTTP/2 to the endpoints; kubernetes.io/ws enables the
// WebSocket upgrade on the routes to them (xds.Discovered).
const (
	AppProtocolH2C  = "kubernetes.io/h2c"
	AppProtocolGRPC = "grpc"
	AppProtocolWS   = "kubernetes.io/ws"
)

func sameAssignments(a, b map[string]xds.Discovered) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.HTTP2 != y.HTTP2 || x.WebSocket != y.WebSocket || !proto.Equal(x.Assignment, y.Assignment) {
			return false
		}
	}
	return true
}
