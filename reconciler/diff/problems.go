package diff

import (
	"fmt"
	"strings"

	"gitxds.dev/gitxds/reconciler/status"
)

// Problem is one object of the head that is not accepted.
type Problem struct {
	File      string `json:"file"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	// Line is the problem as `gitxds validate` prints it.
	Line string `json:"line"`
	// Served: what of the object is served, status.Served ("none",
	// "part", "lastAccepted").
	Served status.Served `json:"served,omitempty"`
}

// Label says how much of the object is served, for reviewers.
func (p Problem) Label() string { return p.Served.Label() }

// Problems returns the Problem of every object that is not fully accepted,
// the rejected first, then those served in part, then those that keep
// serving their last accepted version.
func Problems(objs []status.Object) []Problem {
	out := []Problem{}
	for _, served := range []status.Served{status.ServedNone, status.ServedPart, status.ServedLastAccepted} {
		for _, o := range objs {
			if !o.Accepted() && (o.Served == served || (served == status.ServedNone && o.Served == "")) {
				out = append(out, ProblemOf(o))
			}
		}
	}
	return out
}

// Tally counts problems by what is served.
func Tally(ps []Problem) string {
	n := map[status.Served]int{}
	for _, p := range ps {
		n[p.Served]++
	}
	var parts []string
	for _, s := range []status.Served{status.ServedNone, status.ServedPart, status.ServedLastAccepted} {
		c := n[s]
		if s == status.ServedNone {
			c += n[""]
		}
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, s.Label()))
		}
	}
	return strings.Join(parts, ", ")
}

// ProblemOf is the Problem of a rejected object.
func ProblemOf(o status.Object) Problem {
	p := Problem{File: o.File, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Line: status.Line(o), Served: o.Served}
	if c := status.Problem(o); c != nil {
		// Messages may start with the file and the object: say them once.
		p.Reason, p.Message = c.Reason, strings.TrimPrefix(c.Message, fmt.Sprintf("%s: %s: ", o.File, o.ObjectRef))
	}
	return p
}
