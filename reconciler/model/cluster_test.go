package model

import (
	"os"
	"path/filepath"
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
	services map[string]bool
}

func (c fakeCluster) Secret(ns, name string) (map[string][]byte, bool) {
	d, ok := c.secrets[ns+"/"+name]
	return d, ok
}
func (c fakeCluster) Service(ns, name string) bool { return c.services[ns+"/"+name] }

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
		services: map[string]bool{"a/web": true},
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
