package envoy

import (
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// The bootstrap is a valid Envoy Bootstrap (what Envoy checks first),
// tested without Envoy.
func TestBootstrapIsValid(t *testing.T) {
	bs, err := Bootstrap(Options{XDSAddr: "127.0.0.1:18000", NodeID: "envoy-1", Metadata: map[string]string{"rollout-group": "canary", "q": `a "b"`}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON([]byte(bs))
	if err != nil {
		t.Fatalf("%v\n%s", err, bs)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(j, &b); err != nil {
		t.Fatalf("%v\n%s", err, bs)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if b.GetNode().GetId() != "envoy-1" || b.GetNode().GetMetadata().GetFields()["q"].GetStringValue() != `a "b"` {
		t.Errorf("node %v", b.GetNode())
	}
	if a := b.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress(); a.GetAddress() != "127.0.0.1" || a.GetPortValue() != 18000 {
		t.Errorf("xDS cluster address %v", a)
	}
}
