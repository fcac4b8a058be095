package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"gitxds.dev/gitxds/reconciler/snapshot"
)

// MaxMarkdown bounds the Markdown of a report: GitHub rejects comments of
// more than 65,536 characters. Diffs that do not fit are left out, with a
// note; the summary table is always complete.
const MaxMarkdown = 60000

// WriteJSON writes the report in its documented schema, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

var kindMark = map[Kind]string{Added: "+", Removed: "-", Changed: "~"}

// WriteText writes the objects and routes that change, then one block per
// xDS change: a header line, the summary, and for changed elements the
// YAML diff, indented.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "diff %s (%s) → %s (%s)\n", orNone(r.From.Revision), r.From.Hash, orNone(r.To.Revision), r.To.Hash)
	if len(r.NotAccepted) > 0 {
		fmt.Fprintf(&b, "objects of %s not fully accepted (%s):\n", orNone(r.To.Revision), Tally(r.NotAccepted))
		for _, p := range r.NotAccepted {
			fmt.Fprintf(&b, "  %s: %s\n", p.Label(), p.Line)
		}
	}
	if !r.Different {
		b.WriteString("no differences: both serve the same configuration\n")
		r.writeViewText(&b)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%s\n", r.Headline())
	r.writeViewText(&b)
	fmt.Fprintf(&b, "\nxDS resources (%d added, %d removed, %d changed):\n", r.Counts.Added, r.Counts.Removed, r.Counts.Changed)
	grouped := r.hasGroups()
	for i, c := range r.Changes {
		if grouped && (i == 0 || r.Changes[i-1].Group != c.Group) {
			fmt.Fprintf(&b, "\n%s:\n", groupTitle(c.Group))
		}
		fmt.Fprintf(&b, "\n%s %s %s [%s]\n", kindMark[c.Kind], c.Type, strings.Join(c.Path, " › "), classList(c.Classes)+groupNote(c.Group))
		if len(c.Listeners) > 0 {
			fmt.Fprintf(&b, "    listeners: %s\n", strings.Join(c.Listeners, ", "))
		}
		fmt.Fprintf(&b, "    %s\n", c.Summary)
		if c.Kind == Changed && c.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
				fmt.Fprintf(&b, "    | %s\n", l)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the report for a pull-request comment: the objects
// and routes that change first, the xDS resources and their diffs folded
// in <details>.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### xDS diff `%s` → `%s`\n\n", orNone(r.From.Revision), orNone(r.To.Revision))
	if len(r.NotAccepted) > 0 {
		fmt.Fprintf(&b, "Objects not fully accepted (%s):\n\n", Tally(r.NotAccepted))
		for _, p := range r.NotAccepted {
			fmt.Fprintf(&b, "- **%s**: %s\n", p.Label(), MarkdownCell(p.Line))
		}
		b.WriteString("\n")
	}
	r.MarkdownBody(&b, MaxMarkdown)
	_, err := io.WriteString(w, b.String())
	return err
}

// MarkdownBody is the table and the folded diffs, within budget characters.
func (r *Report) MarkdownBody(b *strings.Builder, budget int) {
	begin := b.Len()
	if !r.Different {
		b.WriteString("No differences: nothing served changes.\n")
		if len(r.Objects) > 0 {
			b.WriteString("\n")
			r.writeViewMarkdown(b, budget)
		}
		return
	}
	fmt.Fprintf(b, "**%s**\n\n", r.Headline())
	r.writeViewMarkdown(b, budget/2)
	fmt.Fprintf(b, "<details><summary>xDS resources: %d added, %d removed, %d changed</summary>\n\n", r.Counts.Added, r.Counts.Removed, r.Counts.Changed)
	b.WriteString("| | Type | Element | Classes | Summary |\n|---|---|---|---|---|\n")
	for _, c := range r.Changes {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", c.Kind, c.Type, mdPath(c.Path), classList(c.Classes)+groupNote(c.Group), MarkdownCell(c.Summary))
	}
	b.WriteString("\n")
	left := 0
	for i, c := range r.Changes {
		block := fmt.Sprintf("**%s %s** %s\n\n```diff\n%s\n```\n\n", c.Kind, c.Type, mdPath(c.Path), fence(c.Diff))
		if b.Len()-begin+len(block) > budget-300 {
			left = len(r.Changes) - i
			break
		}
		b.WriteString(block)
	}
	if left > 0 {
		fmt.Fprintf(b, "_%d more diff(s) left out to fit a comment; run `gitxds diff -o text` for all of them._\n\n", left)
	}
	b.WriteString("</details>\n")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// groupNote names a named proxy group after a class list ("" for the
// default group, so a repository without groups reads as before).
func groupNote(g snapshot.Group) string {
	if g == snapshot.DefaultGroup {
		return ""
	}
	return " · proxy group " + string(g)
}

func classList(cs []snapshot.Class) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = string(c)
	}
	return strings.Join(parts, ", ")
}

func mdPath(p []string) string {
	parts := make([]string, len(p))
	for i, x := range p {
		parts[i] = "`" + strings.ReplaceAll(x, "`", "'") + "`"
	}
	return strings.Join(parts, " › ")
}

// MarkdownCell escapes a table cell.
func MarkdownCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// fence keeps a diff from closing its code block.
func fence(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "```", "'''")
}

// hasGroups reports whether either side of the report has proxy groups:
// its changes are then listed in a section per group.
func (r *Report) hasGroups() bool {
	return r.from != nil && len(r.from.Groups) > 0 || r.to != nil && len(r.to.Groups) > 0
}

// groupTitle heads the section of a proxy group.
func groupTitle(g snapshot.Group) string {
	if g == snapshot.DefaultGroup {
		return "default proxy group (nodes that name none)"
	}
	return "proxy group " + string(g)
}
