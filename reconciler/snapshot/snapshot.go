// Package snapshot holds the xDS resources of one revision, per node class,
// with content-hash versions. A Set is immutable once built: the xDS server,
// the rollout, the diff and the state store all share the same value.
package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"gitxds.dev/gitxds/reconciler/xdsres"
)

// Class of node: what kind of xDS client it is, which decides the resources
// it is served.
type Class string

const (
	// Envoy proxies get socket listeners with one RouteConfiguration per
	// port over RDS: every Envoy not known to be EnvoyScoped.
	Envoy Class = "envoy"
	// EnvoyScoped is Envoy 1.38 or later (see ScopedRoutesSince): the same
	// listeners, with scoped routes (SRDS, one RouteConfiguration per
	// hostname) on the ports where they apply.
	EnvoyScoped Class = "envoy-scoped"
	// GRPC is proxyless gRPC: API listeners named after route hostnames.
	GRPC Class = "grpc"
)

// Classes in a stable order.
var Classes = []Class{Envoy, EnvoyScoped, GRPC}

// IsEnvoy reports whether c is a class of Envoy proxies.
func (c Class) IsEnvoy() bool { return c == Envoy || c == EnvoyScoped }

// ScopedRoutesSince is the first Envoy release whose scoped routes start
// when the first listener that uses them is added after the server
// started. Before it, SrdsFactoryDefault registered the SRDS subscription
// with the server's init manager, and ManagerImpl::add on an initialized
// manager does nothing in release builds (source/common/init/
// manager_impl.cc), so such a listener never sends its SRDS request and
// answers 404 forever (fixed by envoyproxy/envoy PR #43392, commit
// 974bfecee8, first released in 1.38).
var ScopedRoutesSince = [2]uint32{1, 38}

// ClassOf tells a node's class from its user agent: Envoy by
// user_agent_name, EnvoyScoped when its user_agent_build_version is
// ScopedRoutesSince or later (a node without a version is Envoy), gRPC
// otherwise.
func ClassOf(node *corev3.Node) Class {
	if node.GetUserAgentName() != "envoy" {
		return GRPC
	}
	v := node.GetUserAgentBuildVersion().GetVersion()
	if v == nil {
		return Envoy
	}
	if maj, min := v.GetMajorNumber(), v.GetMinorNumber(); maj > ScopedRoutesSince[0] ||
		maj == ScopedRoutesSince[0] && min >= ScopedRoutesSince[1] {
		return EnvoyScoped
	}
	return Envoy
}

// Labels are the string fields of the node's metadata.
func Labels(node *corev3.Node) map[string]string {
	out := map[string]string{}
	for k, v := range node.GetMetadata().GetFields() {
		if sv, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			out[k] = sv.StringValue
		}
	}
	return out
}

// Group is a proxy group: the nodes that serve the Gateways of platform/
// annotated gitxds.dev/proxy-group with its name, and only those. The
// default group (DefaultGroup, "") serves the Gateways without the
// annotation to the nodes that declare no group.
type Group string

// DefaultGroup is the group of nodes and Gateways that name none.
const DefaultGroup Group = ""

// GroupLabel is the node metadata key (a label, see Labels) that names a
// node's proxy group; the Gateway annotation has the same name. When the
// xDS server pins labels to client certificates, the pinned labels decide
// it, as they decide every other label.
const GroupLabel = "gitxds.dev/proxy-group"

// GroupOf is the proxy group named by a node's labels.
func GroupOf(labels map[string]string) Group { return Group(labels[GroupLabel]) }

// Resources of one node class, each slice sorted by resource name.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// ScopedRoutes map a request's scope key to a route configuration
	// (Envoy's SRDS); only Envoy nodes get them.
	ScopedRoutes []*routev3.ScopedRouteConfiguration
	// Secrets are the TLS certificates of HTTPS listeners (SDS): file
	// paths on the proxy host, never key material. Only Envoy nodes get
	// them.
	Secrets []*tlsv3.Secret
}

// TypeURLs in the order the fleet must receive them on the way in: what a
// resource refers to comes before it (a secret before the listener whose
// TLS context names it, a scope before the route configuration it names:
// Envoy subscribes to that name when it gets the scope).
var TypeURLs = []string{resource.ClusterType, resource.EndpointType, resource.SecretType, resource.ListenerType, resource.ScopedRouteType, resource.RouteType}

// ByType returns the resources of one type URL.
func (r *Resources) ByType(typeURL string) []types.Resource {
	var out []types.Resource
	switch typeURL {
	case resource.ListenerType:
		for _, x := range r.Listeners {
			out = append(out, x)
		}
	case resource.RouteType:
		for _, x := range r.Routes {
			out = append(out, x)
		}
	case resource.ClusterType:
		for _, x := range r.Clusters {
			out = append(out, x)
		}
	case resource.EndpointType:
		for _, x := range r.Endpoints {
			out = append(out, x)
		}
	case resource.ScopedRouteType:
		for _, x := range r.ScopedRoutes {
			out = append(out, x)
		}
	case resource.SecretType:
		for _, x := range r.Secrets {
			out = append(out, x)
		}
	}
	return out
}

// Sort orders every slice by resource name.
func (r *Resources) Sort() {
	sort.Slice(r.Listeners, func(i, j int) bool { return r.Listeners[i].GetName() < r.Listeners[j].GetName() })
	sort.Slice(r.Routes, func(i, j int) bool { return r.Routes[i].GetName() < r.Routes[j].GetName() })
	sort.Slice(r.Clusters, func(i, j int) bool { return r.Clusters[i].GetName() < r.Clusters[j].GetName() })
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].GetClusterName() < r.Endpoints[j].GetClusterName() })
	sort.Slice(r.ScopedRoutes, func(i, j int) bool { return r.ScopedRoutes[i].GetName() < r.ScopedRoutes[j].GetName() })
	sort.Slice(r.Secrets, func(i, j int) bool { return r.Secrets[i].GetName() < r.Secrets[j].GetName() })
}

// Set is what one revision serves: resources per node class, of the
// default proxy group, and a Set per named proxy group.
type Set struct {
	// Revision is the source revision it was built from ("main@sha1:...").
	Revision string
	// Classes are the resources of the default group.
	Classes map[Class]*Resources
	// Groups are the Sets of the named proxy groups (each with this
	// Revision and no Groups of its own); nil when the repository names
	// none. Use In to pick a node's.
	Groups map[Group]*Set

	emptyOnce sync.Once
	empty     *Set // In of a group the Set does not have

	once     sync.Once
	versions map[Class]map[string]string // class -> type URL -> content hash
	hash     string
	snaps    map[Class]*cache.Snapshot
	snapErr  error
}

// New returns a Set over the given resources; it sorts them.
func New(revision string, classes map[Class]*Resources) *Set {
	for _, r := range classes {
		r.Sort()
	}
	return &Set{Revision: revision, Classes: classes}
}

// NewGroups returns a Set over the resources of each proxy group:
// groups[DefaultGroup] are its Classes, every other group a Set of Groups
// (none when groups has the default group alone).
func NewGroups(revision string, groups map[Group]map[Class]*Resources) *Set {
	s := New(revision, groups[DefaultGroup])
	for g, classes := range groups {
		if g == DefaultGroup {
			continue
		}
		if s.Groups == nil {
			s.Groups = map[Group]*Set{}
		}
		s.Groups[g] = New(revision, classes)
	}
	return s
}

// In returns the Set of proxy group g: s itself for DefaultGroup, an empty
// Set (of s's Revision) for a group s does not have, so a node of a group
// with no Gateway is served nothing rather than another group's config.
func (s *Set) In(g Group) *Set {
	if g == DefaultGroup {
		return s
	}
	if gs := s.Groups[g]; gs != nil {
		return gs
	}
	s.emptyOnce.Do(func() { s.empty = New(s.Revision, nil) })
	return s.empty
}

// GroupNames lists the named groups of s, sorted (DefaultGroup is not in it).
func (s *Set) GroupNames() []Group {
	out := make([]Group, 0, len(s.Groups))
	for g := range s.Groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (s *Set) init() {
	s.once.Do(func() {
		s.versions = map[Class]map[string]string{}
		s.snaps = map[Class]*cache.Snapshot{}
		all := sha256.New()
		for _, c := range Classes {
			res := s.Of(c)
			if res == nil {
				res = &Resources{}
			}
			vs := map[string]string{}
			byType := map[resource.Type][]types.Resource{}
			for _, t := range TypeURLs {
				items := res.ByType(t)
				var raws [][]byte
				vs[t], raws = hashResources(items)
				byType[t] = premarshalAll(items, raws)
				fmt.Fprintf(all, "%s/%s=%s\n", c, t, vs[t])
			}
			s.versions[c] = vs
			snap := &cache.Snapshot{}
			for t, items := range byType {
				snap.Resources[cache.GetResponseType(t)] = cache.NewResources(vs[t], items)
			}
			if err := snap.ConstructVersionMap(); err != nil && s.snapErr == nil {
				s.snapErr = err
			}
			if c.IsEnvoy() {
				// After the Set's hash: it holds both parts already.
				foldClusterHashes(snap, res.Clusters)
				vs[resource.EndpointType] = snap.GetVersion(resource.EndpointType)
			}
			s.snaps[c] = snap
		}
		// A Set without groups hashes as it did before groups existed.
		for _, g := range s.GroupNames() {
			fmt.Fprintf(all, "group %s=%s\n", g, s.Groups[g].Hash())
		}
		s.hash = hex.EncodeToString(all.Sum(nil))[:16]
	})
}

// Of returns the resources of class c. A Set without EnvoyScoped (written
// by a gitxds that had one Envoy class, or built for Envoy alone) serves
// its Envoy resources to EnvoyScoped nodes: they run any Envoy's config,
// and a node is never served nothing for want of its class.
func (s *Set) Of(c Class) *Resources {
	if r := s.Classes[c]; r != nil || c != EnvoyScoped {
		return r
	}
	return s.Classes[Envoy]
}

// Hash is the content hash of everything served (the revision is not part
// of it): two Sets with the same Hash serve the same bytes.
func (s *Set) Hash() string {
	s.init()
	return s.hash
}

// Version is the content hash of one type of one class of the default
// group (s.In(g).Version for group g).
func (s *Set) Version(c Class, typeURL string) string {
	s.init()
	return s.versions[c][typeURL]
}

// CacheSnapshot is the go-control-plane snapshot for a class, built once and
// shared by every node of that class.
func (s *Set) CacheSnapshot(c Class) (*cache.Snapshot, error) {
	s.init()
	return s.snaps[c], s.snapErr
}

// hashResources returns the content hash of items and each one's
// deterministic wire bytes.
func hashResources(items []types.Resource) (string, [][]byte) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	raws := make([][]byte, len(items))
	for i, it := range items {
		b, err := opts.Marshal(it)
		if err != nil {
			panic(fmt.Sprintf("marshal %T: %v", it, err)) // generated types always marshal
		}
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
		raws[i] = b
	}
	return hex.EncodeToString(h.Sum(nil))[:16], raws
}

// An Envoy cluster updated over CDS needs its ClusterLoadAssignment again,
// even an unchanged one. Envoy rebuilds a cluster whose configuration hash
// changed and warms the new one (ClusterManagerImpl::addOrUpdateCluster in
// source/common/upstream/cluster_manager_impl.cc); an EDS cluster warms
// until its new subscription delivers an assignment
// (EdsClusterImpl::startPreInit and onConfigUpdate in
// source/extensions/clusters/eds/eds.cc; the xDS protocol docs: "Warming of
// Cluster is completed only when a new ClusterLoadAssignment response is
// supplied"). Envoy's request for it can be byte-identical to its last EDS
// ACK, and in delta it may send none. An assignment that was not sent
// again leaves the cluster warming until the initial fetch timeout (15 s),
// or on Envoy 1.30–1.31 without endpoints.
//
// So for Envoy nodes the EDS version and each assignment's content hash
// include the hash of the cluster that uses it: a changed or new cluster
// changes its assignment's hash, the xDS server sends it again after the
// cluster (EDS is the stage after CDS), and a held EDS request, however it
// was worded, is answered then.

// foldClusterHashes appends to each assignment's content hash in snap's
// version map the hash of the cluster it is the endpoints of (the
// cluster's EDS service_name, else its name), and makes the EDS version
// follow: it changes when an assignment's folded hash does, so a change
// to a cluster without assignment (not EDS) does not move it.
func foldClusterHashes(snap *cache.Snapshot, clusters []*clusterv3.Cluster) {
	eds := snap.VersionMap[resource.EndpointType]
	cds := snap.VersionMap[resource.ClusterType]
	var folded []string
	for _, c := range clusters {
		name := xdsres.EDSName(c)
		if h, ok := eds[name]; ok {
			eds[name] = h + "/" + cds[c.GetName()]
			folded = append(folded, name+"="+eds[name])
		}
	}
	if len(folded) == 0 {
		return
	}
	sort.Strings(folded)
	r := snap.Resources[types.Endpoint]
	h := sha256.Sum256([]byte(r.Version + "|" + strings.Join(folded, "\n")))
	r.Version = hex.EncodeToString(h[:])[:16]
	snap.Resources[types.Endpoint] = r
}
