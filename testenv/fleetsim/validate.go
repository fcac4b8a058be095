package fleetsim

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

type validator interface {
	proto.Message
	ValidateAll() error
}

// Validate decodes every resource of a response of typeURL and runs its
// ValidateAll, as a careful client would before applying it.
func Validate(typeURL string, resources []*anypb.Any) error {
	for i, a := range resources {
		var m validator
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
			return fmt.Errorf("unexpected type %s", typeURL)
		}
		if a.GetTypeUrl() != typeURL {
			return fmt.Errorf("resource %d: type %s in a response of %s", i, a.GetTypeUrl(), typeURL)
		}
		if err := proto.Unmarshal(a.GetValue(), m); err != nil {
			return fmt.Errorf("resource %d: %w", i, err)
		}
		if err := m.ValidateAll(); err != nil {
			return fmt.Errorf("resource %d: %w", i, err)
		}
	}
	return nil
}
