package snapshot

import (
	"bytes"
	"encoding/json"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/xdsres"
)

// ParseRenderJSON reads back what RenderJSON printed (the body of the admin
// API's GET /snapshot, `gitxds render -o json`). RenderJSON merges the
// classes, so the classes are inferred: API listeners and the route
// configurations they fetch are GRPC, every other listener and route
// configuration, and every cluster and endpoint set, are Envoy. A Set
// rendered and parsed back this way therefore compares equal to another
// Set rendered and parsed back, not to the Set it was rendered from. The
// proxy groups ("groups") are read back as groups.
func ParseRenderJSON(data []byte) (*Set, error) {
	var in rendered
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("snapshot: parse rendered JSON: %w", err)
	}
	groups := map[Group]map[Class]*Resources{}
	var err error
	if groups[DefaultGroup], err = parseRendered(&in); err != nil {
		return nil, err
	}
	for g, r := range in.Groups {
		if g == DefaultGroup || r == nil {
			return nil, fmt.Errorf("snapshot: parse rendered JSON: group %q", g)
		}
		if groups[g], err = parseRendered(r); err != nil {
			return nil, fmt.Errorf("group %s: %w", g, err)
		}
	}
	return NewGroups(in.Revision, groups), nil
}

// parseRendered is the classes of one group of ParseRenderJSON.
func parseRendered(in *rendered) (map[Class]*Resources, error) {
	envoy, grpc := &Resources{}, &Resources{}
	ls, err := decodeTyped[listenerv3.Listener](in.Listeners)
	if err != nil {
		return nil, fmt.Errorf("snapshot: listeners: %w", err)
	}
	grpcRoutes := map[string]bool{}
	for _, l := range ls {
		if l.GetApiListener() == nil {
			envoy.Listeners = append(envoy.Listeners, l)
			continue
		}
		grpc.Listeners = append(grpc.Listeners, l)
		for _, n := range xdsres.RouteConfigNames(l) {
			grpcRoutes[n] = true
		}
	}
	rcs, err := decodeTyped[routev3.RouteConfiguration](in.Routes)
	if err != nil {
		return nil, fmt.Errorf("snapshot: routes: %w", err)
	}
	for _, rc := range rcs {
		if grpcRoutes[rc.GetName()] {
			grpc.Routes = append(grpc.Routes, rc)
		} else {
			envoy.Routes = append(envoy.Routes, rc)
		}
	}
	if envoy.Clusters, err = decodeTyped[clusterv3.Cluster](in.Clusters); err != nil {
		return nil, fmt.Errorf("snapshot: clusters: %w", err)
	}
	if envoy.Endpoints, err = decodeTyped[endpointv3.ClusterLoadAssignment](in.Endpoints); err != nil {
		return nil, fmt.Errorf("snapshot: endpoints: %w", err)
	}
	if envoy.ScopedRoutes, err = decodeTyped[routev3.ScopedRouteConfiguration](in.ScopedRoutes); err != nil {
		return nil, fmt.Errorf("snapshot: scoped routes: %w", err)
	}
	if envoy.Secrets, err = decodeTyped[tlsv3.Secret](in.Secrets); err != nil {
		return nil, fmt.Errorf("snapshot: secrets: %w", err)
	}
	return map[Class]*Resources{Envoy: envoy, GRPC: grpc}, nil
}

// decodeTyped decodes protojson objects with "@type" into T, checking the
// type.
func decodeTyped[T any, P interface {
	*T
	proto.Message
}](raw []json.RawMessage) ([]P, error) {
	out := make([]P, 0, len(raw))
	for i, b := range raw {
		a := &anypb.Any{}
		if err := protojson.Unmarshal(b, a); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		m := P(new(T))
		if err := a.UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}
