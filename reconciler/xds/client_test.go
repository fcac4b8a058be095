package xds

import (
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"gitxds.dev/gitxds/testenv/fleetsim"
)

// The nodes of these tests are testenv/fleetsim's, with nodeOpts: they
// behave like Envoy, subscribe to every type (wildcard), ACK what they
// accept, NACK what their rule rejects, and record every response in
// arrival order and every resource they hold.

// fourTypes are what the nodes subscribe to: the test Sets have no scoped
// routes (the scale harness and translate's tests cover those).
var fourTypes = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// nodeOpts are the options of a recording node of the four types that
// validates nothing: what it rejects, the test says.
func nodeOpts(id, userAgent string, labels map[string]string) fleetsim.NodeOptions {
	return fleetsim.NodeOptions{ID: id, UserAgent: userAgent, Labels: labels, Types: fourTypes,
		Validate: fleetsim.ValidateNone, Record: true}
}

// connectSotw opens a node's state of the world ADS stream; it asks for
// its types in order (CDS, EDS, LDS, RDS, as Envoy does at startup).
func connectSotw(t *testing.T, addr string, o fleetsim.NodeOptions) *fleetsim.Node {
	t.Helper()
	return fleetsim.ConnectT(t, addr, o)
}

// connectDelta opens a node's delta ADS stream with wildcard subscriptions
// to its types; subscribe names the resources of a type instead.
func connectDelta(t *testing.T, addr string, o fleetsim.NodeOptions, subscribe map[string][]string) *fleetsim.Node {
	t.Helper()
	o.Delta, o.Subscribe = true, subscribe
	return fleetsim.ConnectT(t, addr, o)
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
