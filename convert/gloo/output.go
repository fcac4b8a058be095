package gloo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// ReportFile is the report's path in the output repository.
const ReportFile = "gloo-conversion-report.txt"

// files collects the output's documents by path.
type files map[string][][]byte

func (f files) add(p, header string, obj any) error {
	b, err := marshal(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if header != "" {
		b = append([]byte(header), b...)
	}
	f[p] = append(f[p], b)
	return nil
}

// marshal writes obj as YAML without the fields of an unset status and
// creation timestamp that the API types always write.
func marshal(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return yaml.Marshal(m)
}

// namespace is a Kubernetes Namespace (only its name is written).
type namespace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
}

func meta(name, ns string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// write lays the converted objects out in the gitxds repository layout.
func (c *converter) write() (map[string][]byte, error) {
	f := files{}
	// platform/: Namespaces and the Gateway.
	var nss []string
	for ns := range c.namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		if err := f.add("platform/namespaces.yaml", "", &namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, err
		}
	}
	gw := &gwv1.Gateway{
		TypeMeta:   typeMeta(gwv1.GroupVersion.String(), "Gateway"),
		ObjectMeta: meta(c.opts.Gateway, platformNS),
		Spec: gwv1.GatewaySpec{
			GatewayClassName: "gitxds",
			Listeners: append([]gwv1.Listener{{
				Name: listenerHTTP, Port: gwv1.PortNumber(c.opts.HTTPPort), Protocol: gwv1.HTTPProtocolType, AllowedRoutes: allRoutes(),
			}}, c.https...),
		},
	}
	if err := f.add("platform/gateways.yaml", "# Converted from Gloo Edge: the HTTP listener serves the VirtualServices\n# without sslConfig, an HTTPS listener per hostname those with it.\n", gw); err != nil {
		return nil, err
	}
	teamFiles := map[string]map[string]bool{} // namespace -> file names
	teamFile := func(ns, name string) string {
		if teamFiles[ns] == nil {
			teamFiles[ns] = map[string]bool{}
		}
		teamFiles[ns][name] = true
		return path.Join("teams", ns, name)
	}
	// Backends and their policies.
	for _, k := range sortedKeys(c.backends) {
		b := c.backends[k]
		if err := f.add(teamFile(b.ns, "backends.yaml"), "", &v1alpha1.Backend{
			TypeMeta: typeMeta("gitxds.dev/v1alpha1", "Backend"), ObjectMeta: meta(b.name, b.ns),
			Spec: v1alpha1.BackendSpec{Endpoints: b.endpoints},
		}); err != nil {
			return nil, err
		}
		if b.policy != nil {
			p := *b.policy
			p.TargetRefs = []v1alpha1.PolicyTargetReference{{Group: string(groupGitxds), Kind: string(kindBackend), Name: b.name}}
			if err := f.add(teamFile(b.ns, "policies.yaml"), "", &v1alpha1.BackendTrafficPolicy{
				TypeMeta: typeMeta("gitxds.dev/v1alpha1", "BackendTrafficPolicy"), ObjectMeta: meta(b.name+"-connection", b.ns), Spec: p,
			}); err != nil {
				return nil, err
			}
		}
	}
	// HTTPRoutes and their rules' policies.
	gwNS := gwv1.Namespace(platformNS)
	for _, rt := range c.splitRoutes() {
		hr := &gwv1.HTTPRoute{
			TypeMeta: typeMeta(gwv1.GroupVersion.String(), "HTTPRoute"), ObjectMeta: meta(rt.name, rt.ns),
			Spec: gwv1.HTTPRouteSpec{Hostnames: rt.hostnames},
		}
		for _, s := range rt.sections {
			sn := gwv1.SectionName(s)
			hr.Spec.ParentRefs = append(hr.Spec.ParentRefs, gwv1.ParentReference{Name: gwv1.ObjectName(c.opts.Gateway), Namespace: &gwNS, SectionName: &sn})
		}
		for _, r := range rt.rules {
			hr.Spec.Rules = append(hr.Spec.Rules, r.rule)
		}
		header := fmt.Sprintf("# From %s %s (%s).\n", rt.src.kind, rt.src.key(), rt.src.file)
		if err := f.add(teamFile(rt.ns, "routes.yaml"), header, hr); err != nil {
			return nil, err
		}
		for _, r := range rt.rules {
			if r.policy == nil {
				continue
			}
			p := *r.policy
			section := string(*r.rule.Name)
			p.TargetRefs = []v1alpha1.PolicyTargetReference{{Group: gwv1.GroupName, Kind: "HTTPRoute", Name: rt.name, SectionName: &section}}
			if err := f.add(teamFile(rt.ns, "policies.yaml"), "", &v1alpha1.BackendTrafficPolicy{
				TypeMeta:   typeMeta("gitxds.dev/v1alpha1", "BackendTrafficPolicy"),
				ObjectMeta: meta(dnsLabel(rt.name+"-"+section), rt.ns), Spec: p,
			}); err != nil {
				return nil, err
			}
		}
	}
	// ReferenceGrants: HTTPRoutes to Backends of other namespaces, the
	// Gateway to certificate Secrets.
	for _, to := range sortedKeys(c.grants) {
		for _, from := range sortedKeys(c.grants[to]) {
			g := &gwv1beta1.ReferenceGrant{
				TypeMeta: typeMeta(gwv1beta1.GroupVersion.String(), "ReferenceGrant"), ObjectMeta: meta("httproutes-from-"+from, to),
				Spec: gwv1beta1.ReferenceGrantSpec{From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gwv1.Namespace(from)}}},
			}
			for _, name := range sortedKeys(c.grants[to][from]) {
				n := gwv1.ObjectName(name)
				g.Spec.To = append(g.Spec.To, gwv1beta1.ReferenceGrantTo{Group: groupGitxds, Kind: kindBackend, Name: &n})
			}
			if err := f.add(teamFile(to, "grants.yaml"), "", g); err != nil {
				return nil, err
			}
		}
	}
	for _, ns := range sortedKeys(c.secretGrants) {
		g := &gwv1beta1.ReferenceGrant{
			TypeMeta: typeMeta(gwv1beta1.GroupVersion.String(), "ReferenceGrant"), ObjectMeta: meta("gateway-certificates", ns),
			Spec: gwv1beta1.ReferenceGrantSpec{From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "Gateway", Namespace: platformNS}}},
		}
		for _, name := range sortedKeys(c.secretGrants[ns]) {
			n := gwv1.ObjectName(name)
			g.Spec.To = append(g.Spec.To, gwv1beta1.ReferenceGrantTo{Group: "", Kind: "Secret", Name: &n})
		}
		if err := f.add(teamFile(ns, "grants.yaml"), "", g); err != nil {
			return nil, err
		}
	}
	// Kustomizations.
	out := map[string][]byte{}
	for p, docs := range f {
		out[p] = bytes.Join(docs, []byte("---\n"))
	}
	out["platform/kustomization.yaml"] = kustomization("", "", []string{"gateways.yaml", "namespaces.yaml"})
	overlay := []string{"../../platform"}
	for _, ns := range sortedKeys(teamFiles) {
		out[path.Join("teams", ns, "kustomization.yaml")] = kustomization("", ns, sortedKeys(teamFiles[ns]))
		overlay = append(overlay, "../../teams/"+ns)
	}
	out[path.Join("overlays", c.opts.Overlay, "kustomization.yaml")] = kustomization(
		fmt.Sprintf("# %s: every converted team. Serve it with\n#   gitxds serve --path overlays/%s ...\n", c.opts.Overlay, c.opts.Overlay), "", overlay)
	var rep bytes.Buffer
	rep.WriteString("# gitxds convert gloo: what did not convert, or converted with a difference\n# (<file>: <field path>: <severity>: <message>).\n")
	c.r.sort()
	if err := c.r.Write(&rep); err != nil {
		return nil, err
	}
	out[ReportFile] = rep.Bytes()
	return out, nil
}

// Gateway API's limits on an HTTPRoute (its CRD's maxItems and CEL rule).
const (
	maxRules        = 16
	maxMatchesTotal = 128
)

// splitRoutes returns the HTTPRoutes to write: routes without rules are
// left out, and a route with more rules than one HTTPRoute may hold is
// split into <name>, <name>-2, ... (Gateway API's precedence orders matches
// across HTTPRoutes as within one, so nothing served changes).
func (c *converter) splitRoutes() []*routeOut {
	var out []*routeOut
	for _, rt := range c.routes {
		if len(rt.rules) == 0 {
			continue
		}
		part := &routeOut{}
		*part = *rt
		part.rules = nil
		matches := 0
		n := 1
		for _, r := range rt.rules {
			m := max(len(r.rule.Matches), 1)
			if len(part.rules) == maxRules || (len(part.rules) > 0 && matches+m > maxMatchesTotal) {
				out = append(out, part)
				n++
				next := &routeOut{}
				*next = *rt
				next.rules, matches = nil, 0
				next.name = fmt.Sprintf("%s-%d", rt.name, n)
				for c.routeNames[rt.ns+"/"+next.name] {
					n++
					next.name = fmt.Sprintf("%s-%d", rt.name, n)
				}
				c.routeNames[rt.ns+"/"+next.name] = true
				part = next
			}
			part.rules = append(part.rules, r)
			matches += m
		}
		out = append(out, part)
		if n > 1 {
			c.r.note(rt.src.file, fmt.Sprintf("%s %s", rt.src.kind, rt.src.key()), "more rules than one HTTPRoute holds (%d): written as HTTPRoutes %s to %s-%d", maxRules, rt.name, rt.name, n)
		}
	}
	return out
}

func kustomization(header, ns string, resources []string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	if ns != "" {
		fmt.Fprintf(&b, "namespace: %s\n", ns)
	}
	b.WriteString("resources:\n")
	for _, r := range resources {
		fmt.Fprintf(&b, "- %s\n", r)
	}
	return b.Bytes()
}
