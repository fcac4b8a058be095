package preview

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gitxds.dev/gitxds/reconciler/diff"
	"gitxds.dev/gitxds/reconciler/diff/accept"
)

// Schema names the JSON form of a Report.
const Schema = "gitxds.dev/preview/v1"

// Report is what `gitxds preview` reports on a pull request: whether the
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
type Report struct {
	Schema   string         `json:"schema"`
	BaseRef  Side           `json:"base"`
	HeadRef  Side           `json:"head"`
	Valid    bool           `json:"valid"`
	Objects  int            `json:"objects"`
	Problems []diff.Problem `json:"problems"`
	Diff     *diff.Report   `json:"diff"`
	Impact   Impact         `json:"impact"`
	XDS      *accept.Result `json:"xds"`
}

// Side is one of the two refs previewed.
type Side struct {
	Ref      string `json:"ref"`
	Revision string `json:"revision"`
	// Error: the revision could not be loaded or rendered.
	Error string `json:"error,omitempty"`
}

// Impact is the blast radius with the rollout it would go through.
type Impact struct {
	diff.Impact
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
func (p *Report) WriteJSON(w io.Writer) error {
	p.Schema = Schema
	for _, l := range []*[]string{&p.Impact.Teams, &p.Impact.Hostnames, &p.Impact.Listeners} {
		if *l == nil {
			*l = []string{}
		}
	}
	if p.Problems == nil {
		p.Problems = []diff.Problem{}
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
func (p *Report) WriteMarkdown(w io.Writer) error {
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
		fmt.Fprintf(&b, "| Validation | ❌ %d of %d object(s) not accepted: %s |\n", len(p.Problems), p.Objects, diff.Tally(p.Problems))
	default:
		fmt.Fprintf(&b, "| Validation | ✅ %d object(s) accepted |\n", p.Objects)
	}
	if p.Diff != nil {
		if p.Diff.Different {
			fmt.Fprintf(&b, "| Changes | %s |\n", diff.MarkdownCell(p.Diff.Headline()))
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
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", pr.File, diff.MarkdownCell(obj), pr.Label(), diff.MarkdownCell(pr.Reason), diff.MarkdownCell(pr.Message))
		}
	}
	if p.Diff != nil && (p.Diff.Different || len(p.Diff.Objects) > 0) {
		b.WriteString("\n### Changes\n\n")
		p.Diff.MarkdownBody(&b, diff.MaxMarkdown-b.Len()-4000)
	}
	if p.XDS != nil {
		writeXDS(&b, p.XDS)
	}
	if p.Diff != nil && !p.Impact.Rollout.Skipped && len(p.Impact.Rollout.Stages) > 0 {
		b.WriteString("\n<details><summary>Rollout stages</summary>\n\n")
		fmt.Fprintf(&b, "%s\n\n| Stage | Nodes | Bake |\n|---|---|---|\n", p.Impact.Rollout.Policy)
		for _, s := range p.Impact.Rollout.Stages {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Name, diff.MarkdownCell(s.Nodes), orDash(s.Bake))
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeXDS(b *strings.Builder, r *accept.Result) {
	b.WriteString("\n<details><summary>xDS acceptance</summary>\n\n")
	for _, c := range r.Classes {
		fmt.Fprintf(b, "- **%s**: %s, %d node(s)\n", c.Name(), c.Client, c.Nodes)
	}
	b.WriteString("\n| Class | Type | Resources | Fetched | Status | ACK / NACK | Error |\n|---|---|---|---|---|---|---|\n")
	for _, c := range r.Classes {
		for _, t := range c.Types {
			fmt.Fprintf(b, "| %s | %s | %d | %d | %s | %d / %d | %s |\n", c.Name(), t.Type, t.Resources, t.Fetched, t.Status, t.ACKs, t.NACKs, diff.MarkdownCell(t.Error))
		}
	}
	b.WriteString("\n</details>\n")
}

func sideCell(s Side) string {
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
		return "❌ " + diff.MarkdownCell(r.Error)
	case r.Skipped:
		return "skipped: nothing served changes"
	}
	names := make([]string, len(r.Stages))
	for i, s := range r.Stages {
		names[i] = s.Name
	}
	return diff.MarkdownCell(strings.Join(names, " → "))
}

func xdsCell(r *accept.Result) string {
	var parts []string
	for _, c := range r.Classes {
		var ts []string
		for _, t := range c.Types {
			ts = append(ts, t.Type+" "+t.Status)
		}
		parts = append(parts, fmt.Sprintf("%s (%d node(s)): %s", c.Name(), c.Nodes, strings.Join(ts, ", ")))
	}
	mark := "✅ "
	if !r.Accepted {
		mark = "❌ "
	}
	if len(parts) == 0 {
		return mark + "nothing to serve"
	}
	return mark + diff.MarkdownCell(strings.Join(parts, "; "))
}

func mdLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
