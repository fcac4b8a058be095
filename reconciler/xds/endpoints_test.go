package xds

import (
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

// TestSetEndpoints: discovered endpoints reach a node as one EDS response
// carrying only the changed assignment, with the Set (revision, versions)
// unchanged and counted as ACKed, for the default Set and for a node
// assigned another Set (a rollout stage); the Service clusters of every
// Set are reported to ServiceClusters.
func TestSetEndpoints(t *testing.T) {
	web := ir.ServiceClusterName(ir.ServiceRef{Namespace: "shop", Name: "web", Port: 8080})
	var reported [][]string
	s, addr := startServerOpts(t, Options{Logger: testLogger(), ServiceClusters: func(names []string) {
		reported = append(reported, names)
	}})
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"backend", web}})
	s2 := buildSet(spec{rev: "main@sha1:2", clusters: []string{"backend", web}, listenerPort: 8081})
	s.SetDefault(s1)
	stable := connectSotw(t, addr, nodeOpts("stable", "envoy", nil))
	canary := connectSotw(t, addr, nodeOpts("canary", "envoy", nil))
	waitACK(t, s, s1, "stable", "canary")
	s.Assign([]string{"canary"}, s2)
	waitACK(t, s, s2, "canary")
	if len(reported) == 0 || !slices.Equal(reported[len(reported)-1], []string{web}) {
		t.Fatalf("ServiceClusters got %v, want [%s]", reported, web)
	}

	before := map[*fleetsim.Node]int{stable: len(stable.Log()), canary: len(canary.Log())}
	s.SetEndpoints(map[string]Discovered{web: {Assignment: assignment(web, 9555)}})
	for n, set := range map[*fleetsim.Node]*snapshot.Set{stable: s1, canary: s2} {
		id := n.ID()
		eventually(t, id+" gets the discovered endpoints", func() bool {
			got := n.Log()[before[n]:]
			return len(got) == 1 && got[0].TypeURL == eds && slices.Equal(got[0].Names, []string{web}) &&
				n.AcceptedVersion(eds) == got[0].Version
		})
		info, _ := s.Node(id)
		if info.Served != set || !info.HasACKed(set) {
			t.Errorf("%s: served %v, ACKed it %v; want %s, ACKed", id, info.Served.Revision, info.HasACKed(set), set.Revision)
		}
		if v := n.AcceptedVersion(eds); v == set.Version(snapshot.Envoy, eds) || setVersion(v) != set.Version(snapshot.Envoy, eds) {
			t.Errorf("%s: EDS version %s, want %s extended", id, v, set.Version(snapshot.Envoy, eds))
		}
	}
	// The same endpoints again change nothing.
	n := len(stable.Log())
	s.SetEndpoints(map[string]Discovered{web: {Assignment: assignment(web, 9555)}})
	s.SetDefault(s1)
	if got := stable.Log()[n:]; len(got) != 0 {
		t.Errorf("unchanged endpoints sent %+v", got)
	}
}

// TestSetEndpointsHTTP2: a Service port whose appProtocol asks for HTTP/2
// gives Envoy nodes its cluster with HTTP/2 protocol options, then its
// assignment again (an updated cluster warms until it has one); the Set
// still counts as ACKed.
func TestSetEndpointsHTTP2(t *testing.T) {
	web := ir.ServiceClusterName(ir.ServiceRef{Namespace: "shop", Name: "web", Port: 8080})
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{"backend", web}})
	s.SetDefault(s1)
	n := connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	waitACK(t, s, s1, "e")
	before := len(n.Log())
	s.SetEndpoints(map[string]Discovered{web: {Assignment: assignment(web, 9555), HTTP2: true}})
	eventually(t, "CDS then EDS", func() bool {
		got := n.Log()[before:]
		return len(got) == 2 && got[0].TypeURL == cds && got[1].TypeURL == eds &&
			n.AcceptedVersion(eds) == got[1].Version
	})
	raw, _ := n.Held(cds, web)
	cl := &clusterv3.Cluster{}
	if err := proto.Unmarshal(raw, cl); err != nil {
		t.Fatal(err)
	}
	opts := &httpv3.HttpProtocolOptions{}
	if err := cl.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey].UnmarshalTo(opts); err != nil {
		t.Fatalf("cluster %s has no HTTP protocol options: %v", web, err)
	}
	if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("cluster %s does not speak HTTP/2: %v", web, opts)
	}
	if info, _ := s.Node("e"); !info.HasACKed(s1) {
		t.Error("the node does not count as running s1")
	}
}

// TestSetEndpointsWebSocket: a Service port whose appProtocol is
// kubernetes.io/ws gets the websocket upgrade on the Envoy routes to it,
// and the Set still counts as ACKed.
func TestSetEndpointsWebSocket(t *testing.T) {
	web := ir.ServiceClusterName(ir.ServiceRef{Namespace: "shop", Name: "web", Port: 8080})
	s, addr := startServer(t)
	s1 := buildSet(spec{rev: "main@sha1:1", clusters: []string{web, "backend"}})
	s.SetDefault(s1)
	n := connectSotw(t, addr, nodeOpts("e", "envoy", nil))
	waitACK(t, s, s1, "e")
	s.SetEndpoints(map[string]Discovered{web: {Assignment: assignment(web, 9555), WebSocket: true}})
	eventually(t, "routes with the upgrade", func() bool {
		raw, _ := n.Held(rds, "routes")
		rc := &routev3.RouteConfiguration{}
		if proto.Unmarshal(raw, rc) != nil {
			return false
		}
		a := rc.GetVirtualHosts()[0].GetRoutes()[0].GetRoute()
		return a.GetCluster() == web && len(a.GetUpgradeConfigs()) == 1 && a.GetUpgradeConfigs()[0].GetUpgradeType() == "websocket"
	})
	eventually(t, "s1 ACKed", func() bool { info, _ := s.Node("e"); return info.HasACKed(s1) })
}
