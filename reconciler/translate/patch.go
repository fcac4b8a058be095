package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// ApplyPatches applies the EnvoyPatchPolicies of x (x.Patches) to the Envoy
// classes of set, after everything else, and returns the patched set and
// one *Error per policy that could not be applied; the set of a policy
// that fails is left as it was before that policy (the rest serves).
//
// A policy is all or none: its patches are applied in order, each to the
// protojson form (proto field names) of the resource of its type and name,
// which is then decoded strictly (an unknown field fails); afterwards every
// resource of the class must pass ValidateAll, the references between them
// and the Envoy-semantics check, as translated resources do. A patch
// applies to each Envoy class that has its resource (a RouteConfiguration
// may exist in one class only: per-port and per-hostname route
// configurations, see the package comment) and must find it in one.
// Patches cannot create or delete resources. Proxyless gRPC nodes are
// never patched.
//
// With proxy groups, a policy applies to each group whose resources have
// its targets, and must find them in one group at least.
func ApplyPatches(x *ir.IR, set *snapshot.Set) (*snapshot.Set, []error) {
	if len(x.Patches) == 0 {
		return set, nil
	}
	if len(set.Groups) == 0 {
		classes, errs, _ := patchGroup(x, set.Classes, true)
		return snapshot.New(set.Revision, classes), errs
	}
	groups := map[snapshot.Group]map[snapshot.Class]*snapshot.Resources{}
	found := map[int]bool{}
	var errs []error
	for _, g := range append([]snapshot.Group{snapshot.DefaultGroup}, set.GroupNames()...) {
		classes, gerrs, in := patchGroup(x, set.In(g).Classes, false)
		groups[g] = classes
		errs = append(errs, gerrs...)
		for i := range in {
			found[i] = true
		}
	}
	for i, p := range x.Patches {
		if !found[i] {
			errs = append(errs, &Error{Owner: p.Policy, Element: "patch", Err: fmt.Errorf("no proxy group has its targets: %w", patchTargetsFound(p))})
		}
	}
	return snapshot.NewGroups(set.Revision, groups), dedupe(errs)
}

// patchGroup applies the policies of x to the classes of one group. With
// mustFind a policy whose targets are missing fails; without, it is left
// out of this group. found are the indexes of the policies whose targets
// the group has.
func patchGroup(x *ir.IR, in map[snapshot.Class]*snapshot.Resources, mustFind bool) (map[snapshot.Class]*snapshot.Resources, []error, map[int]bool) {
	classes := map[snapshot.Class]*snapshot.Resources{}
	for c, r := range in {
		classes[c] = r
	}
	perPort := classes[snapshot.Envoy]
	scoped := classes[snapshot.EnvoyScoped]
	shared := scoped == nil || scoped == perPort
	found := map[int]bool{}
	var errs []error
	for i, p := range x.Patches {
		if !mustFind && patchTargetsFound(p, perPort, scoped) != nil {
			continue
		}
		found[i] = true
		nextPort, err := patchClass(x, snapshot.Envoy, perPort, p)
		var nextScoped *snapshot.Resources
		if err == nil && !shared {
			nextScoped, err = patchClass(x, snapshot.EnvoyScoped, scoped, p)
		}
		if err == nil && mustFind {
			err = patchTargetsFound(p, perPort, scoped)
		}
		if err != nil {
			errs = append(errs, &Error{Owner: p.Policy, Element: "patch", Err: err})
			continue
		}
		perPort = nextPort
		if shared {
			scoped = nextPort
		} else {
			scoped = nextScoped
		}
	}
	classes[snapshot.Envoy] = perPort
	if _, ok := classes[snapshot.EnvoyScoped]; ok {
		classes[snapshot.EnvoyScoped] = scoped
	}
	return classes, errs, found
}

// patchTargetsFound checks that every patch of p names a resource of one
// Envoy class at least.
func patchTargetsFound(p ir.PatchPolicy, classes ...*snapshot.Resources) error {
	for i, jp := range p.Patches {
		found := false
		for _, res := range classes {
			if res != nil && findResource(res, jp.Type, jp.Name) >= 0 {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("patches[%d]: no %s named %q is generated", i, jp.Type, jp.Name)
		}
	}
	return nil
}

// patchClass applies p to a copy of res and checks the result.
func patchClass(x *ir.IR, class snapshot.Class, res *snapshot.Resources, p ir.PatchPolicy) (*snapshot.Resources, error) {
	out := &snapshot.Resources{
		Listeners:    append(res.Listeners[:0:0], res.Listeners...),
		Routes:       append(res.Routes[:0:0], res.Routes...),
		Clusters:     append(res.Clusters[:0:0], res.Clusters...),
		Endpoints:    append(res.Endpoints[:0:0], res.Endpoints...),
		ScopedRoutes: res.ScopedRoutes,
		Secrets:      append(res.Secrets[:0:0], res.Secrets...),
	}
	for i, jp := range p.Patches {
		idx := findResource(out, jp.Type, jp.Name)
		if idx < 0 {
			continue // checked in patchTargetsFound
		}
		m := resourceAt(out, jp.Type, idx)
		patched, err := patchMessage(m, jp.Operation)
		if err != nil {
			return nil, fmt.Errorf("patches[%d] (%s %q): %w", i, jp.Type, jp.Name, err)
		}
		setResourceAt(out, idx, patched)
	}
	t := newTranslation(x)
	t.validateAll(class, out)
	t.checkConsistency(class, out)
	t.checkSemantics(class, out)
	if len(t.errs) > 0 {
		// The resources' owners are not known here; the element says
		// which resource broke.
		var errs []error
		for _, err := range dedupe(t.errs) {
			var e *Error
			if errors.As(err, &e) {
				err = fmt.Errorf("%s: %w", e.Element, e.Err)
			}
			errs = append(errs, err)
		}
		return nil, fmt.Errorf("the patched resources are invalid (%s nodes): %w", class, errors.Join(errs...))
	}
	return out, nil
}

// patchMessage applies one RFC 6902 operation to the protojson form of m
// and decodes the result strictly into a new message of m's type.
func patchMessage(m proto.Message, op string) (proto.Message, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace from build to build on purpose;
	// compacted, the document (and the offsets in errors) are stable.
	var doc bytes.Buffer
	if err := json.Compact(&doc, raw); err != nil {
		return nil, err
	}
	patch, err := jsonpatch.DecodePatch([]byte("[" + op + "]"))
	if err != nil {
		return nil, fmt.Errorf("not a JSON patch operation: %w", err)
	}
	patched, err := patch.Apply(doc.Bytes())
	if err != nil {
		return nil, err
	}
	out := m.ProtoReflect().New().Interface()
	if err := (protojson.UnmarshalOptions{}).Unmarshal(patched, out); err != nil {
		// protojson's messages vary their spaces on purpose, too.
		return nil, fmt.Errorf("the patched resource does not decode: %s", strings.ReplaceAll(err.Error(), "\u00a0", " "))
	}
	return out, nil
}

// patchTypeURL is the type URL of a patch target, whose name is the
// type's short name ("Listener").
func patchTypeURL(t ir.PatchTarget) string {
	for _, u := range snapshot.TypeURLs {
		if xdsres.ShortType(u) == string(t) {
			return u
		}
	}
	return ""
}

func findResource(res *snapshot.Resources, typ ir.PatchTarget, name string) int {
	for i, r := range res.ByType(patchTypeURL(typ)) {
		if xdsres.Name(r) == name {
			return i
		}
	}
	return -1
}

func resourceAt(res *snapshot.Resources, typ ir.PatchTarget, i int) proto.Message {
	return res.ByType(patchTypeURL(typ))[i]
}

func setResourceAt(res *snapshot.Resources, i int, m proto.Message) {
	switch v := m.(type) {
	case *listenerv3.Listener:
		res.Listeners[i] = v
	case *routev3.RouteConfiguration:
		res.Routes[i] = v
	case *clusterv3.Cluster:
		res.Clusters[i] = v
	case *endpointv3.ClusterLoadAssignment:
		res.Endpoints[i] = v
	case *tlsv3.Secret:
		res.Secrets[i] = v
	}
}
