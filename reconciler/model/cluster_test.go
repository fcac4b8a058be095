package model

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/credentials/testcerts"
	"gitxds.dev/gitxds/reconciler/status"
)

// fakeCluster is a Cluster of fixed Secrets and Services.
type fakeCluster struct {
	secrets  map[string]map[string][]byte // "ns/name"
	services map[string]map[string]int32  // ports by name
}

func (c fakeCluster) Secret(ns, name string) (map[string][]byte, bool) {
	d, ok := c.secrets[ns+"/"+name]
	return d, ok
}
func (c fakeCluster) Service(ns, name string) (map[string]int32, bool) {
	p, ok := c.services[ns+"/"+name]
	return p, ok
}

// With the cluster known, a listener whose certificate Secret is missing
// or does not hold a certificate and key is ResolvedRefs=False
// InvalidCertificateRef and not served, a valid one is served, and a
// route to a Service the API server does not have is ResolvedRefs=False
// BackendNotFound. The listener of the missing Secret counts the routes
// that name it in attachedRoutes, as Gateway API defines attachment, though
// nothing is served on it. Without it nothing is checked and ResolvedRefs says so.
func TestCluster(t *testing.T) {
	dir := t.TempDir()
	certs, err := testcerts.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	read := func(f string) []byte {
		b, err := os.ReadFile(filepath.Clean(f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	crt, key := read(certs.ServerCert), read(certs.ServerKey)
	in := readCase(t, "testdata/cluster.in.yaml")
	in.Cluster = fakeCluster{
		secrets: map[string]map[string][]byte{
			"platform/good":      {"tls.crt": crt, "tls.key": key},
			"platform/malformed": {"tls.crt": []byte("not a certificate"), "tls.key": key},
		},
		services: map[string]map[string]int32{"a/web": {"http": 8080}},
	}
	st := statusByID(Build(in))
	ls := map[gwv1.SectionName]gwv1.ListenerStatus{}
	for _, l := range st["Gateway platform/web"].Listeners {
		ls[l.Name] = l
	}
	expectCond(t, "listener good-cert", ls["good-cert"].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", "holds a valid tls.crt")
	expectCond(t, "listener good-cert", ls["good-cert"].Conditions, "Programmed", metav1.ConditionTrue, "Programmed", "")
	expectCond(t, "listener missing-cert", ls["missing-cert"].Conditions, "ResolvedRefs", metav1.ConditionFalse, "InvalidCertificateRef", "does not exist")
	expectCond(t, "listener missing-cert", ls["missing-cert"].Conditions, "Programmed", metav1.ConditionFalse, "Invalid", "")
	if n := ls["missing-cert"].AttachedRoutes; n != 1 {
		t.Errorf("listener missing-cert: attachedRoutes %d, want 1 (route to-missing-cert; other-host has no hostname of it)", n)
	}
	expectCond(t, "listener malformed-cert", ls["malformed-cert"].Conditions, "ResolvedRefs", metav1.ConditionFalse, "InvalidCertificateRef", "valid certificate and key")
	expectCond(t, "HTTPRoute a/to-service", st["HTTPRoute a/to-service"].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", "")
	expectCond(t, "HTTPRoute a/to-missing-service", st["HTTPRoute a/to-missing-service"].Conditions, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound", "does not exist")

	// Offline: nothing checked, and the listeners say so.
	st = statusByID(Build(readCase(t, "testdata/cluster.in.yaml")))
	for _, l := range st["Gateway platform/web"].Listeners {
		if l.Name != "http" {
			expectCond(t, "offline listener "+string(l.Name), l.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", "not checked by the control plane")
		}
	}
	expectCond(t, "offline HTTPRoute a/to-missing-service", st["HTTPRoute a/to-missing-service"].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", "")
}

func statusByID(out *Output) map[string]status.Object {
	m := map[string]status.Object{}
	for _, o := range out.Status {
		m[o.ObjectRef.String()] = o
	}
	return m
}

func expectCond(t *testing.T, what string, conds []metav1.Condition, typ string, st metav1.ConditionStatus, reason, msg string) {
	t.Helper()
	c := apimeta.FindStatusCondition(conds, typ)
	if c == nil || c.Status != st || c.Reason != reason || !strings.Contains(c.Message, msg) {
		t.Errorf("%s: condition %s is %+v, want %s %s with %q", what, typ, c, st, reason, msg)
	}
}

// A BackendTLSPolicy on a Service gives TLS to the clusters of the
// Service: of every port without sectionName, of the named port only with
// it, which needs the cluster's Services (offline that target is
// TargetNotFound and nothing gets TLS from it); a Gateway routing to the
// Service is its ancestor.
func TestBackendTLSServiceTargets(t *testing.T) {
	tlsOf := func(out *Output) map[string]string {
		m := map[string]string{}
		for _, c := range out.IR.Clusters {
			if c.Service != nil {
				sni := ""
				if c.UpstreamTLS != nil {
					sni = c.UpstreamTLS.SNI
				}
				m[fmt.Sprintf("%s:%d", c.Service.Name, c.Service.Port)] = sni
			}
		}
		return m
	}
	offline := Build(readCase(t, "testdata/backend-tls-service.in.yaml"))
	want := map[string]string{"web:443": "web.a.svc", "web:8443": "web.a.svc", "shop:443": "", "shop:8080": ""}
	if got := tlsOf(offline); !reflect.DeepEqual(got, want) {
		t.Errorf("offline: SNI by Service cluster %v, want %v", got, want)
	}
	st := statusByID(offline)
	expectCond(t, "offline BackendTLSPolicy a/shop", st["BackendTLSPolicy a/shop"].Conditions, CondAccepted, metav1.ConditionFalse, "TargetNotFound", "only from the Kubernetes API")
	web := st["BackendTLSPolicy a/web"]
	expectCond(t, "BackendTLSPolicy a/web", web.Conditions, CondAccepted, metav1.ConditionTrue, "Accepted", "")
	if len(web.Ancestors) != 1 || web.Ancestors[0].AncestorRef.Name != "web" {
		t.Errorf("BackendTLSPolicy a/web: ancestors %+v, want Gateway web", web.Ancestors)
	}

	in := readCase(t, "testdata/backend-tls-service.in.yaml")
	in.Cluster = fakeCluster{services: map[string]map[string]int32{
		"a/web":  {"https": 443, "alt": 8443},
		"a/shop": {"https": 443, "admin": 8080},
	}}
	known := Build(in)
	want = map[string]string{"web:443": "web.a.svc", "web:8443": "web.a.svc", "shop:443": "shop.a.svc", "shop:8080": ""}
	if got := tlsOf(known); !reflect.DeepEqual(got, want) {
		t.Errorf("with the cluster: SNI by Service cluster %v, want %v", got, want)
	}
	expectCond(t, "BackendTLSPolicy a/shop", statusByID(known)["BackendTLSPolicy a/shop"].Conditions, CondAccepted, metav1.ConditionTrue, "Accepted", "")

	in.Cluster = fakeCluster{services: map[string]map[string]int32{"a/web": {"https": 443}, "a/shop": {"admin": 8080}}}
	expectCond(t, "BackendTLSPolicy a/shop, no port https", statusByID(Build(in))["BackendTLSPolicy a/shop"].Conditions, CondAccepted, metav1.ConditionFalse, "TargetNotFound", "no port named")
}
