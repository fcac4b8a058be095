// Package xdsbootstrap writes the xDS bootstrap of a proxyless gRPC client
// (gRFC A27): one xDS server, insecure channel credentials, server feature
// "xds_v3", and the node. It is written once for every client gitxds runs:
// the preview's acceptance check (diff/accept) and the test clients
// (testenv/xdsclient, testenv/grpcjs).
package xdsbootstrap

import "encoding/json"

// Node is the bootstrap's node.
type Node struct {
	ID       string            `json:"id"`
	Cluster  string            `json:"cluster,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Locality, when set, is written as an empty locality: grpc-js-xds
	// refuses a node without one.
	Locality *struct{} `json:"locality,omitempty"`
}

// Insecure is the bootstrap of node talking to the xDS server at
// serverURI without TLS.
func Insecure(serverURI string, node Node) ([]byte, error) {
	type creds struct {
		Type string `json:"type"`
	}
	type server struct {
		ServerURI      string   `json:"server_uri"`
		ChannelCreds   []creds  `json:"channel_creds"`
		ServerFeatures []string `json:"server_features"`
	}
	return json.Marshal(struct {
		XDSServers []server `json:"xds_servers"`
		Node       Node     `json:"node"`
	}{
		XDSServers: []server{{ServerURI: serverURI, ChannelCreds: []creds{{Type: "insecure"}}, ServerFeatures: []string{"xds_v3"}}},
		Node:       node,
	})
}
