package accept

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/translate"
	"gitxds.dev/gitxds/reconciler/xds"
)

// envoyNodeID is the node id of the Envoy-like client of class Envoy; the
// client of class EnvoyScoped adds "-scoped".
const envoyNodeID = "gitxds-preview/envoy"

// envoyNode is how the Envoy-like client of a class introduces itself: an
// Envoy of version snapshot.ScopedRoutesSince for EnvoyScoped, without a
// version for Envoy.
func envoyNode(class snapshot.Class) *corev3.Node {
	node := &corev3.Node{Id: envoyNodeID, Cluster: "gitxds-preview", UserAgentName: "envoy"}
	if class == snapshot.EnvoyScoped {
		node.Id += "-scoped"
		node.UserAgentVersionType = &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: snapshot.ScopedRoutesSince[0], MinorNumber: snapshot.ScopedRoutesSince[1]},
		}}
	}
	return node
}

// checkEnvoy runs the Envoy-like ADS client of a class against the server
// until the server has recorded its answer to every type it needs.
func checkEnvoy(ctx context.Context, srv *xds.Server, addr string, set *snapshot.Set, class snapshot.Class) ClassResult {
	cr := ClassResult{Class: class, Client: EnvoyClient, Nodes: 1}
	node := envoyNode(class)
	want := expectation{node.GetId(): envoyNeeds(set.Classes[class])}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- runEnvoy(cctx, addr, node) }()
	cr.Types = tally(class, set, want, wait(ctx, srv, class, set, want))
	res := set.Classes[class]
	var rds []string
	for _, l := range res.Listeners {
		rds = append(rds, listenerRDS(l)...)
	}
	for _, sc := range res.ScopedRoutes {
		rds = append(rds, sc.GetRouteConfigurationName())
	}
	fetched := map[string]int{
		resource.ListenerType:    len(res.Listeners), // wildcard
		resource.ClusterType:     len(res.Clusters),  // wildcard
		resource.EndpointType:    len(edsNames(res.Clusters)),
		resource.RouteType:       len(uniq(rds)),
		resource.ScopedRouteType: len(res.ScopedRoutes), // wildcard
		resource.SecretType:      len(res.Secrets),
	}
	for i := range cr.Types {
		cr.Types[i].Fetched = fetched[cr.Types[i].TypeURL]
	}
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		for i := range cr.Types {
			if cr.Types[i].Status == Timeout {
				cr.Types[i].Error += " (client: " + err.Error() + ")"
			}
		}
	}
	return cr
}

// envoyNeeds are the types an Envoy subscribes to for these resources:
// CDS and LDS always, EDS when a cluster uses it, RDS when a listener or a
// scope does, SRDS when a listener uses scoped routes, SDS when a TLS
// context names a secret.
func envoyNeeds(r *snapshot.Resources) map[string]bool {
	need := map[string]bool{resource.ClusterType: true, resource.ListenerType: true}
	if len(edsNames(r.Clusters)) > 0 {
		need[resource.EndpointType] = true
	}
	for _, l := range r.Listeners {
		if len(listenerRDS(l)) > 0 {
			need[resource.RouteType] = true
		}
		if len(listenerSDS(l)) > 0 {
			need[resource.SecretType] = true
		}
		if listenerScoped(l) {
			need[resource.ScopedRouteType] = true
			if len(r.ScopedRoutes) > 0 {
				need[resource.RouteType] = true
			}
		}
	}
	return need
}

// runEnvoy is one ADS stream that subscribes like Envoy and ACKs or NACKs
// every response after validating it.
func runEnvoy(ctx context.Context, addr string, node *corev3.Node) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	// Last accepted version and the names subscribed, per type.
	accepted := map[string]string{}
	subscribed := map[string][]string{}
	// Route configurations named by listeners and by scopes: RDS asks
	// for both.
	var byListeners, byScopes []string
	scopedRDS := false
	send := func(t string, names []string, version, nonce string, detail *spb.Status) error {
		return stream.Send(&discoverygrpc.DiscoveryRequest{Node: node, TypeUrl: t, ResourceNames: names,
			VersionInfo: version, ResponseNonce: nonce, ErrorDetail: detail})
	}
	subscribe := func(t string, names []string) error {
		sort.Strings(names)
		if len(names) == 0 || strings.Join(names, "\x00") == strings.Join(subscribed[t], "\x00") {
			return nil
		}
		subscribed[t] = names
		return send(t, names, accepted[t], "", nil)
	}
	if err := send(resource.ClusterType, nil, "", "", nil); err != nil {
		return err
	}
	if err := send(resource.ListenerType, nil, "", "", nil); err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		t := resp.GetTypeUrl()
		msgs, verr := validateResponse(resp, snapshot.ClassOf(node))
		if verr != nil {
			detail := &spb.Status{Code: int32(codes.InvalidArgument), Message: verr.Error()}
			if err := send(t, subscribed[t], accepted[t], resp.GetNonce(), detail); err != nil {
				return err
			}
			continue
		}
		accepted[t] = resp.GetVersionInfo()
		if err := send(t, subscribed[t], resp.GetVersionInfo(), resp.GetNonce(), nil); err != nil {
			return err
		}
		switch t {
		case resource.ClusterType:
			var cs []*clusterv3.Cluster
			for _, m := range msgs {
				cs = append(cs, m.(*clusterv3.Cluster))
			}
			err = subscribe(resource.EndpointType, edsNames(cs))
		case resource.ListenerType:
			byListeners = nil
			scoped := false
			for _, m := range msgs {
				byListeners = append(byListeners, listenerRDS(m.(*listenerv3.Listener))...)
				scoped = scoped || listenerScoped(m.(*listenerv3.Listener))
			}
			if scoped && !scopedRDS {
				// SRDS is a wildcard subscription, like LDS and CDS.
				scopedRDS = true
				err = send(resource.ScopedRouteType, nil, "", "", nil)
			}
			if err == nil {
				err = subscribe(resource.RouteType, uniq(append(slices.Clone(byListeners), byScopes...)))
			}
			if err == nil {
				// Envoy asks for the secrets the TLS contexts name.
				var secrets []string
				for _, m := range msgs {
					secrets = append(secrets, listenerSDS(m.(*listenerv3.Listener))...)
				}
				err = subscribe(resource.SecretType, uniq(secrets))
			}
		case resource.ScopedRouteType:
			byScopes = nil
			for _, m := range msgs {
				byScopes = append(byScopes, m.(*routev3.ScopedRouteConfiguration).GetRouteConfigurationName())
			}
			err = subscribe(resource.RouteType, uniq(append(slices.Clone(byListeners), byScopes...)))
		}
		if err != nil {
			return err
		}
	}
}

// validator is what generated Envoy types implement.
type validator interface{ ValidateAll() error }

// validateResponse decodes and validates every resource of a response, and
// every Any nested in it, then applies the load-time rules Envoy enforces
// beyond validation (translate.CheckResource), as a node of class would.
func validateResponse(resp *discoverygrpc.DiscoveryResponse, class snapshot.Class) ([]proto.Message, error) {
	var out []proto.Message
	var errs []error
	for _, a := range resp.GetResources() {
		if a.GetTypeUrl() != resp.GetTypeUrl() {
			errs = append(errs, fmt.Errorf("resource of type %s in a %s response", a.GetTypeUrl(), resp.GetTypeUrl()))
			continue
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("decode %s: %w", a.GetTypeUrl(), err))
			continue
		}
		if err := validateDeep(m); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", resourceName(m), err))
			continue
		}
		if serrs := translate.CheckResource(class, m); len(serrs) > 0 {
			errs = append(errs, fmt.Errorf("%s: %w", resourceName(m), errors.Join(serrs...)))
			continue
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

func resourceName(m proto.Message) string {
	if n, ok := m.(interface{ GetName() string }); ok {
		return n.GetName()
	}
	if n, ok := m.(interface{ GetClusterName() string }); ok {
		return n.GetClusterName()
	}
	return string(m.ProtoReflect().Descriptor().FullName())
}

// validateDeep runs ValidateAll on m and, since validation does not look
// inside an Any, on every message packed in an Any anywhere inside m. An Any
// whose type is not linked into the binary is an error, as in Envoy, which
// rejects a typed config of an extension it does not have.
func validateDeep(m proto.Message) error {
	var errs []error
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, err)
		}
	}
	if translate.EnablesOnly(m) {
		// Its config is an empty Any, which enables a filter; Envoy does
		// not unpack it (translate.enableFilter).
		return errors.Join(errs...)
	}
	walkAnys(m.ProtoReflect(), func(a *anypb.Any) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err))
			return
		}
		if err := validateDeep(inner); err != nil {
			errs = append(errs, fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err))
		}
	})
	return errors.Join(errs...)
}

// walkAnys calls fn for every Any directly reachable in m (not inside
// another Any: validateDeep recurses into those).
func walkAnys(m protoreflect.Message, fn func(*anypb.Any)) {
	translate.EachChild(m, func(x protoreflect.Message) {
		if a, ok := x.Interface().(*anypb.Any); ok {
			fn(a)
			return
		}
		walkAnys(x, fn)
	})
}

// edsNames are the clusters that get their endpoints by EDS.
func edsNames(cs []*clusterv3.Cluster) []string {
	var out []string
	for _, c := range cs {
		if c.GetType() == clusterv3.Cluster_EDS {
			n := c.GetEdsClusterConfig().GetServiceName()
			if n == "" {
				n = c.GetName()
			}
			out = append(out, n)
		}
	}
	return out
}

// listenerSDS are the secrets the TLS contexts of a listener name.
func listenerSDS(l *listenerv3.Listener) []string {
	var out []string
	for _, fc := range l.GetFilterChains() {
		ctx := &tlsv3.DownstreamTlsContext{}
		if a := fc.GetTransportSocket().GetTypedConfig(); a == nil || a.UnmarshalTo(ctx) != nil {
			continue
		}
		for _, sc := range ctx.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs() {
			out = append(out, sc.GetName())
		}
	}
	return out
}

// listenerRDS are the route configurations a listener fetches by RDS.
func listenerRDS(l *listenerv3.Listener) []string {
	var out []string
	add := func(a *anypb.Any) {
		h := &hcmv3.HttpConnectionManager{}
		if a == nil || a.UnmarshalTo(h) != nil {
			return
		}
		if n := h.GetRds().GetRouteConfigName(); n != "" {
			out = append(out, n)
		}
	}
	add(l.GetApiListener().GetApiListener())
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			add(f.GetTypedConfig())
		}
	}
	return out
}

// listenerScoped reports whether an HttpConnectionManager of l uses scoped
// routes (SRDS).
func listenerScoped(l *listenerv3.Listener) bool {
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			h := &hcmv3.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(h) == nil && h.GetScopedRoutes() != nil {
				return true
			}
		}
	}
	return false
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
