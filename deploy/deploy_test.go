// Package deploy holds the Kubernetes manifests (kustomize); this test builds
// them with kubectl and checks that the pieces refer to each other.
package deploy

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"sigs.k8s.io/yaml"
)

type object = map[string]any

// build renders deploy/; everything is in namespace gitxds-system.
func build(t *testing.T) map[string]object {
	t.Helper()
	objs := buildDir(t, ".")
	for key, o := range objs {
		if ns := str(o, "metadata", "namespace"); ns != "" && ns != "gitxds-system" {
			t.Errorf("%s in namespace %s", key, ns)
		}
	}
	return objs
}

// buildDir renders the kustomization in dir (of deploy/), by kind/name.
func buildDir(t *testing.T, dir string) map[string]object {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/%s: %v\n%s", dir, err, out)
	}
	objs := map[string]object{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		objs[str(o, "kind")+"/"+str(o, "metadata", "name")] = o
	}
	return objs
}

// at walks maps and lists: keys are strings, list indexes ints.
func at(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := o.(map[string]any)
			o = m[k]
		case int:
			l, _ := o.([]any)
			if k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

func cfg0(objs map[string]object) any { return at(objs["ConfigMap/gitxds-config"], "data") }

func str(o any, path ...any) string { s, _ := at(o, path...).(string); return s }

func list(o any, path ...any) []any { l, _ := at(o, path...).([]any); return l }

func TestKustomizeBuild(t *testing.T) {
	objs := build(t)
	for _, want := range []string{
		"Namespace/gitxds-system", "ServiceAccount/gitxds", "Role/gitxds-leader-election",
		"RoleBinding/gitxds-leader-election", "ConfigMap/gitxds-config", "Secret/gitxds-git-credentials",
		"Secret/gitxds-webhook", "Secret/gitxds-admin", "PersistentVolumeClaim/gitxds-state",
		"Deployment/gitxds", "Service/gitxds", "Service/gitxds-admin",
		"ConfigMap/envoy-bootstrap", "Deployment/envoy-edge-canary", "Deployment/envoy-edge-stable",
		"Service/envoy-edge", "Service/envoy-edge-internal",
		"ClusterRole/gitxds-service-discovery", "ClusterRoleBinding/gitxds-service-discovery",
	} {
		if objs[want] == nil {
			t.Errorf("missing %s", want)
		}
	}
	rules := list(objs["Role/gitxds-leader-election"], "rules")
	if len(rules) == 0 || str(rules[0], "resources", 0) != "leases" {
		t.Errorf("the Role does not grant leases: %v", rules)
	}
	// The fleet-wide rollout's objects (package kubestate), under HA.
	var rollout bool
	for _, r := range rules {
		if str(r, "apiGroups", 0) == "gitxds.dev" {
			var res, verbs []string
			for _, v := range list(r, "resources") {
				res = append(res, v.(string))
			}
			for _, v := range list(r, "verbs") {
				verbs = append(verbs, v.(string))
			}
			rollout = strings.Join(res, ",") == "fleetrollouts,replicareports" && strings.Join(verbs, ",") == "get,list,watch,create,update,patch"
		}
	}
	if !rollout {
		t.Errorf("the Role does not grant the FleetRollout and ReplicaReports: %v", rules)
	}
	// Package kubeevents creates events.k8s.io/v1 Events, not core ones.
	if len(rules) < 2 || str(rules[1], "apiGroups", 0) != "events.k8s.io" || str(rules[1], "resources", 0) != "events" ||
		str(rules[1], "verbs", 0) != "create" || str(cfg0(objs), "GITXDS_KUBE_EVENTS") != "true" {
		t.Errorf("the Role does not let gitxds create events.k8s.io Events, or they are off: %v", rules)
	}

	// Service discovery reads Services and EndpointSlices everywhere.
	granted := map[string]string{}
	for _, r := range list(objs["ClusterRole/gitxds-service-discovery"], "rules") {
		var verbs []string
		for _, v := range list(r, "verbs") {
			verbs = append(verbs, v.(string))
		}
		granted[str(r, "apiGroups", 0)+"/"+str(r, "resources", 0)] = strings.Join(verbs, ",")
	}
	for _, res := range []string{"/services", "discovery.k8s.io/endpointslices"} {
		if granted[res] != "get,list,watch" {
			t.Errorf("ClusterRole gitxds-service-discovery grants %s %q, want get,list,watch", res, granted[res])
		}
	}
	if b := objs["ClusterRoleBinding/gitxds-service-discovery"]; str(b, "subjects", 0, "name") != "gitxds" || str(b, "subjects", 0, "namespace") != "gitxds-system" {
		t.Errorf("ClusterRoleBinding gitxds-service-discovery does not bind gitxds-system/gitxds: %v", at(b, "subjects"))
	}

	cfg := at(objs["ConfigMap/gitxds-config"], "data").(map[string]any)
	pod := at(objs["Deployment/gitxds"], "spec", "template", "spec")
	if str(pod, "serviceAccountName") != "gitxds" {
		t.Error("gitxds does not run as its ServiceAccount")
	}
	c := at(pod, "containers", 0)
	if str(c, "envFrom", 0, "configMapRef", "name") != "gitxds-config" {
		t.Error("gitxds does not read gitxds-config")
	}
	mounts := map[string]string{} // mount path -> volume
	for _, m := range list(c, "volumeMounts") {
		mounts[str(m, "mountPath")] = str(m, "name")
	}
	volumes := map[string]any{}
	for _, v := range list(pod, "volumes") {
		volumes[str(v, "name")] = v
	}
	// Every file the configuration names is on a mounted Secret, and the
	// state directory is the PVC.
	for key, v := range cfg {
		path, _ := v.(string)
		if !strings.HasSuffix(key, "_FILE") && key != "GITXDS_STATE_DIR" {
			continue
		}
		dir := path
		if strings.HasSuffix(key, "_FILE") {
			dir = path[:strings.LastIndex(path, "/")]
		}
		vol, ok := volumes[mounts[dir]]
		if !ok {
			t.Errorf("%s=%s: %s is not mounted", key, path, dir)
			continue
		}
		if key == "GITXDS_STATE_DIR" {
			if str(vol, "persistentVolumeClaim", "claimName") != "gitxds-state" {
				t.Errorf("the state directory is not on the PVC: %v", vol)
			}
			continue
		}
		secret := str(vol, "secret", "secretName")
		file := path[strings.LastIndex(path, "/")+1:]
		if objs["Secret/"+secret] == nil || at(objs["Secret/"+secret], "stringData", file) == nil {
			t.Errorf("%s=%s: Secret %q has no key %q", key, path, secret, file)
		}
	}
	ports := map[string]bool{}
	for _, p := range list(c, "ports") {
		ports[str(p, "name")] = true
	}
	for _, svc := range []string{"Service/gitxds", "Service/gitxds-admin"} {
		for _, p := range list(objs[svc], "spec", "ports") {
			if !ports[str(p, "targetPort")] {
				t.Errorf("%s targets port %q the container does not name", svc, str(p, "targetPort"))
			}
		}
	}
}

// The Envoy bootstrap is a valid Bootstrap and points at the gitxds
// Service over ADS.
func TestEnvoyBootstrap(t *testing.T) {
	objs := build(t)
	b := bootstrap(t, objs)
	ads := b.GetDynamicResources().GetAdsConfig()
	if ads.GetApiType().String() != "GRPC" || ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != "gitxds" {
		t.Fatalf("ADS config: %v", ads)
	}
	if b.GetDynamicResources().GetCdsConfig().GetAds() == nil || b.GetDynamicResources().GetLdsConfig().GetAds() == nil {
		t.Fatal("CDS and LDS are not over ADS")
	}
	var cl *clusterv3.Cluster
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "gitxds" {
			cl = c
		}
	}
	sa := cl.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	svc := objs["Service/gitxds"]
	wantHost := str(svc, "metadata", "name") + "." + str(svc, "metadata", "namespace") + ".svc.cluster.local"
	port, _ := at(svc, "spec", "ports", 0, "port").(float64)
	if sa.GetAddress() != wantHost || float64(sa.GetPortValue()) != port {
		t.Fatalf("bootstrap points at %s:%d, the Service is %s:%v", sa.GetAddress(), sa.GetPortValue(), wantHost, port)
	}
	for _, d := range envoyDeployments(objs) {
		pod := at(d, "spec", "template", "spec")
		if str(pod, "volumes", 0, "configMap", "name") != "envoy-bootstrap" {
			t.Errorf("%s does not mount its bootstrap", str(d, "metadata", "name"))
		}
	}
	// Envoy's admin API is on a Unix socket, never on a TCP port; the
	// static listeners forward to it only the read-only GET
	// /stats/prometheus and GET /ready (the stats listener), and POST
	// /drain_listeners from loopback (the drain listener).
	if b.GetAdmin().GetAddress().GetPipe().GetPath() == "" || b.GetAdmin().GetAddress().GetSocketAddress() != nil {
		t.Errorf("Envoy admin address %v; want a Unix socket", b.GetAdmin().GetAddress())
	}
	allowed := map[string]map[string]string{ // listener -> path -> method
		statsListener: {"/stats/prometheus": "GET", "/ready": "GET"},
		drainListener: {"/drain_listeners": "POST"},
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		paths, ok := allowed[l.GetName()]
		if !ok {
			t.Errorf("unexpected static listener %s", l.GetName())
			continue
		}
		if l.GetName() == drainListener && l.GetAddress().GetSocketAddress().GetAddress() != "127.0.0.1" {
			t.Errorf("the drain listener is on %v, not loopback", l.GetAddress())
		}
		for _, r := range staticRoutes(t, l) {
			method := ""
			for _, h := range r.GetMatch().GetHeaders() {
				if h.GetName() == ":method" {
					method = h.GetStringMatch().GetExact()
				}
			}
			if want, ok := paths[r.GetMatch().GetPath()]; !ok || method != want {
				t.Errorf("static listener %s routes %s %v to %s", l.GetName(), method, r.GetMatch(), r.GetRoute().GetCluster())
			}
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != "envoy-admin" {
			continue
		}
		if p := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetPipe().GetPath(); p != b.GetAdmin().GetAddress().GetPipe().GetPath() {
			t.Errorf("the stats listener forwards to %q, the admin socket is %q", p, b.GetAdmin().GetAddress().GetPipe().GetPath())
		}
	}
}

// deploy/ha: several replicas with leader election, each with its own
// state directory, the rollout's state in the CRDs.
func TestHAOverlay(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	out, err := exec.Command(kubectl, "kustomize", "ha").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/ha: %v\n%s", err, out)
	}
	objs := map[string]object{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true}
		if ns := str(o, "metadata", "namespace"); ns != "gitxds-system" && !clusterScoped[str(o, "kind")] {
			t.Errorf("%s/%s in namespace %q", str(o, "kind"), str(o, "metadata", "name"), ns)
		}
		objs[str(o, "kind")+"/"+str(o, "metadata", "name")] = o
	}
	dep := objs["Deployment/gitxds"]
	if n, _ := at(dep, "spec", "replicas").(float64); n < 2 {
		t.Errorf("replicas %v", n)
	}
	if str(dep, "spec", "strategy", "type") != "RollingUpdate" {
		t.Error("HA should roll replicas one by one")
	}
	// No shared volume: each replica's state directory is its own.
	if objs["PersistentVolumeClaim/gitxds-state"] != nil {
		t.Error("deploy/ha has a PersistentVolumeClaim: the replicas would share it")
	}
	for _, v := range list(dep, "spec", "template", "spec", "volumes") {
		if str(v, "name") == "state" && (at(v, "emptyDir") == nil || at(v, "persistentVolumeClaim") != nil) {
			t.Errorf("the state volume is not an emptyDir of its own: %v", v)
		}
	}
	// The rollout's state lives in the CRDs, applied with the overlay.
	for _, crd := range []string{"fleetrollouts.gitxds.dev", "replicareports.gitxds.dev"} {
		if objs["CustomResourceDefinition/"+crd] == nil {
			t.Errorf("deploy/ha does not apply the CRD %s", crd)
		}
	}
	if objs["PodDisruptionBudget/gitxds"] == nil {
		t.Error("no PodDisruptionBudget")
	}
	// Variables used in $(...) must be defined before their use.
	defined := map[string]bool{}
	env := map[string]string{}
	for _, e := range list(dep, "spec", "template", "spec", "containers", 0, "env") {
		name, val := str(e, "name"), str(e, "value")
		for _, ref := range []string{"POD_IP", "POD_NAME"} {
			if strings.Contains(val, "$("+ref+")") && !defined[ref] {
				t.Errorf("%s uses $(%s) before it is defined", name, ref)
			}
		}
		defined[name], env[name] = true, val
	}
	if env["GITXDS_LEADER_ELECT"] != "true" || env["GITXDS_ADVERTISE_ADMIN_ADDRESS"] != "$(POD_IP):9400" || !defined["POD_UID"] || !defined["POD_NAME"] {
		t.Errorf("env: %v", env)
	}
}
