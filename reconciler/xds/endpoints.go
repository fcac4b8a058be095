package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// Discovered endpoints: an overlay on every Set.
//
// The endpoints of a Kubernetes Service are discovery, not configuration:
// they are in no revision (a Service cluster of a Set is EDS with an empty
// assignment, see translate) and change without a commit. SetEndpoints
// replaces the assignments of the clusters it names in every cache
// snapshot a node is moved to, whichever Set it comes from: the default,
// an assignment of a rollout stage in progress, or a node's last good Set
// after a NACK. The Sets themselves are untouched (their hashes and
// versions, which the rollout compares, stay those of the revision); a
// served EDS version is the Set's followed by epsSep and a hash of the
// overlay, and counts as the Set's (setVersion). When the endpoints
// change, every node is moved at once to the same Set with the new
// assignments: a plan of one EDS stage (plan.go), with CDS, LDS and RDS
// unchanged and no rollout stage.

// epsSep separates a Set's EDS version from the overlay part of a version
// served with discovered endpoints.
const epsSep = "+eps-"

// SetEndpoints replaces the discovered assignments (by cluster name) and
// pushes them to every node whose served clusters include one of them.
// An assignment for a cluster no Set has is kept for when one has it.
func (s *Server) SetEndpoints(eps map[string]*endpointv3.ClusterLoadAssignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eps = maps.Clone(eps)
	clear(s.epsSnaps)
	for _, n := range s.nodes {
		if n.cur == nil || n.target == nil {
			continue
		}
		to := s.targetLocked(n)
		if to == nil {
			continue
		}
		snap, err := to.CacheSnapshot(n.class)
		if err != nil || snap == nil {
			continue
		}
		if s.withEndpointsLocked(snap).GetVersion(resource.EndpointType) == n.target.GetVersion(resource.EndpointType) {
			continue // none of its clusters changed
		}
		s.transitionLocked(n, to)
	}
	s.notifyLocked()
}

// withEndpointsLocked is snap with the discovered assignments of its
// clusters, shared by every node moved to it.
func (s *Server) withEndpointsLocked(snap *cache.Snapshot) *cache.Snapshot {
	if len(s.eps) == 0 || snap == nil {
		return snap
	}
	if out, ok := s.epsSnaps[snap]; ok {
		return out
	}
	eds := resource.EndpointType
	base := snap.Resources[types.Endpoint]
	var names []string
	for name := range base.Items {
		if _, ok := s.eps[name]; ok {
			names = append(names, name)
		}
	}
	out := snap
	if len(names) > 0 {
		sort.Strings(names)
		items := maps.Clone(base.Items)
		vm := maps.Clone(snap.VersionMap[eds])
		if vm == nil {
			vm = map[string]string{}
		}
		cds := snap.VersionMap[resource.ClusterType]
		all := sha256.New()
		for _, name := range names {
			cla := s.eps[name]
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cla)
			if err != nil {
				continue // generated types always marshal
			}
			sum := sha256.Sum256(b)
			// With the cluster's hash, as snapshot.foldClusterHashes does:
			// a changed cluster gets its assignment again.
			v := "eps-" + hex.EncodeToString(sum[:8])
			if c, ok := cds[name]; ok {
				v += "/" + c
			}
			items[name] = types.ResourceWithTTL{Resource: cla}
			vm[name] = v
			fmt.Fprintf(all, "%s=%s\n", name, v)
		}
		out = cloneSnapshot(snap)
		out.Resources[types.Endpoint] = cache.Resources{Version: base.Version + epsSep + hex.EncodeToString(all.Sum(nil))[:8], Items: items}
		out.VersionMap[eds] = vm
	}
	if len(s.epsSnaps) >= planCacheMax {
		clear(s.epsSnaps)
	}
	s.epsSnaps[snap] = out
	return out
}

// reportServiceClustersLocked tells Options.ServiceClusters the EDS
// Service clusters of every Set a node may be moved to (the default, the
// assignments, each node's served and last good Set), when they change.
func (s *Server) reportServiceClustersLocked() {
	if s.opts.ServiceClusters == nil {
		return
	}
	sets := map[*snapshot.Set]bool{}
	add := func(set *snapshot.Set) {
		if set != nil {
			sets[set] = true
		}
	}
	add(s.def)
	for _, set := range s.assigned {
		add(set)
	}
	for _, n := range s.nodes {
		add(n.served)
		add(n.lastGood)
	}
	names := map[string]bool{}
	for set := range sets {
		cs, ok := s.svcClusters[set]
		if !ok {
			cs = serviceClusters(set)
		}
		for _, c := range cs {
			names[c] = true
		}
	}
	for set := range s.svcClusters {
		if !sets[set] {
			delete(s.svcClusters, set)
		}
	}
	for set := range sets {
		if _, ok := s.svcClusters[set]; !ok {
			s.svcClusters[set] = serviceClusters(set)
		}
	}
	list := slices.Sorted(maps.Keys(names))
	if slices.Equal(list, s.svcReported) && s.svcReported != nil {
		return
	}
	s.svcReported = list
	s.opts.ServiceClusters(list)
}

// serviceClusters are the EDS clusters of set named after a Service
// (ir.ServiceClusterName), of every class.
func serviceClusters(set *snapshot.Set) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range snapshot.Classes {
		res := set.Of(c)
		if res == nil {
			continue
		}
		for _, cl := range res.Clusters {
			if cl.GetType() != clusterv3.Cluster_EDS || seen[cl.GetName()] {
				continue
			}
			if _, ok := ir.ParseServiceCluster(cl.GetName()); ok {
				seen[cl.GetName()] = true
				out = append(out, cl.GetName())
			}
		}
	}
	return out
}
