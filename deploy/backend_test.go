package deploy

import (
	"fmt"
	"strings"
	"testing"

	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/pipeline"
	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/status"
)

// No Backend can point the shared gateway at Envoy's own admin or at the
// deploy's other internals: the admin API is on a Unix socket, which a
// Backend endpoint (an IP or a hostname with a port) cannot name, and the
// production overlay refuses a Backend at the drain listener (loopback),
// at the Envoy stats port behind the fleet's Service, and at gitxds's admin
// Service. The addresses come from the rendered manifests.
func TestProductionRefusesEnvoyAdminAsBackend(t *testing.T) {
	objs := build(t)
	b := bootstrap(t, objs)
	if b.GetAdmin().GetAddress().GetPipe() == nil {
		t.Fatal("Envoy's admin is not on a Unix socket")
	}
	drain := staticListener(b, drainListener).GetAddress().GetSocketAddress()
	stats := staticListener(b, statsListener).GetAddress().GetSocketAddress()
	svcHost := func(name string) string {
		o := objs["Service/"+name]
		return fmt.Sprintf("%s.%s.svc.cluster.local", str(o, "metadata", "name"), str(o, "metadata", "namespace"))
	}
	adminPort, _ := at(objs["Service/gitxds-admin"], "spec", "ports", 0, "port").(float64)
	endpoints := map[string]string{ // Backend (namespace/name) -> endpoint
		"payments/payments-v1": fmt.Sprintf("{ip: {address: %s, port: %d}}", drain.GetAddress(), drain.GetPortValue()),
		"payments/payments-v2": fmt.Sprintf("{fqdn: {hostname: %s, port: %d}}", svcHost("envoy-edge"), stats.GetPortValue()),
		"shop/cart":            fmt.Sprintf("{fqdn: {hostname: %s, port: %d}}", svcHost("gitxds-admin"), int(adminPort)),
	}
	kust := "resources: [../production]\npatches:\n"
	for ref, ep := range endpoints {
		ns, name, _ := strings.Cut(ref, "/")
		kust += fmt.Sprintf("- target: {kind: Backend, namespace: %s, name: %s}\n  patch: |-\n    - op: replace\n      path: /spec/endpoints\n      value: [%s]\n", ns, name, ep)
	}
	fsys, err := source.WorktreeFS("..", source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dir := "overlays/test-envoy-internals"
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile(dir+"/kustomization.yaml", []byte(kust)); err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.New(render.Options{}).Run(fsys, dir, "example", nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{}
	for _, o := range res.Rejected() {
		if c := status.Problem(o); c != nil && c.Reason == model.ReasonAddressNotAllowed {
			refused[o.Namespace+"/"+o.Name] = c.Message
		}
	}
	for ref, ep := range endpoints {
		if _, ok := refused[ref]; !ok {
			t.Errorf("Backend %s at %s was accepted", ref, ep)
		}
	}
}
