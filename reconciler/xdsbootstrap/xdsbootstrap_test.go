package xdsbootstrap

import "testing"

// The bootstrap is what gRPC-Go and grpc-js read: the node's optional
// fields are left out unless set, and a locality is written empty.
func TestInsecure(t *testing.T) {
	for _, c := range []struct {
		node Node
		want string
	}{
		{Node{ID: "n1"}, `{"xds_servers":[{"server_uri":"passthrough:///127.0.0.1:1","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":"n1"}}`},
		{Node{ID: "n2", Cluster: "c", Metadata: map[string]string{"k": "v"}, Locality: &struct{}{}},
			`{"xds_servers":[{"server_uri":"passthrough:///127.0.0.1:1","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":"n2","cluster":"c","metadata":{"k":"v"},"locality":{}}}`},
	} {
		got, err := Insecure("passthrough:///127.0.0.1:1", c.node)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.node.ID, got, c.want)
		}
	}
}
