package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// Discovered endpoints: an overlay on every Set.
//
// The endpoints of a Kubernetes Service are discovery, not configuration:
// they are in no revision (a Service cluster of a Set is EDS with an empty
// assignment, see translate) and change without a commit. SetEndpoints
// replaces the assignments of the clusters it names in every cache
// snapshot a node is moved to, whichever Set it comes from: the default,
// an assignment of a rollout stage in progress, or a node's last good Set
// after a NACK. The Sets themselves are untouched (their hashes and
// versions, which the rollout compares, stay those of the revision); a
// served EDS version is the Set's followed by epsSep and a hash of the
// overlay, and counts as the Set's (setVersion). When the endpoints
// change, every node is moved at once to the same Set with the new
// assignments: a plan of one EDS step (plan.go), with CDS, LDS and RDS
// unchanged and no rollout stage.

// epsSep separates a Set's EDS version from the overlay part of a version
// served with discovered endpoints.
const epsSep = "+eps-"

// Discovered is what discovery knows of one cluster.
type Discovered struct {
	// Assignment replaces the cluster's ClusterLoadAssignment.
	Assignment *endpointv3.ClusterLoadAssignment
	// HTTP2: the upstream speaks HTTP/2 without TLS (a Service port's
	// appProtocol kubernetes.io/h2c or grpc). Envoy nodes get the cluster
	// with HTTP/2 protocol options; gRPC always speaks HTTP/2.
	HTTP2 bool
	// WebSocket: the upstream takes WebSocket upgrades (appProtocol
	// kubernetes.io/ws). Envoy nodes get every route sending to the
	// cluster (alone or in a weighted split) with the websocket upgrade
	// enabled; gRPC clients make no upgrades.
	WebSocket bool
}

// SetEndpoints replaces what is discovered (by cluster name) and pushes it
// to every node whose served clusters include one of them. What is known
// of a cluster no Set has is kept for when one has it.
func (s *Server) SetEndpoints(eps map[string]Discovered) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eps = maps.Clone(eps)
	clear(s.epsSnaps)
	for _, n := range s.nodes {
		if n.cur == nil || n.target == nil {
			continue
		}
		to := s.targetLocked(n)
		if to == nil {
			continue
		}
		snap, err := to.In(n.group).CacheSnapshot(n.class)
		if err != nil || snap == nil {
			continue
		}
		if o := s.withEndpointsLocked(snap, n.class); o.GetVersion(resource.EndpointType) == n.target.GetVersion(resource.EndpointType) &&
			o.GetVersion(resource.ClusterType) == n.target.GetVersion(resource.ClusterType) &&
			beforeDrain(o.GetVersion(resource.RouteType)) == beforeDrain(n.target.GetVersion(resource.RouteType)) {
			continue // none of its clusters changed
		}
		s.transitionLocked(n, to)
	}
	s.notifyLocked()
}

// withEndpointsLocked is snap (of class c) with what is discovered of its
// clusters, shared by every node moved to it.
func (s *Server) withEndpointsLocked(snap *cache.Snapshot, c snapshot.Class) *cache.Snapshot {
	if len(s.eps) == 0 || snap == nil {
		return snap
	}
	k := epsKey{snap, c}
	if out, ok := s.epsSnaps[k]; ok {
		return out
	}
	out := snap
	cdsTag := sha256.New()
	var clusters map[string]types.ResourceWithTTL
	var cdsVM map[string]string
	if c.IsEnvoy() {
		base := snap.Resources[types.Cluster]
		for _, name := range slices.Sorted(maps.Keys(base.Items)) {
			d, ok := s.eps[name]
			if !ok || !d.HTTP2 {
				continue
			}
			cl, err := withHTTP2(base.Items[name].Resource)
			if err != nil || cl == nil {
				continue
			}
			if clusters == nil {
				clusters = maps.Clone(base.Items)
				cdsVM = maps.Clone(snap.VersionMap[resource.ClusterType])
			}
			clusters[name] = types.ResourceWithTTL{Resource: cl}
			cdsVM[name] += "/h2"
			fmt.Fprintf(cdsTag, "%s\n", name)
		}
	}
	cds := snap.VersionMap[resource.ClusterType]
	if cdsVM != nil {
		cds = cdsVM
	}
	var routes map[string]types.ResourceWithTTL
	var rdsVM map[string]string
	if c.IsEnvoy() {
		routes, rdsVM = s.withWebSocketLocked(snap)
	}
	base := snap.Resources[types.Endpoint]
	var names []string
	for name := range base.Items {
		if d, ok := s.eps[name]; ok && d.Assignment != nil {
			names = append(names, name)
		}
	}
	if len(names) > 0 || clusters != nil || routes != nil {
		out = cloneSnapshot(snap)
	}
	if routes != nil {
		h := sha256.New()
		for _, name := range slices.Sorted(maps.Keys(rdsVM)) {
			fmt.Fprintf(h, "%s=%s\n", name, rdsVM[name])
		}
		out.Resources[types.Route] = cache.Resources{Version: snap.Resources[types.Route].Version + epsSep + hex.EncodeToString(h.Sum(nil))[:8], Items: routes}
		out.VersionMap[resource.RouteType] = rdsVM
	}
	if clusters != nil {
		out.Resources[types.Cluster] = cache.Resources{Version: snap.Resources[types.Cluster].Version + epsSep + hex.EncodeToString(cdsTag.Sum(nil))[:8], Items: clusters}
		out.VersionMap[resource.ClusterType] = cdsVM
	}
	if len(names) > 0 {
		sort.Strings(names)
		items := maps.Clone(base.Items)
		vm := maps.Clone(snap.VersionMap[resource.EndpointType])
		if vm == nil {
			vm = map[string]string{}
		}
		all := sha256.New()
		for _, name := range names {
			cla := s.eps[name].Assignment
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cla)
			if err != nil {
				continue // generated types always marshal
			}
			sum := sha256.Sum256(b)
			// With the cluster's hash, as snapshot.foldClusterHashes does:
			// a changed cluster gets its assignment again.
			v := "eps-" + hex.EncodeToString(sum[:8])
			if h, ok := cds[name]; ok {
				v += "/" + h
			}
			items[name] = types.ResourceWithTTL{Resource: cla}
			vm[name] = v
			fmt.Fprintf(all, "%s=%s\n", name, v)
		}
		out.Resources[types.Endpoint] = cache.Resources{Version: base.Version + epsSep + hex.EncodeToString(all.Sum(nil))[:8], Items: items}
		out.VersionMap[resource.EndpointType] = vm
	}
	if len(s.epsSnaps) >= planCacheMax {
		clear(s.epsSnaps)
	}
	s.epsSnaps[k] = out
	return out
}

// withWebSocketLocked returns the route configurations of snap with the
// websocket upgrade enabled on every route to a WebSocket cluster, and
// their version map; nil, nil when none changes. A route's
// upgrade_configs enable an upgrade the HttpConnectionManager does not
// configure (HttpConnectionManagerConfig::createUpgradeFilterChain in
// source/extensions/filters/network/http_connection_manager/config.cc:
// "Upgrades explicitly enabled on this route").
func (s *Server) withWebSocketLocked(snap *cache.Snapshot) (map[string]types.ResourceWithTTL, map[string]string) {
	ws := map[string]bool{}
	for name, d := range s.eps {
		if d.WebSocket {
			ws[name] = true
		}
	}
	if len(ws) == 0 {
		return nil, nil
	}
	base := snap.Resources[types.Route]
	var items map[string]types.ResourceWithTTL
	var vm map[string]string
	for _, name := range slices.Sorted(maps.Keys(base.Items)) {
		rc, err := asRouteConfig(base.Items[name].Resource)
		if err != nil || !enableWebSocket(rc, ws) {
			continue
		}
		if items == nil {
			items = maps.Clone(base.Items)
			vm = maps.Clone(snap.VersionMap[resource.RouteType])
		}
		items[name] = types.ResourceWithTTL{Resource: rc}
		vm[name] += "/ws"
	}
	return items, vm
}

func asRouteConfig(r types.Resource) (*routev3.RouteConfiguration, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return nil, err
	}
	rc := &routev3.RouteConfiguration{}
	return rc, proto.Unmarshal(b, rc)
}

// enableWebSocket adds the websocket upgrade to the routes of rc that send
// to a cluster of ws, and reports whether it changed any.
func enableWebSocket(rc *routev3.RouteConfiguration, ws map[string]bool) bool {
	changed := false
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			a := r.GetRoute()
			if a == nil {
				continue
			}
			to := slices.ContainsFunc(xdsres.ActionClusters(r), func(c string) bool { return ws[c] })
			if !to || slices.ContainsFunc(a.GetUpgradeConfigs(), func(u *routev3.RouteAction_UpgradeConfig) bool {
				return strings.EqualFold(u.GetUpgradeType(), "websocket")
			}) {
				continue
			}
			a.UpgradeConfigs = append(a.UpgradeConfigs, &routev3.RouteAction_UpgradeConfig{UpgradeType: "websocket"})
			changed = true
		}
	}
	return changed
}

// beforeDrain is a version without the part drain.go adds.
func beforeDrain(v string) string {
	if i := strings.Index(v, drainSep); i >= 0 {
		return v[:i]
	}
	return v
}

type epsKey struct {
	snap  *cache.Snapshot
	class snapshot.Class
}

// httpProtocolOptionsKey names Envoy's upstream HTTP protocol options in a
// cluster's typed_extension_protocol_options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// withHTTP2 is Envoy cluster r speaking HTTP/2 to its upstream: its
// HttpProtocolOptions with an explicit HTTP/2 config (its other options
// kept). Envoy reads the upstream protocol from
// typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.
// HttpProtocolOptions"] (ProtocolOptionsConfigImpl in
// source/extensions/upstreams/http/config.cc: explicit_http_config's
// http2_protocol_options selects HTTP/2 for every connection). nil when
// it speaks HTTP/2 already.
func withHTTP2(r types.Resource) (*clusterv3.Cluster, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return nil, err
	}
	cl := &clusterv3.Cluster{}
	if err := proto.Unmarshal(b, cl); err != nil {
		return nil, err
	}
	opts := &httpv3.HttpProtocolOptions{}
	if a := cl.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]; a != nil {
		if err := a.UnmarshalTo(opts); err != nil {
			return nil, err
		}
	}
	if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
		return nil, nil
	}
	opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
	}}
	a, err := anypb.New(opts)
	if err != nil {
		return nil, err
	}
	if cl.TypedExtensionProtocolOptions == nil {
		cl.TypedExtensionProtocolOptions = map[string]*anypb.Any{}
	}
	cl.TypedExtensionProtocolOptions[httpProtocolOptionsKey] = a
	return cl, cl.ValidateAll()
}

// reportServiceClustersLocked tells Options.ServiceClusters the EDS
// Service clusters of every Set a node may be moved to (the default, the
// assignments, each node's served and last good Set), when they change.
func (s *Server) reportServiceClustersLocked() {
	if s.opts.ServiceClusters == nil {
		return
	}
	sets := map[*snapshot.Set]bool{}
	add := func(set *snapshot.Set) {
		if set != nil {
			sets[set] = true
		}
	}
	add(s.def)
	for _, set := range s.assigned {
		add(set)
	}
	for _, n := range s.nodes {
		add(n.served)
		add(n.lastGood)
	}
	names := map[string]bool{}
	for set := range sets {
		cs, ok := s.svcClusters[set]
		if !ok {
			cs = serviceClusters(set)
		}
		for _, c := range cs {
			names[c] = true
		}
	}
	for set := range s.svcClusters {
		if !sets[set] {
			delete(s.svcClusters, set)
		}
	}
	for set := range sets {
		if _, ok := s.svcClusters[set]; !ok {
			s.svcClusters[set] = serviceClusters(set)
		}
	}
	list := slices.Sorted(maps.Keys(names))
	if slices.Equal(list, s.svcReported) && s.svcReported != nil {
		return
	}
	s.svcReported = list
	s.opts.ServiceClusters(list)
}

// serviceClusters are the EDS clusters of set named after a Service
// (ir.ServiceClusterName), of every class of every proxy group.
func serviceClusters(set *snapshot.Set) []string {
	seen := map[string]bool{}
	var out []string
	var all []*snapshot.Resources
	for _, g := range append([]snapshot.Group{snapshot.DefaultGroup}, set.GroupNames()...) {
		for _, c := range snapshot.Classes {
			all = append(all, set.In(g).Of(c))
		}
	}
	for _, res := range all {
		if res == nil {
			continue
		}
		for _, cl := range res.Clusters {
			if cl.GetType() != clusterv3.Cluster_EDS || seen[cl.GetName()] {
				continue
			}
			if _, ok := ir.ParseServiceCluster(cl.GetName()); ok {
				seen[cl.GetName()] = true
				out = append(out, cl.GetName())
			}
		}
	}
	return out
}
