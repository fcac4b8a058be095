package deploy

import (
	"fmt"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/xdsres"
)

// The static listeners of the Envoy bootstrap.
const (
	statsListener = "stats"
	drainListener = "drain"
	// rolloutGroupLabel is the Envoy pods' label that each Deployment
	// declares to gitxds as node metadata rolloutGroupKey.
	rolloutGroupLabel = "gitxds.dev/rollout-group"
	rolloutGroupKey   = "rollout-group"
)

// bootstrap parses and validates the bootstrap ConfigMap.
func bootstrap(t *testing.T, objs map[string]object) *bootstrapv3.Bootstrap {
	t.Helper()
	b := &bootstrapv3.Bootstrap{}
	parseBootstrap(t, str(objs["ConfigMap/envoy-bootstrap"], "data", "bootstrap.yaml"), b)
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return b
}

func parseBootstrap(t *testing.T, raw string, b *bootstrapv3.Bootstrap) {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(js, b); err != nil {
		t.Fatalf("bootstrap %s: %v", raw, err)
	}
}

// envoyDeployments are the Envoy Deployments, by name.
func envoyDeployments(objs map[string]object) []object {
	var names []string
	for k, o := range objs {
		if strings.HasPrefix(k, "Deployment/") && str(o, "spec", "template", "spec", "containers", 0, "name") == "envoy" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	out := make([]object, len(names))
	for i, n := range names {
		out[i] = objs[n]
	}
	return out
}

func staticRoutes(t *testing.T, l *listenerv3.Listener) []*routev3.Route {
	t.Helper()
	cms, err := xdsres.ConnectionManagers(l)
	if err != nil {
		t.Fatal(err)
	}
	var out []*routev3.Route
	for _, vh := range cms[0].HCM.GetRouteConfig().GetVirtualHosts() {
		out = append(out, vh.GetRoutes()...)
	}
	return out
}

func staticListener(b *bootstrapv3.Bootstrap, name string) *listenerv3.Listener {
	for _, l := range b.GetStaticResources().GetListeners() {
		if l.GetName() == name {
			return l
		}
	}
	return nil
}

// envoyContainer is the Envoy container of a Deployment with its $(VAR)
// references expanded as the kubelet does, POD_NAME being podName.
type envoyContainer struct {
	args  []string
	env   map[string]string
	ports map[string]float64 // name -> containerPort
	c     any
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func container(t *testing.T, d object, podName string) envoyContainer {
	t.Helper()
	c := at(d, "spec", "template", "spec", "containers", 0)
	podLabels, _ := at(d, "spec", "template", "metadata", "labels").(map[string]any)
	ec := envoyContainer{env: map[string]string{}, ports: map[string]float64{}, c: c}
	for _, e := range list(c, "env") {
		name := str(e, "name")
		switch fp := str(e, "valueFrom", "fieldRef", "fieldPath"); {
		case fp == "metadata.name":
			ec.env[name] = podName
		case strings.HasPrefix(fp, "metadata.labels['"):
			key := strings.TrimSuffix(strings.TrimPrefix(fp, "metadata.labels['"), "']")
			v, ok := podLabels[key].(string)
			if !ok {
				t.Errorf("%s: env %s refers to pod label %q, which the pod does not have", str(d, "metadata", "name"), name, key)
			}
			ec.env[name] = v
		case fp == "":
			ec.env[name] = str(e, "value")
		}
	}
	for _, a := range list(c, "args") {
		s, _ := a.(string)
		ec.args = append(ec.args, varRef.ReplaceAllStringFunc(s, func(m string) string {
			v, ok := ec.env[varRef.FindStringSubmatch(m)[1]]
			if !ok {
				t.Errorf("arg %q: %s is not defined", s, m)
			}
			return v
		}))
	}
	for _, p := range list(c, "ports") {
		ec.ports[str(p, "name")], _ = at(p, "containerPort").(float64)
	}
	return ec
}

// flag is the value of Envoy flag name, "" when absent.
func (ec envoyContainer) flag(name string) string {
	for i, a := range ec.args {
		if a == name && i+1 < len(ec.args) {
			return ec.args[i+1]
		}
	}
	return ""
}

// productionPolicy is the example repository's RolloutPolicy as the
// production overlay (deploy/'s GITXDS_PATH) renders it.
func productionObjects(t *testing.T) []object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	out, err := exec.Command(kubectl, "kustomize", "../overlays/production").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize overlays/production: %v\n%s", err, out)
	}
	var objs []object
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

func productionPolicy(t *testing.T) *rollout.Policy {
	t.Helper()
	for _, o := range productionObjects(t) {
		if str(o, "kind") != v1alpha1.KindRolloutPolicy {
			continue
		}
		js, _ := yaml.Marshal(o)
		var p v1alpha1.RolloutPolicy
		if err := yaml.UnmarshalStrict(js, &p); err != nil {
			t.Fatal(err)
		}
		pol, err := rollout.Compile(&p)
		if err != nil {
			t.Fatal(err)
		}
		return pol
	}
	t.Fatal("overlays/production has no RolloutPolicy")
	return nil
}

// Each Envoy Deployment's pods declare their rollout group to gitxds: the
// bootstrap merged with --config-yaml (as Envoy merges them) gives the node
// the label the example RolloutPolicy's canary stage selects, so the canary
// Deployment's Envoys, and they alone, take the first stage.
func TestEnvoyFleetRolloutGroups(t *testing.T) {
	objs := build(t)
	base := bootstrap(t, objs)
	pol := productionPolicy(t)
	groups := map[string]int{} // rollout group -> its pods' stage
	for _, d := range envoyDeployments(objs) {
		name := str(d, "metadata", "name")
		podName := name + "-5d8f7c9b4-x2x7q"
		ec := container(t, d, podName)
		group, _ := at(d, "spec", "template", "metadata", "labels", rolloutGroupLabel).(string)
		if sel, _ := at(d, "spec", "selector", "matchLabels", rolloutGroupLabel).(string); sel != group || group == "" {
			t.Errorf("%s: pod label %s=%q, selector %q: the Deployments' selectors must not overlap", name, rolloutGroupLabel, group, sel)
		}
		// Envoy: the --config-yaml bootstrap merged over --config-path's.
		b := proto.Clone(base).(*bootstrapv3.Bootstrap)
		override := &bootstrapv3.Bootstrap{}
		parseBootstrap(t, ec.flag("--config-yaml"), override)
		proto.Merge(b, override)
		if err := b.ValidateAll(); err != nil {
			t.Errorf("%s: merged bootstrap: %v", name, err)
		}
		nodeID := ec.flag("--service-node")
		if nodeID != podName {
			t.Errorf("%s: node id %q, want the pod name %q (Prometheus' label node is the pod name)", name, nodeID, podName)
		}
		labels := snapshot.Labels(b.GetNode())
		if labels[rolloutGroupKey] != group {
			t.Errorf("%s: node labels %v; want %s=%s", name, labels, rolloutGroupKey, group)
		}
		stage := pol.StageOf(nodeID, labels)
		if prev, ok := groups[group]; ok && prev != stage {
			t.Errorf("%s: group %s in stages %d and %d", name, group, prev, stage)
		}
		groups[group] = stage
		if n, _ := at(d, "spec", "replicas").(float64); n < 1 {
			t.Errorf("%s: %v replicas", name, n)
		}
	}
	if s, ok := groups["canary"]; !ok || pol.Stages[s].Name != "canary" {
		t.Errorf("the canary Envoys are in stage %v; want the canary stage (stages %v)", s, pol.Stages)
	}
	if s, ok := groups["stable"]; !ok || s == 0 {
		t.Errorf("the stable Envoys are in stage %v; want a later stage than the canary", s)
	}
}

// Every listener port of the example Gateways is a port of every Envoy
// pod and on a Service of the fleet; every certificate an HTTPS listener
// refers to is mounted where gitxds tells Envoy to read it.
func TestEnvoyServesEveryGatewayListener(t *testing.T) {
	objs := build(t)
	var gateways []*gwv1.Gateway
	for _, o := range productionObjects(t) {
		if str(o, "kind") != "Gateway" {
			continue
		}
		js, _ := yaml.Marshal(o)
		var g gwv1.Gateway
		if err := yaml.Unmarshal(js, &g); err != nil {
			t.Fatal(err)
		}
		gateways = append(gateways, &g)
	}
	if len(gateways) == 0 {
		t.Fatal("no Gateway in overlays/production")
	}
	var services []object
	for k, o := range objs {
		if strings.HasPrefix(k, "Service/") && str(o, "spec", "selector", "app.kubernetes.io/name") == "envoy-edge" {
			services = append(services, o)
		}
	}
	for _, d := range envoyDeployments(objs) {
		name := str(d, "metadata", "name")
		ec := container(t, d, name+"-0")
		podLabels, _ := at(d, "spec", "template", "metadata", "labels").(map[string]any)
		mounts := map[string]string{} // path -> volume
		for _, m := range list(ec.c, "volumeMounts") {
			mounts[str(m, "mountPath")] = str(m, "name")
		}
		secrets := map[string]string{} // volume -> Secret
		for _, v := range list(d, "spec", "template", "spec", "volumes") {
			secrets[str(v, "name")] = str(v, "secret", "secretName")
		}
		for _, g := range gateways {
			certsDir := model.DefaultCertsDir
			if dir, ok := g.Annotations[model.AnnotationCertsDir]; ok {
				certsDir = dir
			}
			for _, l := range g.Spec.Listeners {
				portName := ""
				for n, p := range ec.ports {
					if int32(p) == int32(l.Port) {
						portName = n
					}
				}
				if portName == "" {
					t.Errorf("%s: no container port %d (listener %s of Gateway %s)", name, l.Port, l.Name, g.Name)
					continue
				}
				if !onService(services, podLabels, portName) {
					t.Errorf("%s: port %s (%d, listener %s) is on no Service of the fleet", name, portName, l.Port, l.Name)
				}
				if l.TLS == nil {
					continue
				}
				for _, ref := range l.TLS.CertificateRefs {
					ns := g.Namespace
					if ref.Namespace != nil {
						ns = string(*ref.Namespace)
					}
					dir := path.Join(certsDir, ns, string(ref.Name))
					vol, ok := mounts[dir]
					if !ok {
						t.Errorf("%s: listener %s: certificate %s/%s is not mounted at %s", name, l.Name, ns, ref.Name, dir)
					} else if secrets[vol] != string(ref.Name) {
						t.Errorf("%s: %s is volume %s, Secret %q; want Secret %q", name, dir, vol, secrets[vol], ref.Name)
					}
				}
			}
		}
	}
}

// onService reports whether a Service selecting pods with podLabels
// targets the container port named portName.
func onService(services []object, podLabels map[string]any, portName string) bool {
	for _, svc := range services {
		sel, _ := at(svc, "spec", "selector").(map[string]any)
		match := len(sel) > 0
		for k, v := range sel {
			if podLabels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		for _, p := range list(svc, "spec", "ports") {
			if str(p, "targetPort") == portName {
				return true
			}
		}
	}
	return false
}

// Envoy is ready once LIVE (GET /ready through the stats listener) and
// drains gracefully before SIGTERM: the preStop hook POSTs
// /drain_listeners?graceful to the drain listener and waits out
// --drain-time-s, within the termination grace period.
func TestEnvoyReadinessAndDrain(t *testing.T) {
	objs := build(t)
	b := bootstrap(t, objs)
	stats, drain := staticListener(b, statsListener), staticListener(b, drainListener)
	if stats == nil || drain == nil {
		t.Fatal("the bootstrap lacks the stats or the drain listener")
	}
	for _, d := range envoyDeployments(objs) {
		name := str(d, "metadata", "name")
		ec := container(t, d, name+"-0")
		probe := at(ec.c, "readinessProbe", "httpGet")
		if str(probe, "path") != "/ready" || ec.ports[str(probe, "port")] != float64(stats.GetAddress().GetSocketAddress().GetPortValue()) {
			t.Errorf("%s: readiness probe %v; want GET /ready on the stats listener's port", name, probe)
		}
		script := strings.Join(func() []string {
			var s []string
			for _, a := range list(ec.c, "lifecycle", "preStop", "exec", "command") {
				s = append(s, fmt.Sprint(a))
			}
			return s
		}(), " ")
		sa := drain.GetAddress().GetSocketAddress()
		if !strings.Contains(script, fmt.Sprintf("/dev/tcp/%s/%d", sa.GetAddress(), sa.GetPortValue())) ||
			!strings.Contains(script, "POST /drain_listeners?graceful ") {
			t.Errorf("%s: preStop %q does not POST /drain_listeners?graceful to the drain listener %s:%d", name, script, sa.GetAddress(), sa.GetPortValue())
		}
		drainTime, err := strconv.Atoi(ec.flag("--drain-time-s"))
		if err != nil {
			t.Errorf("%s: --drain-time-s %q", name, ec.flag("--drain-time-s"))
		}
		m := regexp.MustCompile(`sleep (\d+)`).FindStringSubmatch(script)
		if m == nil {
			t.Fatalf("%s: preStop %q does not wait the drain out", name, script)
		}
		wait, _ := strconv.Atoi(m[1])
		grace, _ := at(d, "spec", "template", "spec", "terminationGracePeriodSeconds").(float64)
		if wait < drainTime || float64(wait) >= grace {
			t.Errorf("%s: drain %ds, preStop waits %ds, grace period %vs; want drain <= wait < grace", name, drainTime, wait, grace)
		}
	}
}
