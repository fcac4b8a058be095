// Package diff is the semantic diff of two snapshots: what the fleet would
// serve differently if it moved from one snapshot.Set to another.
//
// Snapshots compares, per node class, every listener, every route
// configuration down to its virtual hosts (by name) and their routes (match →
// action), every cluster with its policies, and every endpoint set
// (ClusterLoadAssignment). Protos are compared after a normalisation that
// takes out what does not change what is served:
//
//   - collections whose order means nothing are sorted by name before they
//     are compared: resources, virtual hosts, domains, filter chains, the
//     clusters of a weighted split, localities and their endpoints;
//   - a route is paired with its counterpart by its match first and by its
//     name second, and its name is not compared: renumbering the rules of an
//     HTTPRoute (route names "<ns>/<route>/rule/<i>/match/<j>") serves the
//     same thing;
//   - the order of the routes of a virtual host is semantic (the first route
//     that matches wins): when two routes that can match the same request
//     swap places, the virtual host is reported changed with the summary
//     "order changed: ..."; swapping routes that can never match the same
//     request is no difference.
//
// # Report JSON schema (gitxds.dev/diff/v1)
//
// The JSON form of a Report is stable: fields are only ever added.
//
//	{
//	  "schema": "gitxds.dev/diff/v1",
//	  "from": {"revision": "main@sha1:…", "hash": "<content hash of the Set>"},
//	  "to":   {"revision": "…", "hash": "…"},
//	  "different": true,                  // false: nothing served changes
//	  "counts": {"added": 1, "removed": 0, "changed": 2},
//	  "changes": [{
//	    "kind": "added" | "removed" | "changed",
//	    "classes": ["envoy", "grpc"],     // node classes that see the change
//	    "type": "listener" | "route_configuration" | "virtual_host" |
//	            "route" | "cluster" | "endpoints",
//	    "name": "payments/payments/rule/1/match/0",  // the element's own name
//	    "path": ["port-8080", "payments.example.com", "payments/payments/rule/1/match/0"],
//	                                      // resource name, then virtual host, then route
//	    "listeners": ["port-8080"],       // listeners that serve it (route types)
//	    "summary": "weighted_clusters: payments/payments-v1 100→20, payments/payments-v2 0→80",
//	    "diff": "…"                      // YAML line diff (- from, + to); empty when none
//	  }],
//	  "routes": [{"kind": "changed", "hostnames": ["payments.example.com"],
//	              "match": "PathPrefix /", "to": "payments/payments-v1 20%, …",
//	              "from": "payments/payments-v1 100%", "also": ["route.timeout: 5s→10s"],
//	              "toBackends": [{"cluster": "payments/payments-v1", "percent": 20}, …],
//	              "fromBackends": [{"cluster": "payments/payments-v1", "percent": 100}],
//	              "route": "payments/payments/rule/1/match/0",
//	              "owner": {"kind": "HTTPRoute", "namespace": "payments", "name": "payments",
//	                        "file": "teams/payments/routes.yaml"},
//	              "classes": ["envoy", "grpc"], "listeners": ["port-8080", …]}],
//	                                      // one per route change, however many
//	                                      // classes and listeners serve it
//	  "objects": [{"kind": "changed", "object": "HTTPRoute payments/payments",
//	               "file": "…", "wasFile": "…", "served": "none", "diff": "…"}],
//	                                      // rendered objects that changed (offline only)
//	  "notAccepted": [{"file": "…", "kind": "HTTPRoute", "namespace": "shop",
//	                   "name": "web", "reason": "UnsupportedValue", "message": "…",
//	                   "line": "…", "served": "none" | "part" | "lastAccepted"}]
//	                                      // objects of "to" not fully accepted (offline
//	                                      // diffs only); "lastAccepted": rejected, and
//	                                      // its last accepted version keeps serving
//	}
//
// "to" is built as the server would build it after "from": an object that
// is rejected in "to" and accepted in "from" (for --live: served now)
// keeps its accepted version, so the diff shows what would be served.
//
// Changes are sorted by type group (listeners, route configurations with
// their virtual hosts and routes, clusters, endpoints), then by path, then by
// kind. A change identical in every node class is listed once with all of
// them in "classes". Weights in a summary are shares of the traffic in
// percent (a route to one cluster is 100).
package diff

import (
	"bytes"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// Schema names the JSON form of a Report.
const Schema = "gitxds.dev/diff/v1"

// Kind of a change.
type Kind string

// Kinds of change.
const (
	Added   Kind = "added"
	Removed Kind = "removed"
	Changed Kind = "changed"
)

// Type of the element a change is about.
type Type string

// Types of element, in report order.
const (
	Listener           Type = "listener"
	RouteConfiguration Type = "route_configuration"
	VirtualHost        Type = "virtual_host"
	Route              Type = "route"
	Cluster            Type = "cluster"
	Endpoints          Type = "endpoints"
)

// Change is one difference.
type Change struct {
	Kind    Kind             `json:"kind"`
	Classes []snapshot.Class `json:"classes"`
	// Group is the proxy group whose nodes the change reaches; empty for
	// the default group (the only one of a repository without groups).
	Group snapshot.Group `json:"proxyGroup,omitempty"`
	Type  Type           `json:"type"`
	// Name of the element: listener, route configuration, virtual host,
	// route or cluster name.
	Name string `json:"name"`
	// Path from the xDS resource to the element: [resource] for listeners,
	// clusters and endpoints; [route configuration, virtual host, route]
	// for routes.
	Path []string `json:"path"`
	// Listeners that serve the route configuration of a route,
	// virtual host or route configuration change.
	Listeners []string `json:"listeners,omitempty"`
	Summary   string   `json:"summary"`
	// Diff is the YAML line diff of the normalised elements: "-" lines are
	// the old ("from") side, "+" lines the new one, "  " lines context.
	Diff string `json:"diff,omitempty"`

	// refs: route and cluster names the change touches, and the hostnames
	// it concerns, for the blast radius.
	routes    []string
	clusters  []string
	hostnames []string
}

// Side is one end of a diff.
type Side struct {
	Revision string `json:"revision"`
	// Hash is snapshot.Set.Hash: equal hashes serve equal bytes.
	Hash string `json:"hash"`
}

// Counts of changes by kind.
type Counts struct {
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
}

// Report is the result of Snapshots.
type Report struct {
	Schema    string   `json:"schema"`
	From      Side     `json:"from"`
	To        Side     `json:"to"`
	Different bool     `json:"different"`
	Counts    Counts   `json:"counts"`
	Changes   []Change `json:"changes"`
	// Routes are the same changes route by route, for reviewers: match →
	// backends before and after, once for every class and listener.
	Routes []RouteChange `json:"routes"`
	// Objects are the Gateway API and gitxds objects added, removed or
	// changed, with their files (offline diffs only).
	Objects []ObjectChange `json:"objects,omitempty"`
	// NotAccepted are the objects of the "to" side that are not fully
	// accepted, set by the caller that built it.
	NotAccepted []Problem `json:"notAccepted,omitempty"`

	from, to *snapshot.Set
}

// Snapshots compares what from and to serve. A nil Set serves nothing.
func Snapshots(from, to *snapshot.Set) *Report {
	if from == nil {
		from = snapshot.New("", nil)
	}
	if to == nil {
		to = snapshot.New("", nil)
	}
	r := &Report{
		Schema:  Schema,
		From:    Side{Revision: from.Revision, Hash: from.Hash()},
		To:      Side{Revision: to.Revision, Hash: to.Hash()},
		Changes: []Change{},
		Routes:  []RouteChange{},
		from:    from,
		to:      to,
	}
	if r.From.Hash != r.To.Hash {
		var all []Change
		var rts []RouteChange
		for _, g := range groupsOf(from, to) {
			for _, c := range snapshot.Classes {
				a, b := from.In(g).Of(c), to.In(g).Of(c)
				if a == nil {
					a = &snapshot.Resources{}
				}
				if b == nil {
					b = &snapshot.Resources{}
				}
				d := classChanges(c, a, b)
				for i := range d.out {
					d.out[i].Group = g
				}
				for i := range d.rts {
					d.rts[i].Group = g
				}
				all, rts = append(all, d.out...), append(rts, d.rts...)
			}
		}
		r.Changes = mergeClasses(all)
		r.Routes = mergeRoutes(rts)
	}
	sortChanges(r.Changes)
	for _, c := range r.Changes {
		switch c.Kind {
		case Added:
			r.Counts.Added++
		case Removed:
			r.Counts.Removed++
		default:
			r.Counts.Changed++
		}
	}
	r.Different = len(r.Changes) > 0
	return r
}

// groupsOf lists the proxy groups of either Set: the default group, then
// the named ones sorted.
func groupsOf(sets ...*snapshot.Set) []snapshot.Group {
	seen := map[snapshot.Group]bool{}
	var named []snapshot.Group
	for _, s := range sets {
		for _, g := range s.GroupNames() {
			if !seen[g] {
				seen[g] = true
				named = append(named, g)
			}
		}
	}
	sort.Slice(named, func(i, j int) bool { return named[i] < named[j] })
	return append([]snapshot.Group{snapshot.DefaultGroup}, named...)
}

// classChanges compares the resources of one class.
func classChanges(c snapshot.Class, a, b *snapshot.Resources) *classDiff {
	d := &classDiff{class: c, rdsUsers: rdsUsers(a, b)}
	d.listeners(a.Listeners, b.Listeners)
	d.routeConfigs(a.Routes, b.Routes)
	d.clusters(a.Clusters, b.Clusters)
	d.endpoints(a.Endpoints, b.Endpoints)
	return d
}

// classDiff collects the changes of one class.
type classDiff struct {
	class snapshot.Class
	// rdsUsers: route configuration name -> listeners that fetch it.
	rdsUsers map[string][]string
	out      []Change
	rts      []RouteChange
}

func (d *classDiff) add(ch Change) {
	ch.Classes = []snapshot.Class{d.class}
	d.out = append(d.out, ch)
}

// same reports whether two messages are identical, comparing their
// deterministic encodings (much faster than proto.Equal on large route
// configurations); it is the fast path before normalisation.
func same(a, b proto.Message) bool {
	opts := proto.MarshalOptions{Deterministic: true}
	x, err1 := opts.Marshal(a)
	y, err2 := opts.Marshal(b)
	if err1 != nil || err2 != nil {
		return proto.Equal(a, b)
	}
	return bytes.Equal(x, y)
}

// pairNames matches two sorted-by-name lists: it calls fn for every name with
// the index in a and in b (-1 when absent).
func pairNames(an, bn []string, fn func(name string, i, j int)) {
	ai := make(map[string]int, len(an))
	for i, n := range an {
		ai[n] = i
	}
	bi := make(map[string]int, len(bn))
	for j, n := range bn {
		bi[n] = j
	}
	names := make([]string, 0, len(an)+len(bn))
	names = append(names, an...)
	for _, n := range bn {
		if _, ok := ai[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		i, ok := ai[n]
		if !ok {
			i = -1
		}
		j, ok := bi[n]
		if !ok {
			j = -1
		}
		fn(n, i, j)
	}
}

// mergeClasses lists a change that is the same in several classes once.
func mergeClasses(in []Change) []Change {
	out := []Change{}
	idx := map[string]int{}
	for _, c := range in {
		key := strings.Join([]string{string(c.Group), string(c.Kind), string(c.Type), strings.Join(c.Path, "\x00"),
			c.Summary, c.Diff, strings.Join(c.Listeners, "\x00")}, "\x01")
		if i, ok := idx[key]; ok {
			out[i].Classes = append(out[i].Classes, c.Classes...)
			continue
		}
		idx[key] = len(out)
		out = append(out, c)
	}
	return out
}

var typeGroup = map[Type]int{Listener: 0, RouteConfiguration: 1, VirtualHost: 1, Route: 1, Cluster: 2, Endpoints: 3}

var kindOrder = map[Kind]int{Removed: 0, Changed: 1, Added: 2}

func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if typeGroup[a.Type] != typeGroup[b.Type] {
			return typeGroup[a.Type] < typeGroup[b.Type]
		}
		for k := 0; k < len(a.Path) && k < len(b.Path); k++ {
			if a.Path[k] != b.Path[k] {
				return a.Path[k] < b.Path[k]
			}
		}
		if len(a.Path) != len(b.Path) {
			return len(a.Path) < len(b.Path)
		}
		if a.Kind != b.Kind {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Classes[0] < b.Classes[0]
	})
}

// Routes are the route names the change touches.
func (c *Change) Routes() []string { return c.routes }

// ClusterNames are the cluster names the change touches.
func (c *Change) ClusterNames() []string { return c.clusters }

// Hostnames are the hostnames (without port) the change concerns directly.
func (c *Change) Hostnames() []string { return c.hostnames }
