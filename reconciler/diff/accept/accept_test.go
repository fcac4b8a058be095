package accept

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/source"
)

// devSet builds the project's example overlay overlays/dev.
func devSet(t *testing.T) *snapshot.Set {
	t.Helper()
	fsys, err := source.WorktreeFS("../../..", source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.New(render.Options{}).Run(fsys, "overlays/dev", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.Set
}

func TestCheckAccepts(t *testing.T) {
	set := devSet(t)
	res, err := Check(context.Background(), set, Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("check took %v", res.Duration)
	if !res.Accepted {
		t.Fatalf("not accepted: %+v", res)
	}
	// Both Envoy classes (the dev overlay has a port with scoped routes)
	// and gRPC.
	if len(res.Classes) != 3 {
		t.Fatalf("classes: %+v", res.Classes)
	}
	for _, c := range res.Classes {
		for _, ty := range c.Types {
			if ty.Status != ACK {
				t.Errorf("%s %s: %s %s", c.Class, ty.Type, ty.Status, ty.Error)
			}
		}
	}
	g := res.Classes[2]
	if g.Nodes == 0 || g.Nodes >= len(set.Classes[snapshot.GRPC].Listeners) {
		t.Errorf("grpc nodes = %d of %d listeners, want one per virtual host", g.Nodes, len(set.Classes[snapshot.GRPC].Listeners))
	}
	all, err := Check(context.Background(), set, Options{AllListeners: true})
	if err != nil || !all.Accepted {
		t.Fatalf("all listeners: %v %+v", err, all)
	}
	if n := all.Classes[2].Nodes; n != len(set.Classes[snapshot.GRPC].Listeners) {
		t.Errorf("all listeners: grpc nodes = %d", n)
	}
	for i, ty := range g.Types {
		// One client per virtual host fetches every route configuration,
		// cluster and endpoint set that one client per listener does.
		full := all.Classes[2].Types[i]
		if ty.Fetched == 0 || ty.Fetched > ty.Resources || (ty.Type != "LDS" && ty.Fetched != full.Fetched) {
			t.Errorf("grpc %s: fetched %d of %d, one client per listener %d", ty.Type, ty.Fetched, ty.Resources, full.Fetched)
		}
	}
}

// TestCheckNACK breaks one cluster per class: a zero connect timeout fails
// ValidateAll (the Envoy-like client NACKs CDS), a STATIC cluster is a type
// gRPC-Go does not support (the real gRPC client NACKs CDS).
func TestCheckNACK(t *testing.T) {
	set := devSet(t)
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range set.Classes {
		cp := *r
		cp.Clusters = nil
		for _, x := range r.Clusters {
			x = proto.Clone(x).(*clusterv3.Cluster)
			if x.GetName() == "payments/payments-v1" {
				if c.IsEnvoy() {
					x.ConnectTimeout = durationpb.New(0)
				} else {
					x.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
					x.EdsClusterConfig = nil
				}
			}
			cp.Clusters = append(cp.Clusters, x)
		}
		classes[c] = &cp
	}
	bad := snapshot.New("bad", classes)
	res, err := Check(context.Background(), bad, Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted {
		t.Fatal("accepted a broken set")
	}
	for _, c := range res.Classes {
		for _, ty := range c.Types {
			t.Logf("%s %s: %s acks=%d nacks=%d %s", c.Class, ty.Type, ty.Status, ty.ACKs, ty.NACKs, ty.Error)
			if ty.Type == "CDS" && (ty.Status != NACK || !strings.Contains(ty.Error, "payments/payments-v1")) {
				t.Errorf("%s CDS: %s %q, want a NACK naming the cluster", c.Class, ty.Status, ty.Error)
			}
		}
	}
}

// scaleSet renders n teams of 25 routes each, in memory.
func scaleSet(t testing.TB, n int) *snapshot.Set {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	write := func(name, data string) {
		if err := fsys.WriteFile("/"+name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	write("platform/kustomization.yaml", "resources:\n- gateways.yaml\n")
	write("platform/gateways.yaml", `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: platform}
spec:
  gatewayClassName: gitxds
  listeners:
  - {name: http, port: 8080, protocol: HTTP, hostname: "*.example.com", allowedRoutes: {namespaces: {from: All}}}
`)
	overlay := "resources:\n- ../../platform\n"
	for i := range n {
		team := fmt.Sprintf("team-%03d", i)
		overlay += "- ../../teams/" + team + "\n"
		write("teams/"+team+"/kustomization.yaml", "namespace: "+team+"\nresources:\n- all.yaml\n")
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: gitxds.dev/v1alpha1\nkind: Backend\nmetadata: {name: v1}\nspec:\n  endpoints: [{ip: {address: 10.1.%d.1, port: 8080}}]\n---\n", i%250)
		fmt.Fprintf(&b, "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{name: edge, namespace: platform}]\n  hostnames: [%s.example.com]\n  rules:\n", team)
		for j := range 25 {
			fmt.Fprintf(&b, "  - matches: [{path: {type: PathPrefix, value: /r%02d}}]\n    backendRefs: [{group: gitxds.dev, kind: Backend, name: v1}]\n", j)
		}
		write("teams/"+team+"/all.yaml", b.String())
	}
	write("overlays/prod/kustomization.yaml", overlay)
	b, err := pipeline.New(render.Options{}).Run(fsys, "overlays/prod", "scale", nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.Set
}

func BenchmarkCheck200(b *testing.B) {
	set := scaleSet(b, 200)
	for _, par := range []int{4, 8, 16} {
		b.Run(fmt.Sprint("parallel-", par), func(b *testing.B) {
			for b.Loop() {
				res, err := Check(context.Background(), set, Options{Parallel: par})
				if err != nil || !res.Accepted {
					b.Fatalf("%v %+v", err, res)
				}
			}
		})
	}
}

// TestCheckNACKsEnvoySemantics: the Envoy-like client applies the load-time
// rules Envoy enforces beyond validation; a header value with a lone "%"
// passes ValidateAll but Envoy rejects its RouteConfiguration.
func TestCheckNACKsEnvoySemantics(t *testing.T) {
	set := devSet(t)
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range set.Classes {
		cp := *r
		if c == snapshot.Envoy {
			cp.Routes = nil
			for _, rc := range r.Routes {
				rc = proto.Clone(rc).(*routev3.RouteConfiguration)
				rc.ResponseHeadersToAdd = append(rc.ResponseHeadersToAdd, &corev3.HeaderValueOption{
					Header: &corev3.HeaderValue{Key: "x-discount", Value: "50%off"},
				})
				cp.Routes = append(cp.Routes, rc)
			}
		}
		classes[c] = &cp
	}
	res, err := Check(context.Background(), snapshot.New("bad", classes), Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted {
		t.Fatal("accepted a header value Envoy rejects")
	}
	for _, c := range res.Classes {
		for _, ty := range c.Types {
			if c.Class == snapshot.Envoy && ty.Type == "RDS" && (ty.Status != NACK || !strings.Contains(ty.Error, "not escaped")) {
				t.Errorf("envoy RDS: %s %q, want a NACK for the header value", ty.Status, ty.Error)
			}
		}
	}
}
