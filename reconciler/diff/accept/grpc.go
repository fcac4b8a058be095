package accept

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcxds "google.golang.org/grpc/xds"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xds"
	"gitxds.dev/gitxds/reconciler/xdsbootstrap"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// checkGRPC connects gRPC-Go xDS clients and waits for the server to
// record their answers. Without all, it dials one API listener per virtual
// host a gRPC client can land on (the bare hostname "H", and "H:P" only
// when it selects another virtual host than "H"): every route
// configuration, virtual host, route, cluster and endpoint set a gRPC
// client can fetch is then fetched, at half the clients; the other "H:P"
// listeners differ from "H" only in their name.
func checkGRPC(ctx context.Context, srv *xds.Server, addr string, set *snapshot.Set, parallel int, all bool) ClassResult {
	res := set.Classes[snapshot.GRPC]
	want := expectation{}
	targets := map[string]string{} // node id -> target
	fetched := map[string]map[string]bool{}
	covered := map[string]bool{} // route configuration + virtual host
	for _, l := range res.Listeners {
		need, names, vh := grpcNeeds(res, l.GetName())
		if !all && vh != "" && covered[vh] {
			continue
		}
		covered[vh] = true
		id := "gitxds-preview/grpc/" + l.GetName()
		want[id], targets[id] = need, l.GetName()
		for t, ns := range names {
			if fetched[t] == nil {
				fetched[t] = map[string]bool{}
			}
			for _, n := range ns {
				fetched[t][n] = true
			}
		}
	}
	client := GRPCClient + ", one per virtual host"
	if all {
		client = GRPCClient + ", one per API listener"
	}
	cr := ClassResult{Class: snapshot.GRPC, Client: client, Nodes: len(targets)}

	var (
		mu    sync.Mutex
		infos = map[string]xds.NodeInfo{}
		errs  []string
		wg    sync.WaitGroup
		sem   = make(chan struct{}, parallel)
	)
	for id, target := range targets {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			cc, err := dialGRPC(addr, id, target)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s: %v", id, err))
				mu.Unlock()
				return
			}
			// Wait for this client's answers, keep them, and close it
			// before the next one starts.
			got := wait(ctx, srv, snapshot.GRPC, set, expectation{id: want[id]})
			_ = cc.Close()
			mu.Lock()
			infos[id] = got[id]
			mu.Unlock()
		})
	}
	wg.Wait()
	cr.Types = tally(snapshot.GRPC, set, want, infos)
	for i := range cr.Types {
		cr.Types[i].Fetched = len(fetched[cr.Types[i].TypeURL])
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		for i := range cr.Types {
			if cr.Types[i].Status == Timeout {
				cr.Types[i].Error += " (dial: " + errs[0] + ")"
			}
		}
	}
	return cr
}

// dialGRPC starts a gRPC-Go channel to xds:///target with its own bootstrap
// (node id) and resolver, and makes it leave idle so the xDS client starts.
func dialGRPC(addr, id, target string) (*grpc.ClientConn, error) {
	bs, err := bootstrap(addr, id)
	if err != nil {
		return nil, err
	}
	b, err := grpcxds.NewXDSResolverWithConfigForTesting(bs)
	if err != nil {
		return nil, fmt.Errorf("xds resolver: %w", err)
	}
	cc, err := grpc.NewClient("xds:///"+target, grpc.WithResolvers(b),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	cc.Connect()
	return cc, nil
}

// bootstrap is a gRPC xDS bootstrap for one node of the in-process server.
func bootstrap(addr, id string) ([]byte, error) {
	return xdsbootstrap.Insecure("passthrough:///"+addr, xdsbootstrap.Node{ID: id, Cluster: "gitxds-preview"})
}

// grpcNeeds walks what a gRPC client dialing target fetches: its listener,
// the route configuration it names, the clusters of the virtual host that
// matches target, and the endpoints of the EDS ones. It returns the types,
// the resource names per type, and "<route configuration>/<virtual host>".
func grpcNeeds(r *snapshot.Resources, target string) (map[string]bool, map[string][]string, string) {
	need := map[string]bool{resource.ListenerType: true}
	names := map[string][]string{resource.ListenerType: {target}}
	var rc string
	for _, l := range r.Listeners {
		if l.GetName() == target {
			if ns := xdsres.RouteConfigNames(l); len(ns) > 0 {
				rc = ns[0]
			}
		}
	}
	if rc == "" {
		return need, names, ""
	}
	need[resource.RouteType] = true
	names[resource.RouteType] = []string{rc}
	var vh *routev3.VirtualHost
	for _, c := range r.Routes {
		if c.GetName() == rc {
			vh = matchVHost(c.GetVirtualHosts(), target)
		}
	}
	key := rc + "/" + vh.GetName()
	clusters := map[string]bool{}
	for _, rt := range vh.GetRoutes() {
		// gRPC-Go does not mirror: a route's action names its clusters.
		for _, c := range xdsres.ActionClusters(rt) {
			clusters[c] = true
		}
	}
	if len(clusters) == 0 {
		return need, names, key
	}
	need[resource.ClusterType] = true
	var used []*clusterv3.Cluster
	for _, c := range r.Clusters {
		if clusters[c.GetName()] {
			used = append(used, c)
			names[resource.ClusterType] = append(names[resource.ClusterType], c.GetName())
		}
	}
	if eds := xdsres.EDSNames(used); len(eds) > 0 {
		need[resource.EndpointType] = true
		names[resource.EndpointType] = eds
	}
	return need, names, key
}

// matchVHost picks the virtual host for a host as gRPC does: exact domain,
// then the longest suffix or prefix wildcard, then "*".
func matchVHost(vhs []*routev3.VirtualHost, host string) *routev3.VirtualHost {
	var best *routev3.VirtualHost
	bestLen := -1
	for _, v := range vhs {
		for _, d := range v.GetDomains() {
			switch {
			case d == host:
				return v
			case d == "*":
				if bestLen < 0 {
					best, bestLen = v, 0
				}
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]) && len(d) > bestLen:
				best, bestLen = v, len(d)
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]) && len(d) > bestLen:
				best, bestLen = v, len(d)
			}
		}
	}
	return best
}
