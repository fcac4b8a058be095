package model

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/translate"
)

// envoyOnlyNote is added to the status of a policy one of whose targets is
// a GRPCRoute: proxyless gRPC clients run no HTTP filters and no patches.
const envoyOnlyNote = "applies to Envoy nodes only: proxyless gRPC clients of %s do not run it"

// extPolicies validates the EnvoyExtensionPolicies and puts each on
// the IR routes it targets (ir.Route.Extensions): an HTTPRoute or
// GRPCRoute of any namespace, or a Gateway (every route attached to it).
// Several policies may target one route; their filters all run, ordered
// by FilterOrder, then by policy namespace/name.
//
// Sets on EnvoyExtensionPolicies: Accepted (Accepted, Invalid,
// TargetNotFound).
func (b *builder) extPolicies() {
	routes := map[string]*route{}
	for _, r := range b.rts {
		routes[r.obj.src.Kind+" "+r.key()] = r
	}
	var objs []*object
	for _, o := range b.live() {
		if _, ok := o.typed.(*v1alpha1.EnvoyExtensionPolicy); ok {
			objs = append(objs, o)
		}
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].src.ID() < objs[j].src.ID() })
	for _, o := range objs {
		t := o.typed.(*v1alpha1.EnvoyExtensionPolicy)
		x, msg := b.newExtension(o, t)
		if msg != "" {
			o.reject(string(gwv1.PolicyReasonInvalid), "%s", msg)
			continue
		}
		var missing, notes []string
		var targets []*route
		for i, ref := range t.Spec.TargetRefs {
			rs, msg := b.extensionTargets(ref, routes)
			if msg != "" {
				missing = append(missing, fmt.Sprintf("targetRefs[%d]: %s", i, msg))
				continue
			}
			targets = append(targets, rs...)
		}
		seen := map[*route]bool{}
		for _, r := range targets {
			if seen[r] {
				continue
			}
			seen[r] = true
			if r.grpc {
				notes = append(notes, fmt.Sprintf(envoyOnlyNote, "GRPCRoute "+r.key()))
			}
			for _, m := range r.matches {
				m.ir.Extensions = append(m.ir.Extensions, *x)
			}
		}
		switch {
		case len(missing) > 0:
			o.set(CondAccepted, metav1.ConditionFalse, string(gwv1.PolicyReasonTargetNotFound), o.msg("%s", strings.Join(missing, "; ")))
		default:
			o.set(CondAccepted, metav1.ConditionTrue, string(gwv1.PolicyReasonAccepted), strings.Join(append([]string{"accepted"}, notes...), "; "))
		}
	}
}

// extensionTargets resolves a platform policy's targetRef to routes.
func (b *builder) extensionTargets(ref v1alpha1.NamespacedTargetReference, routes map[string]*route) ([]*route, string) {
	switch {
	case ref.Group == gatewayGroup && (ref.Kind == "HTTPRoute" || ref.Kind == "GRPCRoute"):
		r, ok := routes[ref.Kind+" "+ref.Namespace+"/"+ref.Name]
		if !ok {
			return nil, fmt.Sprintf("%s %s/%s does not exist or is not accepted", ref.Kind, ref.Namespace, ref.Name)
		}
		return []*route{r}, ""
	case ref.Group == gatewayGroup && ref.Kind == "Gateway":
		var g *gateway
		for _, gw := range b.gws {
			if gw.gw.Namespace == ref.Namespace && gw.gw.Name == ref.Name {
				g = gw
			}
		}
		if g == nil {
			return nil, fmt.Sprintf("Gateway %s/%s does not exist or is not accepted", ref.Namespace, ref.Name)
		}
		var out []*route
		for _, r := range b.rts {
			for _, a := range r.attached {
				if a.l.gw == g {
					out = append(out, r)
					break
				}
			}
		}
		return out, ""
	default:
		return nil, fmt.Sprintf("%s/%s is not a supported target; target an HTTPRoute, GRPCRoute or Gateway (group %s)", ref.Group, ref.Kind, gatewayGroup)
	}
}

// sha256Hex is a SHA-256 digest written in hex, as Envoy compares it
// (RemoteAsyncDataProvider checks the fetched code's digest,
// source/common/config/remote_data_fetcher.cc).
var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// wasmName is what a Wasm plugin may be named: it is also its VM id.
var wasmName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// newExtension validates a policy and builds its IR, or says why not.
func (b *builder) newExtension(o *object, t *v1alpha1.EnvoyExtensionPolicy) (*ir.Extension, string) {
	s := t.Spec
	if len(s.TargetRefs) == 0 {
		return nil, "spec.targetRefs is empty"
	}
	if len(s.ExtProc)+len(s.Wasm)+len(s.Lua) == 0 {
		return nil, "the policy has no filter; set extProc, wasm or lua"
	}
	x := &ir.Extension{Policy: o.ref()}
	x.Policy.File = ""
	if ord := s.Order; ord != nil {
		anchors := make([]string, 0, len(translate.ExtensionAnchors))
		for _, a := range translate.ExtensionAnchors {
			anchors = append(anchors, string(a))
		}
		switch {
		case (ord.Before == nil) == (ord.After == nil):
			return nil, "order: set exactly one of before and after"
		case ord.Before != nil && !translate.IsExtensionAnchor(*ord.Before):
			return nil, fmt.Sprintf("order.before: %q is not one of %s", *ord.Before, strings.Join(anchors, ", "))
		case ord.After != nil && !translate.IsExtensionAnchor(*ord.After):
			return nil, fmt.Sprintf("order.after: %q is not one of %s", *ord.After, strings.Join(anchors, ", "))
		case ord.Before != nil:
			x.Before = *ord.Before
		default:
			x.After = *ord.After
		}
	}
	for i, l := range s.Lua {
		if l.Type != v1alpha1.InlineLua || l.Inline == nil {
			return nil, fmt.Sprintf("lua[%d]: only type Inline with lua[%d].inline is supported", i, i)
		}
		src := *l.Inline
		if !strings.Contains(src, "envoy_on_request") && !strings.Contains(src, "envoy_on_response") {
			return nil, fmt.Sprintf("lua[%d].inline defines neither envoy_on_request nor envoy_on_response", i)
		}
		x.Lua = append(x.Lua, ir.Lua{Source: src})
	}
	for i, e := range s.ExtProc {
		if len(e.BackendRefs) != 1 {
			return nil, fmt.Sprintf("extProc[%d].backendRefs must name exactly one Backend", i)
		}
		c, msg := b.platformBackend(o, e.BackendRefs[0])
		if msg != "" {
			return nil, fmt.Sprintf("extProc[%d].backendRefs[0]: %s", i, msg)
		}
		out := ir.ExtProc{Cluster: c, FailOpen: e.FailOpen != nil && *e.FailOpen}
		if e.MessageTimeout != nil {
			if e.MessageTimeout.Duration <= 0 {
				return nil, fmt.Sprintf("extProc[%d].messageTimeout must be positive", i)
			}
			out.Timeout = e.MessageTimeout.Duration
		}
		x.ExtProc = append(x.ExtProc, out)
	}
	names := map[string]bool{}
	for i, w := range s.Wasm {
		if !wasmName.MatchString(w.Name) {
			return nil, fmt.Sprintf("wasm[%d].name %q must be lowercase letters, digits, '.', '_' or '-' (at most 63)", i, w.Name)
		}
		if names[w.Name] {
			return nil, fmt.Sprintf("wasm[%d].name %q is used twice", i, w.Name)
		}
		names[w.Name] = true
		out := ir.Wasm{Name: w.Name, FailOpen: w.FailOpen != nil && *w.FailOpen}
		if w.Config != nil {
			var v any
			if err := json.Unmarshal(*w.Config, &v); err != nil {
				return nil, fmt.Sprintf("wasm[%d].config: %v", i, err)
			}
			compact, _ := json.Marshal(v) // keys sorted: deterministic
			out.Config = string(compact)
		}
		switch c := w.Code; {
		case c.Type == v1alpha1.HTTPWasmCode && c.HTTP != nil && c.File == nil:
			u, err := url.Parse(c.HTTP.URL)
			if err != nil || u.Scheme != "http" || u.Host == "" {
				return nil, fmt.Sprintf("wasm[%d].code.http.url %q must be an http:// URL (the sha256 protects the code; gitxds Backends have no upstream TLS)", i, c.HTTP.URL)
			}
			if !sha256Hex.MatchString(c.HTTP.SHA256) {
				return nil, fmt.Sprintf("wasm[%d].code.http.sha256 must be the code's SHA-256 in lowercase hex (64 digits): Envoy refuses remote Wasm code without it", i)
			}
			cl, msg := b.platformBackend(o, c.HTTP.BackendRef)
			if msg != "" {
				return nil, fmt.Sprintf("wasm[%d].code.http.backendRef: %s", i, msg)
			}
			out.URL, out.SHA256, out.Cluster = c.HTTP.URL, c.HTTP.SHA256, cl
		case c.Type == v1alpha1.FileWasmCode && c.File != nil && c.HTTP == nil:
			if !path.IsAbs(c.File.Path) || path.Clean(c.File.Path) != c.File.Path {
				return nil, fmt.Sprintf("wasm[%d].code.file.path %q must be a clean absolute path on the proxy host", i, c.File.Path)
			}
			out.File = c.File.Path
		default:
			return nil, fmt.Sprintf("wasm[%d].code: set type HTTP with http, or type File with file", i)
		}
		x.Wasm = append(x.Wasm, out)
	}
	return x, ""
}

// platformBackend resolves a Backend of the platform (the namespace of a
// platform policy) to its cluster, which it adds to the model's clusters.
func (b *builder) platformBackend(o *object, ref v1alpha1.BackendRef) (string, string) {
	if ref.Group != v1alpha1.Group || ref.Kind != v1alpha1.KindBackend {
		return "", fmt.Sprintf("%s/%s is not supported; refer to a Backend (group %s)", ref.Group, ref.Kind, v1alpha1.Group)
	}
	key := o.src.Namespace + "/" + ref.Name
	be, ok := b.backends[key]
	if !ok {
		return "", fmt.Sprintf("Backend %s does not exist or is not accepted", key)
	}
	if _, ok := b.clusters[key]; !ok {
		b.clusters[key] = &ir.Cluster{Name: key, Owner: be.obj.ref(), Endpoints: be.endpoints, DNS: be.dns}
	}
	return key, ""
}

// patchTargets are the resource types an EnvoyPatchPolicy may patch.
var patchTargets = map[string]ir.PatchTarget{
	string(ir.PatchListener):              ir.PatchListener,
	string(ir.PatchRouteConfiguration):    ir.PatchRouteConfiguration,
	string(ir.PatchCluster):               ir.PatchCluster,
	string(ir.PatchClusterLoadAssignment): ir.PatchClusterLoadAssignment,
	string(ir.PatchSecret):                ir.PatchSecret,
}

// patchOps are the RFC 6902 operations, with whether each needs a value
// and a from.
var patchOps = map[string]struct{ value, from bool }{
	"add": {value: true}, "replace": {value: true}, "test": {value: true},
	"remove": {}, "move": {from: true}, "copy": {from: true},
}

// patchPolicies validates the EnvoyPatchPolicies into ir.PatchPolicy, by
// namespace/name. Whether a patch applies is known after translation
// (translate.ApplyPatches); the pipeline then rejects a policy that does
// not (RejectAfterTranslate).
//
// Sets on EnvoyPatchPolicies: Accepted (Accepted, Invalid).
func (b *builder) patchPolicies() []ir.PatchPolicy {
	var out []ir.PatchPolicy
	for _, o := range b.live() {
		t, ok := o.typed.(*v1alpha1.EnvoyPatchPolicy)
		if !ok {
			continue
		}
		p, msg := newPatchPolicy(o, t)
		if msg != "" {
			o.reject(string(gwv1.PolicyReasonInvalid), "%s", msg)
			continue
		}
		o.set(CondAccepted, metav1.ConditionTrue, string(gwv1.PolicyReasonAccepted), "accepted; "+fmt.Sprintf(envoyOnlyNote, "any route"))
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy.String() < out[j].Policy.String() })
	return out
}

func newPatchPolicy(o *object, t *v1alpha1.EnvoyPatchPolicy) (ir.PatchPolicy, string) {
	p := ir.PatchPolicy{Policy: o.ref()}
	p.Policy.File = ""
	if t.Spec.Type != v1alpha1.JSONPatchType {
		return p, fmt.Sprintf("spec.type %q: only JSONPatch is supported", t.Spec.Type)
	}
	if len(t.Spec.JSONPatches) == 0 {
		return p, "spec.jsonPatches is empty"
	}
	for i, jp := range t.Spec.JSONPatches {
		typ, ok := patchTargets[jp.Type]
		if !ok {
			return p, fmt.Sprintf("jsonPatches[%d].type %q is not one of %s", i, jp.Type, strings.Join(sortedKeys(patchTargets), ", "))
		}
		if jp.Name == "" {
			return p, fmt.Sprintf("jsonPatches[%d].name is empty", i)
		}
		op := jp.Operation
		rule, ok := patchOps[op.Op]
		if !ok {
			return p, fmt.Sprintf("jsonPatches[%d].operation.op %q is not one of %s", i, op.Op, strings.Join(sortedKeys(patchOps), ", "))
		}
		if !strings.HasPrefix(op.Path, "/") {
			return p, fmt.Sprintf("jsonPatches[%d].operation.path %q must be a JSON pointer starting with /", i, op.Path)
		}
		if rule.value != (op.Value != nil) {
			return p, fmt.Sprintf("jsonPatches[%d].operation: %s %s a value", i, op.Op, needs(rule.value))
		}
		if rule.from != (op.From != nil) {
			return p, fmt.Sprintf("jsonPatches[%d].operation: %s %s from", i, op.Op, needs(rule.from))
		}
		enc, err := json.Marshal(op)
		if err != nil {
			return p, fmt.Sprintf("jsonPatches[%d].operation: %v", i, err)
		}
		p.Patches = append(p.Patches, ir.JSONPatch{Type: typ, Name: jp.Name, Operation: string(enc)})
	}
	return p, ""
}

func needs(yes bool) string {
	if yes {
		return "needs"
	}
	return "takes no"
}

// RejectAfterTranslate marks the object ref as not accepted for a failure
// found after the model was built (an EnvoyPatchPolicy that does not
// apply): its status says why (msg, after the object's file and id), and
// it is not kept as last accepted.
func (o *Output) RejectAfterTranslate(ref ir.ObjectRef, reason, msg string) {
	for i := range o.Status {
		st := &o.Status[i]
		if st.ObjectRef.Kind != ref.Kind || st.ObjectRef.Namespace != ref.Namespace || st.ObjectRef.Name != ref.Name {
			continue
		}
		c := metav1.Condition{Type: CondAccepted, Status: metav1.ConditionFalse, Reason: reason,
			Message: fmt.Sprintf("%s: %s: %s", st.File, ref, msg)}
		replaced := false
		for j := range st.Conditions {
			if st.Conditions[j].Type == CondAccepted {
				st.Conditions[j], replaced = c, true
			}
		}
		if !replaced {
			st.Conditions = append(st.Conditions, c)
		}
		delete(o.Accepted, ref.String())
	}
}
