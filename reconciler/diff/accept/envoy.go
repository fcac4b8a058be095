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
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/translate"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/reconciler/xdsres"
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
		rds = append(rds, xdsres.RouteConfigNames(l)...)
	}
	for _, sc := range res.ScopedRoutes {
		rds = append(rds, sc.GetRouteConfigurationName())
	}
	fetched := map[string]int{
		resource.ListenerType:    len(res.Listeners), // wildcard
		resource.ClusterType:     len(res.Clusters),  // wildcard
		resource.EndpointType:    len(xdsres.EDSNames(res.Clusters)),
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
	if len(xdsres.EDSNames(r.Clusters)) > 0 {
		need[resource.EndpointType] = true
	}
	for _, l := range r.Listeners {
		if len(xdsres.RouteConfigNames(l)) > 0 {
			need[resource.RouteType] = true
		}
		if len(listenerSecrets(l)) > 0 {
			need[resource.SecretType] = true
		}
		if len(xdsres.ScopedRoutesNames(l)) > 0 {
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
			err = subscribe(resource.EndpointType, xdsres.EDSNames(cs))
		case resource.ListenerType:
			byListeners = nil
			scoped := false
			for _, m := range msgs {
				byListeners = append(byListeners, xdsres.RouteConfigNames(m.(*listenerv3.Listener))...)
				scoped = scoped || len(xdsres.ScopedRoutesNames(m.(*listenerv3.Listener))) > 0
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
					secrets = append(secrets, listenerSecrets(m.(*listenerv3.Listener))...)
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
		if err := xdsres.Validate(m); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", xdsres.Name(m), err))
			continue
		}
		if serrs := translate.CheckResource(class, m); len(serrs) > 0 {
			errs = append(errs, fmt.Errorf("%s: %w", xdsres.Name(m), errors.Join(serrs...)))
			continue
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

// listenerSecrets are the secrets the TLS contexts of a listener name (a
// transport socket that is not a TLS context names none).
func listenerSecrets(l *listenerv3.Listener) []string {
	return xdsres.References(l)[resource.SecretType]
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
