package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gitxds.dev/gitxds/reconciler/diff/accept"
	"gitxds.dev/gitxds/reconciler/status"
)

// PreviewSchema names the JSON form of a Preview.
const PreviewSchema = "gitxds.dev/preview/v1"

// Preview is what `gitxds preview` reports on a pull request: whether the
// head is valid, what it serves differently from the base, the blast
// radius, and whether real xDS clients accept it.
//
// # JSON schema (gitxds.dev/preview/v1)
//
// Stable: fields are only ever added.
//
//	{
//	  "schema": "gitxds.dev/preview/v1",
//	  "base": {"ref": "main", "revision": "main@sha1:…", "error": ""},
//	  "head": {"ref": "refs/pull/7/head", "revision": "…", "error": ""},
//	                                   // error: the side could not be rendered
//	  "valid": false,                  // head rendered and every object accepted
//	  "objects": 42,                   // objects in the head
//	  "problems": [{"file": "teams/shop/routes.yaml", "kind": "HTTPRoute",
//	                "namespace": "payments", "name": "steal", "reason": "NotOwner",
//	                "message": "…", "line": "<file>: <Kind ns/name>: <reason>: <message>"}],
//	  "diff": { gitxds.dev/diff/v1 report } | null,
//	  "impact": {"teams": [], "hostnames": [], "listeners": [],
//	             "rollout": {"policy": "…", "skipped": false, "error": "",
//	                         "stages": [{"name": "canary", "nodes": "rollout-group=canary", "bake": "30s"}]}},
//	  "xds": {"accepted": true, "classes": [{"class": "envoy", "client": "…", "nodes": 1,
//	           "types": [{"type": "LDS", "typeUrl": "…", "resources": 2, "fetched": 2, "status": "ACK",
//	                      "version": "…", "acks": 1, "nacks": 0, "error": ""}]}]} | null
//	}
type Preview struct {
	Schema   string         `json:"schema"`
	BaseRef  PreviewSide    `json:"base"`
	HeadRef  PreviewSide    `json:"head"`
	Valid    bool           `json:"valid"`
	Objects  int            `json:"objects"`
	Problems []Problem      `json:"problems"`
	Diff     *Report        `json:"diff"`
	Impact   PreviewImpact  `json:"impact"`
	XDS      *accept.Result `json:"xds"`
}

// PreviewSide is one of the two refs previewed.
type PreviewSide struct {
	Ref      string `json:"ref"`
	Revision string `json:"revision"`
	// Error: the revision could not be loaded or rendered.
	Error string `json:"error,omitempty"`
}

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

// PreviewImpact is the blast radius with the rollout it would go through.
type PreviewImpact struct {
	Impact
	Rollout Rollout `json:"rollout"`
}

// Rollout is how the head would reach the fleet.
type Rollout struct {
	// Policy says where the stages come from.
	Policy string `json:"policy"`
	// Skipped: nothing served changes, so no rollout happens.
	Skipped bool    `json:"skipped"`
	Stages  []Stage `json:"stages"`
	// Error: the head's RolloutPolicy does not compile.
	Error string `json:"error,omitempty"`
}

// Stage of the rollout, described for humans.
type Stage struct {
	Name  string `json:"name"`
	Nodes string `json:"nodes"`
	Bake  string `json:"bake,omitempty"`
}

// WriteJSON writes the preview in its documented schema.
func (p *Preview) WriteJSON(w io.Writer) error {
	p.Schema = PreviewSchema
	for _, l := range []*[]string{&p.Impact.Teams, &p.Impact.Hostnames, &p.Impact.Listeners} {
		if *l == nil {
			*l = []string{}
		}
	}
	if p.Problems == nil {
		p.Problems = []Problem{}
	}
	if p.Impact.Rollout.Stages == nil {
		p.Impact.Rollout.Stages = []Stage{}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// maxList is how many items a summary-table cell lists; maxProblems how
// many problems the Markdown lists (JSON lists them all).
const (
	maxList     = 10
	maxProblems = 100
)

// WriteMarkdown writes the preview as a pull-request comment: a summary
// table, the problems, the changes table, and the details folded.
func (p *Preview) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	verdict := "✅ valid"
	if !p.Valid {
		verdict = "❌ invalid"
	}
	fmt.Fprintf(&b, "## gitxds preview: %s\n\n", verdict)
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Base | %s |\n", sideCell(p.BaseRef))
	fmt.Fprintf(&b, "| Head | %s |\n", sideCell(p.HeadRef))
	switch {
	case p.HeadRef.Error != "":
		b.WriteString("| Validation | ❌ the head cannot be rendered |\n")
	case len(p.Problems) > 0:
		fmt.Fprintf(&b, "| Validation | ❌ %d of %d object(s) not accepted: %s |\n", len(p.Problems), p.Objects, Tally(p.Problems))
	default:
		fmt.Fprintf(&b, "| Validation | ✅ %d object(s) accepted |\n", p.Objects)
	}
	if p.Diff != nil {
		if p.Diff.Different {
			fmt.Fprintf(&b, "| Changes | %s |\n", mdCell(p.Diff.Headline()))
		} else {
			b.WriteString("| Changes | none: nothing served changes |\n")
		}
		fmt.Fprintf(&b, "| Teams | %s |\n", listCell(p.Impact.Teams))
		fmt.Fprintf(&b, "| Hostnames | %s |\n", listCell(p.Impact.Hostnames))
		fmt.Fprintf(&b, "| Listeners | %s |\n", listCell(p.Impact.Listeners))
		fmt.Fprintf(&b, "| Rollout | %s |\n", rolloutCell(p.Impact.Rollout))
	}
	if p.XDS != nil {
		fmt.Fprintf(&b, "| xDS clients | %s |\n", xdsCell(p.XDS))
	}
	if p.HeadRef.Error != "" || p.BaseRef.Error != "" {
		b.WriteString("\n### Errors\n\n")
		if p.HeadRef.Error != "" {
			fmt.Fprintf(&b, "- head: %s\n", mdLine(p.HeadRef.Error))
		}
		if p.BaseRef.Error != "" {
			fmt.Fprintf(&b, "- base (compared as empty): %s\n", mdLine(p.BaseRef.Error))
		}
	}
	if len(p.Problems) > 0 {
		b.WriteString("\n### Problems\n\n| File | Object | Served | Reason | Message |\n|---|---|---|---|---|\n")
		for i, pr := range p.Problems {
			if i == maxProblems {
				fmt.Fprintf(&b, "\n_%d more problem(s): run `gitxds validate` or preview with `-o json` for all of them._\n", len(p.Problems)-i)
				break
			}
			obj := pr.Kind + " " + pr.Name
			if pr.Namespace != "" {
				obj = pr.Kind + " " + pr.Namespace + "/" + pr.Name
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", pr.File, mdCell(obj), pr.Label(), mdCell(pr.Reason), mdCell(pr.Message))
		}
	}
	if p.Diff != nil && (p.Diff.Different || len(p.Diff.Objects) > 0) {
		b.WriteString("\n### Changes\n\n")
		p.Diff.markdownBody(&b, MaxMarkdown-b.Len()-4000)
	}
	if p.XDS != nil {
		writeXDS(&b, p.XDS)
	}
	if p.Diff != nil && !p.Impact.Rollout.Skipped && len(p.Impact.Rollout.Stages) > 0 {
		b.WriteString("\n<details><summary>Rollout stages</summary>\n\n")
		fmt.Fprintf(&b, "%s\n\n| Stage | Nodes | Bake |\n|---|---|---|\n", p.Impact.Rollout.Policy)
		for _, s := range p.Impact.Rollout.Stages {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Name, mdCell(s.Nodes), orDash(s.Bake))
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeXDS(b *strings.Builder, r *accept.Result) {
	b.WriteString("\n<details><summary>xDS acceptance</summary>\n\n")
	for _, c := range r.Classes {
		fmt.Fprintf(b, "- **%s**: %s, %d node(s)\n", c.Class, c.Client, c.Nodes)
	}
	b.WriteString("\n| Class | Type | Resources | Fetched | Status | ACK / NACK | Error |\n|---|---|---|---|---|---|---|\n")
	for _, c := range r.Classes {
		for _, t := range c.Types {
			fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %d / %d | %s |\n", c.Class, t.Type, t.Resources, t.Fetched, t.Status, t.ACKs, t.NACKs, mdCell(t.Error))
		}
	}
	b.WriteString("\n</details>\n")
}

func sideCell(s PreviewSide) string {
	if s.Revision == "" {
		return "`" + s.Ref + "`"
	}
	return fmt.Sprintf("`%s` (`%s`)", s.Ref, s.Revision)
}

func listCell(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	shown := xs
	more := ""
	if len(xs) > maxList {
		shown, more = xs[:maxList], fmt.Sprintf(" and %d more", len(xs)-maxList)
	}
	parts := make([]string, len(shown))
	for i, x := range shown {
		parts[i] = "`" + x + "`"
	}
	return strings.Join(parts, ", ") + more
}

func rolloutCell(r Rollout) string {
	switch {
	case r.Error != "":
		return "❌ " + mdCell(r.Error)
	case r.Skipped:
		return "skipped: nothing served changes"
	}
	names := make([]string, len(r.Stages))
	for i, s := range r.Stages {
		names[i] = s.Name
	}
	return mdCell(strings.Join(names, " → "))
}

func xdsCell(r *accept.Result) string {
	var parts []string
	for _, c := range r.Classes {
		var ts []string
		for _, t := range c.Types {
			ts = append(ts, t.Type+" "+t.Status)
		}
		parts = append(parts, fmt.Sprintf("%s (%d node(s)): %s", c.Class, c.Nodes, strings.Join(ts, ", ")))
	}
	mark := "✅ "
	if !r.Accepted {
		mark = "❌ "
	}
	if len(parts) == 0 {
		return mark + "nothing to serve"
	}
	return mark + mdCell(strings.Join(parts, "; "))
}

func mdLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
