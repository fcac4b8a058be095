// Package xdsres is the one toolkit over the xDS resources gitxds serves:
// the six resource types by type URL, the HttpConnectionManagers of a
// listener, the names one resource refers to (listener → route
// configuration, scoped routes and secret; scope → route configuration;
// route configuration → cluster; cluster → load assignment), and deep
// validation (protoc-gen-validate's ValidateAll on a resource and on every
// message packed in an Any inside it).
//
// translate (its consistency and semantics checks), diff, snapshot,
// diff/accept and the test harnesses that play a node all use it, so that
// no reference walk is written twice. It depends on the generated Envoy
// types alone: nothing of the pipeline, the xDS server or the rollout.
package xdsres

import (
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// New returns an empty resource of typeURL, one of the six types gitxds
// serves (CDS, EDS, LDS, RDS, SRDS, SDS); nil for any other type.
func New(typeURL string) proto.Message {
	switch typeURL {
	case resource.ClusterType:
		return &clusterv3.Cluster{}
	case resource.EndpointType:
		return &endpointv3.ClusterLoadAssignment{}
	case resource.ListenerType:
		return &listenerv3.Listener{}
	case resource.RouteType:
		return &routev3.RouteConfiguration{}
	case resource.ScopedRouteType:
		return &routev3.ScopedRouteConfiguration{}
	case resource.SecretType:
		return &tlsv3.Secret{}
	}
	return nil
}

// Decode reads the wire bytes of a resource of typeURL.
func Decode(typeURL string, b []byte) (proto.Message, error) {
	m := New(typeURL)
	if m == nil {
		return nil, &UnknownTypeError{TypeURL: typeURL}
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// ShortType is the message name of a type URL, "Cluster" for
// "type.googleapis.com/envoy.config.cluster.v3.Cluster": what logs, metrics
// and status show.
func ShortType(typeURL string) string {
	if i := strings.LastIndex(typeURL, "."); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}

// UnknownTypeError is the error of Decode for a type that is not one of
// the six.
type UnknownTypeError struct{ TypeURL string }

func (e *UnknownTypeError) Error() string { return "unexpected type " + e.TypeURL }

// Name is a resource's name: its name, or the cluster_name of a load
// assignment; the full name of the message's type when it has neither.
func Name(m proto.Message) string {
	if n, ok := m.(interface{ GetName() string }); ok {
		return n.GetName()
	}
	if n, ok := m.(interface{ GetClusterName() string }); ok {
		return n.GetClusterName()
	}
	return string(m.ProtoReflect().Descriptor().FullName())
}

// WireName reads a resource's name from its wire bytes without decoding
// it: field 1 of each of the six types (the name, or a load assignment's
// cluster_name). "" when the bytes have no field 1.
func WireName(b []byte) string {
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
