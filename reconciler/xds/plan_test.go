package xds

import (
	"fmt"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

func classSnap(t *testing.T, set *snapshot.Set) *cache.Snapshot {
	t.Helper()
	s, err := set.CacheSnapshot(snapshot.Envoy)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stageTypes lists, per stage, the types whose version changed and the
// cluster names of the stage.
func stageTypes(from *cache.Snapshot, stages []*cache.Snapshot) (changed [][]string, clusters [][]string) {
	prev := from
	for _, st := range stages {
		var ch []string
		for _, typ := range snapshot.TypeURLs {
			if st.GetVersion(typ) != prev.GetVersion(typ) {
				ch = append(ch, typ)
			}
		}
		changed = append(changed, short(ch))
		var cs []string
		for name := range st.GetResources(cds) {
			cs = append(cs, name)
		}
		clusters = append(clusters, cs)
		prev = st
	}
	return changed, clusters
}

func TestPlan(t *testing.T) {
	a := classSnap(t, buildSet(spec{clusters: []string{"old", "shared"}}))
	b := classSnap(t, buildSet(spec{clusters: []string{"new", "shared"}, endpointPort: 9001, listenerPort: 8081, routeTimeout: time.Second}))
	st := plan(a, b)
	changed, clusters := stageTypes(a, st)
	want := [][]string{{"Cluster"}, {"ClusterLoadAssignment"}, {"Listener", "RouteConfiguration"}, {"Cluster"}, {"ClusterLoadAssignment"}}
	if len(changed) != len(want) {
		t.Fatalf("stages %v, want %v", changed, want)
	}
	for i := range want {
		if !sameSet(changed[i], want[i]...) {
			t.Fatalf("stages %v, want %v", changed, want)
		}
	}
	if !sameSet(clusters[0], "old", "new", "shared") || !sameSet(clusters[4], "new", "shared") {
		t.Errorf("clusters per stage %v", clusters)
	}
	if st[len(st)-1] != b {
		t.Error("last stage is not the target snapshot itself")
	}
	// Nothing changes: one stage, the target.
	if st := plan(b, b); len(st) != 1 || st[0] != b {
		t.Errorf("plan(b, b) = %d stages", len(st))
	}
	// Back from the middle of a move: the union already covers a's
	// clusters, so CDS is not sent again before the removal.
	mid := st[2] // CDS and EDS unions, new listener and routes
	back := plan(mid, a)
	changed, _ = stageTypes(mid, back)
	got := fmt.Sprint(changed)
	if want := "[[ClusterLoadAssignment] [Listener RouteConfiguration] [Cluster] [ClusterLoadAssignment]]"; got != want {
		t.Errorf("way back: stages %s, want %s", got, want)
	}
	if back[len(back)-1] != a {
		t.Error("way back does not end on a")
	}
}

// TestPlanSecretsBeforeListeners: a listener whose TLS context names an SDS
// secret warms until Envoy has the secret, so the secret is a stage before
// the listener on the way in, and is removed a stage after it on the way
// out.
func TestPlanSecretsBeforeListeners(t *testing.T) {
	secret := &tlsv3.Secret{Name: "tls:/etc/gitxds/certs/a/b", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/gitxds/certs/a/b/tls.crt"}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/gitxds/certs/a/b/tls.key"}},
	}}}
	lis := &listenerv3.Listener{Name: "port-443"}
	with, err := cache.NewSnapshot("1", map[resource.Type][]types.Resource{
		resource.SecretType:   {secret},
		resource.ListenerType: {lis},
	})
	if err != nil {
		t.Fatal(err)
	}
	without, err := cache.NewSnapshot("2", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to *cache.Snapshot
		want     string
	}{
		{"in", without, with, "[[Secret] [Listener]]"},
		{"out", with, without, "[[Listener] [Secret]]"},
	} {
		changed, _ := stageTypes(tc.from, plan(tc.from, tc.to))
		if got := fmt.Sprint(changed); got != tc.want {
			t.Errorf("%s: stages %s, want %s", tc.name, got, tc.want)
		}
	}
}
