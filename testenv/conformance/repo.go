package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/status"
)

// Overlay is the overlay of the repository Map writes.
const Overlay = "overlays/conformance"

// GatewayClassName replaces the suite's {GATEWAY_CLASS_NAME}.
const GatewayClassName = "gitxds"

// metadataName is the label the Kubernetes API server puts on every
// Namespace; the mapped Gateways select their original namespace with it.
const metadataName = "kubernetes.io/metadata.name"

// skipReadiness is the annotation of the Gateways the suite's
// NamespacesMustBeReady skips.
const skipReadiness = "gateway-api/skip-this-for-readiness"

// Repo is the config repository of one test.
type Repo struct {
	FS filesys.FileSystem
	// Cluster holds the objects that belong in a Kubernetes API server,
	// not in Git (Services, Deployments, Secrets, ...), by kind.
	Cluster map[string]int
	// Objects are the Secrets and Services among them, and the Secrets
	// the suite creates itself, as an API server would hold them.
	Objects *Cluster

	// files are the objects of each file written, for Update.
	files map[string][]obj
	// gens are the metadata.generation of objects Update changed (by
	// genKey); every other Gateway API object has generation 1.
	gens map[string]int64
	// skipReady are the Gateways annotated
	// gateway-api/skip-this-for-readiness, by name.
	skipReady map[string]bool
}

// Update changes the object of kind and name (its namespace as mapped) with
// f and gives it the next metadata.generation, as the API server does when
// an object's spec changes, then rewrites the repository: the second
// commit of a test that updates an object.
func (r *Repo) Update(kind, name string, f func(o map[string]any) error) error {
	for _, os := range r.files {
		for _, o := range os {
			if o.kind() != kind || o.name() != name {
				continue
			}
			if err := f(o); err != nil {
				return err
			}
			key := genKey(kind, o.namespace(), name)
			g, ok := r.gens[key]
			if !ok {
				g = generation
			}
			r.gens[key] = g + 1
			o.m("metadata")["generation"] = g + 1
			return r.write(r.files)
		}
	}
	return fmt.Errorf("no %s %s in the repository", kind, name)
}

// Map writes the base manifests and the test's manifests (paths in the
// module at dir) into a config repository in gitxds's layout:
//
//   - Namespaces go to platform/ with the label the API server would add;
//   - Gateways go to platform/ in namespace "platform" (gitxds's layout
//     keeps every Gateway there) with annotation gitxds.dev/addresses
//     (ProxyAddress), as an operator declares where clients reach the
//     proxies, and a proxy group of its own (annotation
//     gitxds.dev/proxy-group, ProxyGroup): in a cluster each Gateway gets
//     proxies of its own, so the suite's several Gateways on port 80 with
//     no hostname do not conflict; a listener that admits routes of its own
//     namespace (from: Same, the default) admits the Gateway's original
//     namespace instead, by label, and every parentRef and ReferenceGrant
//     "from" that names the Gateway's original namespace names "platform";
//   - GatewayClasses go to platform/ (gitxds gives its own class status;
//     it serves every Gateway of the repository, gatewayClassName is not
//     read), with the suite's {GATEWAY_CONTROLLER_NAME} gitxds's;
//   - every other Gateway API object goes to teams/<namespace>/;
//   - Services, Deployments, Secrets and the other core objects are not
//     configuration: they are counted in Cluster, and the Services and
//     Secrets are kept in Objects with the Secrets the suite creates (the
//     model.Cluster Build gives gitxds).
func Map(dir string, manifests []string) (*Repo, error) {
	var objs []obj
	for _, m := range append([]string{"base/manifests.yaml"}, manifests...) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(m)))
		if err != nil {
			return nil, err
		}
		b = bytes.ReplaceAll(b, []byte("{GATEWAY_CLASS_NAME}"), []byte(GatewayClassName))
		b = bytes.ReplaceAll(b, []byte("{GATEWAY_CONTROLLER_NAME}"), []byte(status.ControllerName))
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o map[string]any
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", m, err)
			}
			if o != nil {
				objs = append(objs, obj(o))
			}
		}
	}
	// The Gateways' original namespaces, by name.
	gwNS := map[string]bool{}
	for _, o := range objs {
		if o.kind() == "Gateway" {
			gwNS[o.namespace()+"/"+o.name()] = true
		}
	}
	r := &Repo{FS: filesys.MakeFsInMemory(), Cluster: map[string]int{}, Objects: newCluster(), gens: map[string]int64{}, skipReady: map[string]bool{}}
	if err := r.Objects.addSuiteSecrets(); err != nil {
		return nil, err
	}
	for k := range gwNS {
		r.Objects.gwNS[strings.SplitN(k, "/", 2)[0]] = true
	}
	files := map[string][]obj{}
	for _, o := range objs {
		group := strings.Split(o.str("apiVersion"), "/")[0]
		if group == "gateway.networking.k8s.io" {
			// The generation the API server gives an object it creates:
			// gitxds reports it as observedGeneration, as the suite expects.
			o.m("metadata")["generation"] = generation
		}
		switch kind := o.kind(); {
		case kind == "Namespace":
			meta := o.m("metadata")
			labels := sub(meta, "labels")
			labels[metadataName] = o.name()
			files["platform/namespaces.yaml"] = append(files["platform/namespaces.yaml"], o)
		case kind == "GatewayClass":
			files["platform/gatewayclasses.yaml"] = append(files["platform/gatewayclasses.yaml"], o)
		case kind == "Gateway":
			if a, _ := o.m("metadata")["annotations"].(map[string]any); a[skipReadiness] == "true" {
				r.skipReady[o.name()] = true
			}
			mapGateway(o)
			files["platform/gateways.yaml"] = append(files["platform/gateways.yaml"], o)
		case group == "gateway.networking.k8s.io":
			mapParentRefs(o, gwNS)
			f := "teams/" + o.namespace() + "/objects.yaml"
			files[f] = append(files[f], o)
		default:
			r.Cluster[kind]++
			if err := r.Objects.add(o); err != nil {
				return nil, err
			}
		}
	}
	r.files = files
	return r, r.write(files)
}

func (r *Repo) write(files map[string][]obj) error {
	dirs := map[string][]string{}
	for f := range files {
		dirs[path.Dir(f)] = append(dirs[path.Dir(f)], path.Base(f))
	}
	var overlay []string
	for d, names := range dirs {
		sort.Strings(names)
		overlay = append(overlay, "../../"+d)
		if err := r.put(d+"/kustomization.yaml", kustomization(names)); err != nil {
			return err
		}
	}
	sort.Strings(overlay)
	for f, os := range files {
		var buf bytes.Buffer
		for i, o := range os {
			if i > 0 {
				buf.WriteString("---\n")
			}
			b, err := yaml.Marshal(map[string]any(o))
			if err != nil {
				return err
			}
			buf.Write(b)
		}
		if err := r.put(f, buf.Bytes()); err != nil {
			return err
		}
	}
	return r.put(Overlay+"/kustomization.yaml", kustomization(overlay))
}

func kustomization(resources []string) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for _, r := range resources {
		fmt.Fprintf(&b, "- %s\n", r)
	}
	return []byte(b.String())
}

func (r *Repo) put(file string, b []byte) error {
	p := "/" + file
	if err := r.FS.MkdirAll(path.Dir(p)); err != nil {
		return err
	}
	return r.FS.WriteFile(p, b)
}

// ProxyAddress is where the runner's proxies listen (the tests may only
// use loopback): each mapped Gateway declares it in its
// gitxds.dev/addresses annotation, which gitxds reports as the Gateway's
// status.addresses, the address the suite sends a test's requests to.
const ProxyAddress = "127.0.0.1"

// ProxyGroup is the proxy group the runner gives the Gateway of this name
// (every mapped Gateway is in namespace platform, so names are unique): the
// name as a DNS label, dots made dashes, at most 63 characters.
func ProxyGroup(gateway string) string {
	g := strings.ReplaceAll(gateway, ".", "-")
	if len(g) > 63 {
		g = g[:63]
	}
	return strings.TrimRight(g, "-")
}

// mapGateway moves Gateway o to namespace platform and declares its
// address (ProxyAddress); its listeners that admit routes of the Gateway's
// namespace admit the original one.
func mapGateway(o obj) {
	meta := o.m("metadata")
	orig := o.namespace()
	meta["namespace"] = model.PlatformNamespace
	sub(meta, "annotations")[model.AnnotationAddresses] = ProxyAddress
	sub(meta, "annotations")[model.AnnotationProxyGroup] = ProxyGroup(o.name())
	spec := o.m("spec")
	ls, _ := spec["listeners"].([]any)
	for _, l := range ls {
		lm, ok := l.(map[string]any)
		if !ok {
			continue
		}
		// A certificateRef to a Secret of the Gateway's own namespace stays
		// one: without a namespace, it names the Secret beside the moved
		// Gateway (Cluster finds it there).
		refs, _ := sub(lm, "tls")["certificateRefs"].([]any)
		for _, r := range refs {
			if rm, ok := r.(map[string]any); ok && str(rm, "namespace") == orig {
				delete(rm, "namespace")
			}
		}
		if len(sub(lm, "tls")) == 0 {
			delete(lm, "tls")
		}
		ns := sub(sub(lm, "allowedRoutes"), "namespaces")
		if from, _ := ns["from"].(string); from == "" || from == "Same" {
			ns["from"] = "Selector"
			ns["selector"] = map[string]any{"matchLabels": map[string]any{metadataName: orig}}
		}
	}
}

// mapParentRefs points the parentRefs of route o (and the "from" of a
// ReferenceGrant) that name a mapped Gateway at namespace platform.
func mapParentRefs(o obj, gwNS map[string]bool) {
	spec, _ := o["spec"].(map[string]any)
	if spec == nil {
		return
	}
	if o.kind() == "ReferenceGrant" {
		from, _ := spec["from"].([]any)
		for _, f := range from {
			// Only a grant to the Gateways' original namespace follows
			// them; a grant from another namespace, kind or group keeps
			// allowing nothing.
			if fm, ok := f.(map[string]any); ok && fm["kind"] == "Gateway" && gwNamespaces(gwNS)[str(fm, "namespace")] {
				fm["namespace"] = model.PlatformNamespace
			}
		}
		return
	}
	refs, _ := spec["parentRefs"].([]any)
	for _, p := range refs {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		if k, _ := pm["kind"].(string); k != "" && k != "Gateway" {
			continue
		}
		ns, _ := pm["namespace"].(string)
		if ns == "" {
			ns = o.namespace()
		}
		if name, _ := pm["name"].(string); gwNS[ns+"/"+name] {
			pm["namespace"] = model.PlatformNamespace
		}
	}
}

// gwNamespaces returns the namespaces of the Gateways of gwNS.
func gwNamespaces(gwNS map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range gwNS {
		out[strings.SplitN(k, "/", 2)[0]] = true
	}
	return out
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// obj is a decoded manifest.
type obj map[string]any

func (o obj) str(k string) string { s, _ := o[k].(string); return s }
func (o obj) kind() string        { return o.str("kind") }
func (o obj) m(k string) map[string]any {
	return sub(o, k)
}
func (o obj) name() string      { s, _ := o.m("metadata")["name"].(string); return s }
func (o obj) namespace() string { s, _ := o.m("metadata")["namespace"].(string); return s }

// sub returns m[k] as a map, creating it when absent.
func sub(m map[string]any, k string) map[string]any {
	s, ok := m[k].(map[string]any)
	if !ok {
		s = map[string]any{}
		m[k] = s
	}
	return s
}
