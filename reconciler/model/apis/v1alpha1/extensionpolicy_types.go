package v1alpha1

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EnvoyExtensionPolicy adds Envoy HTTP filters (Lua, Wasm, external
// processing) to the routes it targets, and to no other. Platform-only:
// a team's object of this kind is refused. Envoy Gateway's shape, a
// subset, with an order field of gitxds's own (docs/extensions.md).
type EnvoyExtensionPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec of the policy.
	Spec EnvoyExtensionPolicySpec `json:"spec"`
}

// EnvoyExtensionPolicySpec lists the filters; each kind runs in its list's
// order, the kinds in the order extProc, wasm, lua.
type EnvoyExtensionPolicySpec struct {
	// TargetRefs are the HTTPRoutes, GRPCRoutes and Gateways (every route
	// attached to it) whose requests run the filters.
	// Validation: at least one.
	TargetRefs []NamespacedTargetReference `json:"targetRefs"`
	// Order places the policy's filters before or after a built-in filter.
	// Default: after envoy.filters.http.ext_authz, before envoy.filters.http.rbac.
	Order *FilterPlacement `json:"order,omitempty"`
	// ExtProc are external processors.
	ExtProc []ExtProc `json:"extProc,omitempty"`
	// Wasm are Wasm plugins.
	Wasm []Wasm `json:"wasm,omitempty"`
	// Lua are Lua scripts.
	// Validation: extProc, wasm and lua together have at least one filter.
	Lua []Lua `json:"lua,omitempty"`
}

// NamespacedTargetReference names an HTTPRoute, GRPCRoute or Gateway of
// any namespace (platform policies reach every team's routes).
type NamespacedTargetReference struct {
	// Group of the target.
	// Validation: gateway.networking.k8s.io.
	Group string `json:"group"`
	// Kind of the target.
	// Validation: HTTPRoute, GRPCRoute or Gateway.
	Kind string `json:"kind"`
	// Namespace of the target.
	Namespace string `json:"namespace"`
	// Name of the target.
	Name string `json:"name"`
}

// FilterPlacement is exactly one of before or after.
type FilterPlacement struct {
	// Before is the built-in filter the policy's filters run before.
	// Validation: one of envoy.filters.http.cors, basic_auth, jwt_authn, ext_authz, rbac, local_ratelimit, ratelimit (full names); exactly one of before and after.
	Before *string `json:"before,omitempty"`
	// After is the built-in filter the policy's filters run after.
	// Validation: as before.
	After *string `json:"after,omitempty"`
}

// LuaValueType is where a Lua script comes from; only Inline.
type LuaValueType string

// InlineLua is a script written in the policy.
const InlineLua LuaValueType = "Inline"

// Lua is a script defining envoy_on_request and/or envoy_on_response.
type Lua struct {
	// Type of the source.
	Type LuaValueType `json:"type"`
	// Inline is the script.
	// Validation: required; defines envoy_on_request or envoy_on_response.
	Inline *string `json:"inline,omitempty"`
}

// ExtProc is an external processor (envoy.service.ext_proc.v3) on a
// Backend of the platform.
type ExtProc struct {
	// BackendRefs name the processor's Backend (gRPC).
	// Validation: exactly one Backend of the policy's namespace.
	BackendRefs []BackendRef `json:"backendRefs"`
	// MessageTimeout bounds each exchange with the processor.
	// Default: Envoy's, 200ms.
	// Validation: positive.
	MessageTimeout *metav1.Duration `json:"messageTimeout,omitempty"`
	// FailOpen lets requests through when the processor fails.
	// Default: false.
	FailOpen *bool `json:"failOpen,omitempty"`
}

// BackendRef names a Backend of the policy's namespace (platform).
type BackendRef struct {
	// Group of the Backend.
	// Validation: gitxds.dev.
	Group string `json:"group"`
	// Kind of the Backend.
	// Validation: Backend.
	Kind string `json:"kind"`
	// Name of the Backend.
	Name string `json:"name"`
}

// WasmCodeSourceType is where Wasm code comes from.
type WasmCodeSourceType string

// Wasm code sources.
const (
	// HTTPWasmCode: fetched by Envoy from a URL, checked against its
	// SHA-256.
	HTTPWasmCode WasmCodeSourceType = "HTTP"
	// FileWasmCode: a file on the proxy host.
	FileWasmCode WasmCodeSourceType = "File"
)

// Wasm is a Wasm HTTP filter, run on V8.
type Wasm struct {
	// Name of the plugin, also its VM id.
	// Validation: lowercase letters, digits, '.', '_', '-'; at most 63; unique in the policy.
	Name string `json:"name"`
	// Code of the plugin.
	Code WasmCodeSource `json:"code"`
	// Config is handed to the plugin as JSON text.
	Config *json.RawMessage `json:"config,omitempty"`
	// FailOpen lets requests through when the plugin fails.
	// Default: false (they get an error).
	FailOpen *bool `json:"failOpen,omitempty"`
}

// WasmCodeSource is exactly the source its type names.
type WasmCodeSource struct {
	// Type of the source.
	Type WasmCodeSourceType `json:"type"`
	// HTTP is the code's URL.
	// Validation: required (type HTTP).
	HTTP *HTTPWasmCodeSource `json:"http,omitempty"`
	// File is the code's path on the proxy host.
	// Validation: required (type File).
	File *FileWasmCodeSource `json:"file,omitempty"`
}

// HTTPWasmCodeSource is code Envoy fetches and checks.
type HTTPWasmCodeSource struct {
	// URL of the code.
	// Validation: an http:// URL (gitxds Backends have no upstream TLS; the digest protects the code).
	URL string `json:"url"`
	// SHA256 of the code, which Envoy requires and checks.
	// Validation: 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
	// BackendRef is the platform Backend serving the URL's host.
	BackendRef BackendRef `json:"backendRef"`
}

// FileWasmCodeSource is a file on the proxy host.
type FileWasmCodeSource struct {
	// Path of the file.
	// Validation: a clean absolute path.
	Path string `json:"path"`
}

// EnvoyPatchPolicy changes generated Envoy resources with JSON patches
// (RFC 6902), applied after everything else: the escape hatch for what
// gitxds does not model. Platform-only.
type EnvoyPatchPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec of the policy.
	Spec EnvoyPatchPolicySpec `json:"spec"`
}

// PatchType is the kind of patches of a policy; only JSONPatch.
type PatchType string

// JSONPatchType is RFC 6902.
const JSONPatchType PatchType = "JSONPatch"

// EnvoyPatchPolicySpec lists the patches, applied in order, all or none.
type EnvoyPatchPolicySpec struct {
	// Type of the patches.
	Type PatchType `json:"type"`
	// JSONPatches in the order they are applied.
	// Validation: at least one.
	JSONPatches []EnvoyJSONPatch `json:"jsonPatches"`
}

// EnvoyJSONPatch is one operation on the resource of a type and name.
type EnvoyJSONPatch struct {
	// Type of the resource.
	// Validation: Listener, RouteConfiguration, Cluster, ClusterLoadAssignment or Secret.
	Type string `json:"type"`
	// Name of the resource (gitxds render -o yaml shows them).
	// Validation: not empty; a resource gitxds generates.
	Name string `json:"name"`
	// Operation on the resource.
	Operation JSONPatchOperation `json:"operation"`
}

// JSONPatchOperation is one RFC 6902 operation; paths are JSON pointers
// into the resource's protojson form with proto field names
// (/filter_chains/0/filters/0).
type JSONPatchOperation struct {
	// Op is add, remove, replace, move, copy or test.
	Op string `json:"op"`
	// Path is the JSON pointer the operation applies to.
	// Validation: starts with /.
	Path string `json:"path"`
	// From is the source of move and copy.
	// Validation: required for move and copy only.
	From *string `json:"from,omitempty"`
	// Value of add, replace and test.
	// Validation: required for add, replace and test only.
	Value *json.RawMessage `json:"value,omitempty"`
}
