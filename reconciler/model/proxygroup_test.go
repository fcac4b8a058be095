package model

import (
	"encoding/json"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/snapshot"
	"gitxds.dev/gitxds/reconciler/status"
)

// Gateways of different proxy groups on one port without hostname are
// both served; in one group they conflict as before; a group that is not
// a DNS label refuses the Gateway, naming file and object.
func TestProxyGroups(t *testing.T) {
	out := Build(readCase(t, "testdata/proxy-groups.in.yaml"))
	byName := map[string]status.Object{}
	for _, o := range out.Status {
		byName[o.Name] = o
	}
	for name, group := range map[string]string{"internal": "internal", "external": "external", "default": ""} {
		o := byName[name]
		if c := apimeta.FindStatusCondition(o.Conditions, CondAccepted); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("Gateway %s: Accepted %+v, want True", name, c)
		}
		if o.ProxyGroup != group {
			t.Errorf("Gateway %s: proxy group %q, want %q", name, o.ProxyGroup, group)
		}
	}
	// What validate -o json and /status print of a Gateway.
	if b, err := json.Marshal(byName["internal"]); err != nil || !strings.Contains(string(b), `"proxyGroup":"internal"`) {
		t.Errorf("Gateway internal's status JSON lacks its group: %s %v", b, err)
	}
	if b, _ := json.Marshal(byName["default"]); strings.Contains(string(b), "proxyGroup") {
		t.Errorf("Gateway default's status JSON names a group: %s", b)
	}
	groups := map[string]string{}
	for _, g := range out.IR.Gateways {
		groups[g.Name] = g.Group
	}
	if groups["internal"] != "internal" || groups["external"] != "external" || groups["default"] != "" {
		t.Errorf("IR groups %v", groups)
	}
	if _, ok := groups["same-group"]; ok {
		t.Error("Gateway same-group is served beside external on port 80 of the same group")
	}
	c := apimeta.FindStatusCondition(byName["same-group"].Conditions, CondAccepted)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "HostnameConflict") {
		t.Errorf("Gateway same-group: Accepted %+v, want False with HostnameConflict", c)
	}
	c = apimeta.FindStatusCondition(byName["bad-group"].Conditions, CondAccepted)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, AnnotationProxyGroup) ||
		!strings.Contains(c.Message, "platform/gateways.yaml") || !strings.Contains(c.Message, "Gateway platform/bad-group") {
		t.Errorf("Gateway bad-group: Accepted %+v, want False naming the annotation, file and object", c)
	}
	if AnnotationProxyGroup != snapshot.GroupLabel {
		t.Errorf("the Gateway annotation %q and the node label %q differ", AnnotationProxyGroup, snapshot.GroupLabel)
	}
}
