package status

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"gitxds.dev/gitxds/reconciler/ir"
)

func cond(typ string, st metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg}
}

// Problem: the first condition that makes an object not fully accepted —
// a positive condition not True, or a negative one True.
func TestProblem(t *testing.T) {
	for name, tc := range map[string]struct {
		conds []metav1.Condition
		want  string // reason of the problem, "" for none
	}{
		"accepted":           {[]metav1.Condition{cond("Accepted", "True", "Accepted", ""), cond("ResolvedRefs", "True", "ResolvedRefs", "")}, ""},
		"not accepted":       {[]metav1.Condition{cond("Accepted", "False", "NotAllowedByListeners", "")}, "NotAllowedByListeners"},
		"unresolved ref":     {[]metav1.Condition{cond("Accepted", "True", "Accepted", ""), cond("ResolvedRefs", "False", "BackendNotFound", "")}, "BackendNotFound"},
		"partially invalid":  {[]metav1.Condition{cond("Accepted", "True", "Accepted", ""), cond("PartiallyInvalid", "True", "UnsupportedValue", "")}, "UnsupportedValue"},
		"conflicted false":   {[]metav1.Condition{cond("Accepted", "True", "Accepted", ""), cond("Conflicted", "False", "NoConflicts", "")}, ""},
		"overlapped":         {[]metav1.Condition{cond("Overlapped", "True", "Overlapped", "")}, "Overlapped"},
		"unknown type kept":  {[]metav1.Condition{cond("Accepted", "True", "Accepted", ""), cond("Something", "False", "X", "")}, ""},
		"programmed unknown": {[]metav1.Condition{cond("Programmed", "Unknown", "Pending", "")}, "Pending"},
	} {
		o := Object{Conditions: tc.conds}
		got := ""
		if c := Problem(o); c != nil {
			got = c.Reason
		}
		if got != tc.want || o.Accepted() != (tc.want == "") {
			t.Errorf("%s: problem %q (accepted %v), want %q", name, got, o.Accepted(), tc.want)
		}
	}
}

// Line names file, object, reason and message once, even when the message
// already starts with the file and object, and says when the last accepted
// version keeps serving.
func TestLineAndRejectedMessage(t *testing.T) {
	ref := ir.ObjectRef{Kind: "HTTPRoute", Namespace: "shop", Name: "web", File: "teams/shop/routes.yaml"}
	a := Object{ObjectRef: ref, Conditions: []metav1.Condition{cond("Accepted", "False", "NoMatchingParent",
		"teams/shop/routes.yaml: HTTPRoute shop/web: no listener named \"publik\"")}, ServingLastAccepted: "main@sha1:abc"}
	want := `teams/shop/routes.yaml: HTTPRoute shop/web: NoMatchingParent: no listener named "publik" (its last accepted version keeps serving)`
	if got := Line(a); got != want {
		t.Errorf("Line:\n got %s\nwant %s", got, want)
	}
	// With the line of the field at fault: file:line, said once.
	at := Object{ObjectRef: ref, Line: 14, Conditions: []metav1.Condition{cond("Accepted", "False", "Invalid",
		"teams/shop/routes.yaml:14: HTTPRoute shop/web: spec.rules[0].backendRef: unknown field")}}
	if got, want := Line(at), "teams/shop/routes.yaml:14: HTTPRoute shop/web: Invalid: spec.rules[0].backendRef: unknown field"; got != want {
		t.Errorf("Line with a line:\n got %s\nwant %s", got, want)
	}
	ok := Object{ObjectRef: ir.ObjectRef{Kind: "Backend", Namespace: "shop", Name: "b", File: "teams/shop/b.yaml"},
		Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", "")}}
	rej := Rejected([]Object{ok, a})
	if len(rej) != 1 || rej[0].Name != "web" {
		t.Fatalf("Rejected: %+v", rej)
	}
	if got, want := RejectedMessage(rej), "1 object(s) rejected, the rest is served: "+want; got != want {
		t.Errorf("RejectedMessage:\n got %s\nwant %s", got, want)
	}
}

// Conditions are kept sorted by type and replaced in place, so the status
// JSON is deterministic.
func TestSetKeepsOneConditionPerType(t *testing.T) {
	var s Status
	s.Set(Stalled, metav1.ConditionFalse, ReasonSucceeded, "")
	s.Set(Ready, metav1.ConditionFalse, ReasonRenderFailed, "bad")
	s.Set(Ready, metav1.ConditionTrue, ReasonSucceeded, "applied r1")
	if len(s.Conditions) != 2 {
		t.Fatalf("conditions %+v", s.Conditions)
	}
	if c := s.Get(Ready); c == nil || c.Status != metav1.ConditionTrue || c.Message != "applied r1" {
		t.Fatalf("Ready %+v", c)
	}
	if s.Get(Reconciling) != nil {
		t.Fatal("Reconciling was never set")
	}
}

func TestSortIsByFileKindNamespaceName(t *testing.T) {
	objs := []Object{
		{ObjectRef: ir.ObjectRef{File: "b.yaml", Kind: "A", Name: "x"}},
		{ObjectRef: ir.ObjectRef{File: "a.yaml", Kind: "B", Namespace: "n2", Name: "x"}},
		{ObjectRef: ir.ObjectRef{File: "a.yaml", Kind: "B", Namespace: "n1", Name: "y"}},
		{ObjectRef: ir.ObjectRef{File: "a.yaml", Kind: "A", Namespace: "n9", Name: "z"}},
	}
	Sort(objs)
	var got []string
	for _, o := range objs {
		got = append(got, o.File+" "+o.ObjectRef.String())
	}
	want := []string{"a.yaml A n9/z", "a.yaml B n1/y", "a.yaml B n2/x", "b.yaml A x"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}
