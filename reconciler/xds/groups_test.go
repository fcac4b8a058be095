package xds

import (
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/testenv/fleetsim"
)

// groupsSet is a Set whose default group and groups internal and external
// each have an Envoy listener and a gRPC API listener of their own names.
func groupsSet(rev string) *snapshot.Set {
	group := func(name string, port uint32) map[snapshot.Class]*snapshot.Resources {
		s := buildSet(spec{rev: rev, listenerPort: port, host: name + ".svc.test"})
		s.Classes[snapshot.Envoy].Listeners[0].Name = name + "-http"
		return s.Classes
	}
	return snapshot.NewGroups(rev, map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{
		snapshot.DefaultGroup: group("default", 8080),
		"internal":            group("internal", 8081),
		"external":            group("external", 8082),
	})
}

// listenersReceived are the names of every listener a node was sent.
func listenersReceived(n *fleetsim.Node) []string {
	var out []string
	for _, r := range n.Log() {
		if r.TypeURL == resource.ListenerType {
			for _, name := range r.Names {
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// A node is served its proxy group's resources only: never another
// group's listeners, and a node without a group the default group's.
// HasACKed and WaitACK compare with its group's versions.
func TestNodesGetTheirGroup(t *testing.T) {
	s, addr := startServer(t)
	set := groupsSet("main@sha1:1")
	s.SetDefault(set)
	group := func(g string) map[string]string { return map[string]string{snapshot.GroupLabel: g} }
	nodes := map[string]*fleetsim.Node{
		"internal": connectSotw(t, addr, nodeOpts("envoy-internal", "envoy", group("internal"))),
		"external": connectSotw(t, addr, nodeOpts("envoy-external", "envoy", group("external"))),
		"default":  connectSotw(t, addr, nodeOpts("envoy-default", "envoy", nil)),
		"grpc":     connectSotw(t, addr, nodeOpts("grpc-internal", "gRPC Go", group("internal"))),
	}
	waitACK(t, s, set, "envoy-internal", "envoy-external", "envoy-default", "grpc-internal")
	for name, want := range map[string][]string{
		"internal": {"internal-http"},
		"external": {"external-http"},
		"default":  {"default-http"},
		"grpc":     {"internal.svc.test"},
	} {
		n := nodes[name]
		if got := listenersReceived(n); !slices.Equal(got, want) {
			t.Errorf("node %s received listeners %v, want %v", n.ID(), got, want)
		}
		if !n.Runs(set) {
			t.Errorf("node %s does not run its group's resources", n.ID())
		}
	}
	info, _ := s.Node("envoy-internal")
	if info.Group != "internal" || !info.HasACKed(set) {
		t.Errorf("envoy-internal: group %q, ACKed %v", info.Group, info.HasACKed(set))
	}
	if v, w := info.Types[resource.ListenerType].ACKed, set.In("internal").Version(snapshot.Envoy, resource.ListenerType); v != w || v == set.Version(snapshot.Envoy, resource.ListenerType) {
		t.Errorf("envoy-internal ACKed LDS %s, want group internal's %s", v, w)
	}
}

// With labels pinned by the node identity, the pinned group decides: a
// node cannot name another group in its metadata to get that group's
// configuration.
func TestPinnedGroup(t *testing.T) {
	s, addr := startServerOpts(t, Options{NodeIdentity: &NodeIdentity{Labels: map[string]map[string]string{
		"envoy-1": {snapshot.GroupLabel: "internal"},
	}}})
	set := groupsSet("main@sha1:1")
	s.SetDefault(set)
	liar := connectSotw(t, addr, nodeOpts("envoy-1", "envoy", map[string]string{snapshot.GroupLabel: "external"}))
	unpinned := connectSotw(t, addr, nodeOpts("envoy-2", "envoy", map[string]string{snapshot.GroupLabel: "external"}))
	waitACK(t, s, set, "envoy-1", "envoy-2")
	if got := listenersReceived(liar); !slices.Equal(got, []string{"internal-http"}) {
		t.Errorf("envoy-1 (pinned to internal, declaring external) received %v", got)
	}
	// Labels pinned by the map only: a node the map does not name has no
	// labels, so the default group.
	if got := listenersReceived(unpinned); !slices.Equal(got, []string{"default-http"}) {
		t.Errorf("envoy-2 (not in the map, declaring external) received %v", got)
	}
}
