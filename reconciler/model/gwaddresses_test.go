package model

import (
	"reflect"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/status"
)

// A served Gateway's status.addresses are the addresses its
// gitxds.dev/addresses annotation declares, typed and in order; a Gateway
// without it, or not served, has none; a bad value refuses the Gateway.
func TestGatewayAddresses(t *testing.T) {
	out := Build(readCase(t, "testdata/gateway-addresses.in.yaml"))
	byName := map[string]status.Object{}
	for _, o := range out.Status {
		byName[o.Name] = o
	}
	ip, host := gwv1.IPAddressType, gwv1.HostnameAddressType
	want := []gwv1.GatewayStatusAddress{{Type: &ip, Value: "203.0.113.10"}, {Type: &host, Value: "gw.example.com"}, {Type: &ip, Value: "2001:db8::1"}}
	if got := byName["public"].Addresses; !reflect.DeepEqual(got, want) {
		t.Errorf("Gateway public: addresses %s, want %s", addrText(got), addrText(want))
	}
	for _, name := range []string{"no-annotation", "not-served", "bad-address", "spec-addresses"} {
		if got := byName[name].Addresses; len(got) != 0 {
			t.Errorf("Gateway %s: addresses %s, want none", name, addrText(got))
		}
	}
	for name, want := range map[string]string{"bad-address": "neither an IP address nor a DNS hostname", "spec-addresses": AnnotationAddresses} {
		c := apimeta.FindStatusCondition(byName[name].Conditions, CondAccepted)
		if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, want) {
			t.Errorf("Gateway %s: Accepted %+v, want False saying %q", name, c, want)
		}
	}
}

func addrText(as []gwv1.GatewayStatusAddress) string {
	var out []string
	for _, a := range as {
		out = append(out, string(*a.Type)+"="+a.Value)
	}
	return "[" + strings.Join(out, " ") + "]"
}
