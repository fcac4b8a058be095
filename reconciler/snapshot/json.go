package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Format names the persistence encoding written by Marshal.
const Format = "gitxds.dev/snapshot/v1"

// file is the persistence encoding of a Set.
type file struct {
	Format   string                   `json:"format"`
	Revision string                   `json:"revision"`
	Classes  map[Class]*fileResources `json:"classes"`
	// Groups are the classes of each named proxy group; files written
	// before groups existed have none.
	Groups map[Group]map[Class]*fileResources `json:"groups,omitempty"`
}

type fileResources struct {
	Listeners    []json.RawMessage `json:"listeners"`
	Routes       []json.RawMessage `json:"routes"`
	Clusters     []json.RawMessage `json:"clusters"`
	Endpoints    []json.RawMessage `json:"endpoints"`
	ScopedRoutes []json.RawMessage `json:"scopedRoutes,omitempty"`
	Secrets      []json.RawMessage `json:"secrets,omitempty"`
}

// Marshal encodes a Set for persistence: JSON, per class, each resource in
// protojson. Unmarshal gives back a Set with the same Hash. Every type packed
// into an Any must be linked into the binary (see types.go).
func Marshal(set *Set) ([]byte, error) {
	if set == nil {
		return nil, errors.New("snapshot: marshal a nil set")
	}
	f := file{Format: Format, Revision: set.Revision}
	var err error
	if f.Classes, err = marshalClasses(set.Classes); err != nil {
		return nil, err
	}
	for _, g := range set.GroupNames() {
		if f.Groups == nil {
			f.Groups = map[Group]map[Class]*fileResources{}
		}
		if f.Groups[g], err = marshalClasses(set.Groups[g].Classes); err != nil {
			return nil, fmt.Errorf("group %s: %w", g, err)
		}
	}
	return indent(f) // map keys sorted: deterministic
}

func marshalClasses(classes map[Class]*Resources) (map[Class]*fileResources, error) {
	out := map[Class]*fileResources{}
	for c, r := range classes {
		fr, err := marshalResources(c, r)
		if err != nil {
			return nil, err
		}
		out[c] = fr
	}
	return out, nil
}

func marshalResources(c Class, r *Resources) (*fileResources, error) {
	if r == nil {
		r = &Resources{}
	}
	var (
		out fileResources
		err error
	)
	if out.Listeners, err = encodeAll(r.Listeners, false); err != nil {
		return nil, fmt.Errorf("snapshot: class %s listeners: %w", c, err)
	}
	if out.Routes, err = encodeAll(r.Routes, false); err != nil {
		return nil, fmt.Errorf("snapshot: class %s routes: %w", c, err)
	}
	if out.Clusters, err = encodeAll(r.Clusters, false); err != nil {
		return nil, fmt.Errorf("snapshot: class %s clusters: %w", c, err)
	}
	if out.Endpoints, err = encodeAll(r.Endpoints, false); err != nil {
		return nil, fmt.Errorf("snapshot: class %s endpoints: %w", c, err)
	}
	if out.ScopedRoutes, err = encodeAll(r.ScopedRoutes, false); err != nil {
		return nil, fmt.Errorf("snapshot: class %s scoped routes: %w", c, err)
	}
	if len(out.ScopedRoutes) == 0 {
		out.ScopedRoutes = nil
	}
	if out.Secrets, err = encodeAll(r.Secrets, false); err != nil {
		return nil, fmt.Errorf("snapshot: class %s secrets: %w", c, err)
	}
	if len(out.Secrets) == 0 {
		out.Secrets = nil
	}
	return &out, nil
}

// Unmarshal decodes what Marshal wrote.
func Unmarshal(data []byte) (*Set, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("snapshot: decode: %w", err)
	}
	if f.Format != Format {
		return nil, fmt.Errorf("snapshot: unknown format %q (want %q)", f.Format, Format)
	}
	groups := map[Group]map[Class]*Resources{}
	var err error
	if groups[DefaultGroup], err = unmarshalClasses(f.Classes); err != nil {
		return nil, err
	}
	for g, fc := range f.Groups {
		if g == DefaultGroup {
			return nil, errors.New("snapshot: decode: a group without a name")
		}
		if groups[g], err = unmarshalClasses(fc); err != nil {
			return nil, fmt.Errorf("group %s: %w", g, err)
		}
	}
	return NewGroups(f.Revision, groups), nil
}

func unmarshalClasses(fc map[Class]*fileResources) (map[Class]*Resources, error) {
	classes := map[Class]*Resources{}
	for c, fr := range fc {
		r := &Resources{}
		if fr != nil {
			var err error
			if r.Listeners, err = decodeAll[listenerv3.Listener](fr.Listeners); err != nil {
				return nil, fmt.Errorf("snapshot: class %s listeners: %w", c, err)
			}
			if r.Routes, err = decodeAll[routev3.RouteConfiguration](fr.Routes); err != nil {
				return nil, fmt.Errorf("snapshot: class %s routes: %w", c, err)
			}
			if r.Clusters, err = decodeAll[clusterv3.Cluster](fr.Clusters); err != nil {
				return nil, fmt.Errorf("snapshot: class %s clusters: %w", c, err)
			}
			if r.Endpoints, err = decodeAll[endpointv3.ClusterLoadAssignment](fr.Endpoints); err != nil {
				return nil, fmt.Errorf("snapshot: class %s endpoints: %w", c, err)
			}
			if r.ScopedRoutes, err = decodeAll[routev3.ScopedRouteConfiguration](fr.ScopedRoutes); err != nil {
				return nil, fmt.Errorf("snapshot: class %s scoped routes: %w", c, err)
			}
			if r.Secrets, err = decodeAll[tlsv3.Secret](fr.Secrets); err != nil {
				return nil, fmt.Errorf("snapshot: class %s secrets: %w", c, err)
			}
		}
		classes[c] = r
	}
	return classes, nil
}

// rendered is the output of RenderJSON, fields in the documented order.
type rendered struct {
	Revision     string            `json:"revision"`
	Listeners    []json.RawMessage `json:"listeners"`
	Routes       []json.RawMessage `json:"routes"`
	Clusters     []json.RawMessage `json:"clusters"`
	Endpoints    []json.RawMessage `json:"endpoints"`
	ScopedRoutes []json.RawMessage `json:"scopedRoutes,omitempty"`
	Secrets      []json.RawMessage `json:"secrets,omitempty"`
	// Groups are the named proxy groups', each in this form; absent when
	// there are none.
	Groups map[Group]*rendered `json:"groups,omitempty"`
}

// RenderJSON prints what a Set serves as one object
// {"revision", "listeners", "routes", "clusters", "endpoints",
// "scopedRoutes", "secrets"} (the last two only when there are any), each an array
// of Envoy v3 resources in protojson form with "@type": the union of the
// Envoy and gRPC classes (EnvoyScoped only in a Set without Envoy),
// deduplicated by name (the Envoy class wins a name clash) and sorted by
// name. The top level is the default proxy group; "groups" holds each
// named group's in the same form, only when the Set
// has groups. The output is byte-for-byte deterministic:
// protojson's randomised spacing is normalised away by re-encoding through
// encoding/json (sorted keys, numbers kept as written, two-space indent).
func RenderJSON(set *Set) ([]byte, error) {
	if set == nil {
		return nil, errors.New("snapshot: render a nil set")
	}
	out, err := renderSet(set)
	if err != nil {
		return nil, err
	}
	out.Revision = set.Revision
	for _, g := range set.GroupNames() {
		r, err := renderSet(set.Groups[g])
		if err != nil {
			return nil, fmt.Errorf("snapshot: render group %s: %w", g, err)
		}
		r.Revision = set.Revision
		if out.Groups == nil {
			out.Groups = map[Group]*rendered{}
		}
		out.Groups[g] = r
	}
	return indent(out)
}

func renderSet(set *Set) (*rendered, error) {
	out := &rendered{}
	var err error
	if out.Listeners, err = renderType(set, func(r *Resources) []*listenerv3.Listener { return r.Listeners },
		(*listenerv3.Listener).GetName); err != nil {
		return nil, fmt.Errorf("snapshot: render listeners: %w", err)
	}
	if out.Routes, err = renderType(set, func(r *Resources) []*routev3.RouteConfiguration { return r.Routes },
		(*routev3.RouteConfiguration).GetName); err != nil {
		return nil, fmt.Errorf("snapshot: render routes: %w", err)
	}
	if out.Clusters, err = renderType(set, func(r *Resources) []*clusterv3.Cluster { return r.Clusters },
		(*clusterv3.Cluster).GetName); err != nil {
		return nil, fmt.Errorf("snapshot: render clusters: %w", err)
	}
	if out.Endpoints, err = renderType(set, func(r *Resources) []*endpointv3.ClusterLoadAssignment { return r.Endpoints },
		(*endpointv3.ClusterLoadAssignment).GetClusterName); err != nil {
		return nil, fmt.Errorf("snapshot: render endpoints: %w", err)
	}
	if out.ScopedRoutes, err = renderType(set, func(r *Resources) []*routev3.ScopedRouteConfiguration { return r.ScopedRoutes },
		(*routev3.ScopedRouteConfiguration).GetName); err != nil {
		return nil, fmt.Errorf("snapshot: render scoped routes: %w", err)
	}
	if len(out.ScopedRoutes) == 0 {
		out.ScopedRoutes = nil
	}
	if out.Secrets, err = renderType(set, func(r *Resources) []*tlsv3.Secret { return r.Secrets },
		(*tlsv3.Secret).GetName); err != nil {
		return nil, fmt.Errorf("snapshot: render secrets: %w", err)
	}
	if len(out.Secrets) == 0 {
		out.Secrets = nil
	}
	return out, nil
}

// indent encodes v with two-space indentation, without HTML escaping (a
// route regex keeps its "<" and "&"), ending in a newline.
func indent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// renderType merges one resource type over the classes in Classes order, so
// the first class (Envoy) wins a name clash. EnvoyScoped is left out when
// the Set has an Envoy class: it is that class with scoped routes on some
// ports, and merging the two would mix both forms of those ports.
func renderType[T proto.Message](set *Set, get func(*Resources) []T, name func(T) string) ([]json.RawMessage, error) {
	seen := map[string]T{}
	var names []string
	for _, c := range Classes {
		r := set.Classes[c]
		if r == nil || c == EnvoyScoped && set.Classes[Envoy] != nil {
			continue
		}
		for _, x := range get(r) {
			n := name(x)
			if _, ok := seen[n]; ok {
				continue
			}
			seen[n] = x
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]json.RawMessage, 0, len(names))
	for _, n := range names {
		b, err := encode(seen[n], true)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", n, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func encodeAll[T proto.Message](items []T, withType bool) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(items))
	for _, x := range items {
		b, err := encode(x, withType)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// encode is protojson, normalised: compact, object keys sorted, numbers as
// protojson wrote them. withType wraps the message in an Any first, which
// puts "@type" in front.
func encode(m proto.Message, withType bool) (json.RawMessage, error) {
	if withType {
		a, err := anypb.New(m)
		if err != nil {
			return nil, err
		}
		m = a
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	return normalise(b)
}

// normalise re-encodes JSON with sorted keys and no spacing.
func normalise(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func decodeAll[T any, P interface {
	*T
	proto.Message
}](raw []json.RawMessage) ([]P, error) {
	out := make([]P, 0, len(raw))
	for i, b := range raw {
		m := P(new(T))
		if err := protojson.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}
