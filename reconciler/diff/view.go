package diff

import (
	"fmt"
	"strings"
)

// maxRows is how many objects and route changes the Markdown lists (the
// text and JSON forms list them all).
const maxRows = 50

// Headline is what changes, in a few words: objects, routes, and the xDS
// resources behind them.
func (r *Report) Headline() string {
	var parts []string
	if s := objectTally(r.Objects); s != "" {
		parts = append(parts, "objects: "+s)
	}
	if s := routeTally(r.Routes); s != "" {
		parts = append(parts, "routes: "+s)
	}
	parts = append(parts, fmt.Sprintf("xDS: %d added, %d removed, %d changed", r.Counts.Added, r.Counts.Removed, r.Counts.Changed))
	return strings.Join(parts, "; ")
}

func objectTally(os []ObjectChange) string {
	n := map[Kind]int{}
	for _, o := range os {
		n[o.Kind]++
	}
	return kindTally(n)
}

func routeTally(rs []RouteChange) string {
	n := map[Kind]int{}
	for _, o := range rs {
		n[o.Kind]++
	}
	return kindTally(n)
}

func kindTally(n map[Kind]int) string {
	var parts []string
	for _, k := range []Kind{Added, Removed, Changed} {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// Line is the route change on one line:
// "payments.example.com  PathPrefix /refunds  →  v1 80%, v2 20%  (was v1)".
func (c RouteChange) Line() string {
	hosts := strings.Join(c.Hostnames, ", ")
	switch c.Kind {
	case Added:
		return fmt.Sprintf("%s  %s  →  %s", hosts, c.Match, c.To)
	case Removed:
		return fmt.Sprintf("%s  %s  route removed  (was → %s)", hosts, c.Match, c.From)
	}
	if c.From == c.To {
		return fmt.Sprintf("%s  %s  →  %s  (as before)", hosts, c.Match, c.To)
	}
	return fmt.Sprintf("%s  %s  →  %s  (was %s)", hosts, c.Match, c.To, c.From)
}

// Source is the Gateway API route and rule the change comes from, with its
// file: "HTTPRoute payments/payments rule 1 (teams/payments/routes.yaml)".
func (c RouteChange) Source() string {
	s := c.Route
	if c.Owner != nil {
		s = c.Owner.String()
		if r := ruleOf(c.Route); r != "" {
			s += " " + r
		}
		if c.Owner.File != "" {
			s += " (" + c.Owner.File + ")"
		}
	}
	return s
}

// ServedBy names the classes and listeners that serve the route.
func (c RouteChange) ServedBy() string {
	return classList(c.Classes) + groupNote(c.Group) + " · " + strings.Join(c.Listeners, ", ")
}

// writeViewText writes the objects and routes of a report as text.
func (r *Report) writeViewText(b *strings.Builder) {
	if len(r.Objects) > 0 {
		fmt.Fprintf(b, "\nobjects (%s):\n", objectTally(r.Objects))
		for _, o := range r.Objects {
			fmt.Fprintf(b, "  %s %s  %s%s\n", kindMark[o.Kind], o.Object, o.File, objectNote(o))
			for _, l := range strings.Split(strings.TrimRight(o.Diff, "\n"), "\n") {
				if l != "" {
					fmt.Fprintf(b, "      | %s\n", l)
				}
			}
		}
	}
	if len(r.Routes) > 0 {
		fmt.Fprintf(b, "\nroutes (%s):\n", routeTally(r.Routes))
		for _, c := range r.Routes {
			fmt.Fprintf(b, "  %s %s\n", kindMark[c.Kind], c.Line())
			if len(c.Also) > 0 {
				fmt.Fprintf(b, "      also: %s\n", strings.Join(c.Also, "; "))
			}
			fmt.Fprintf(b, "      from %s; served by %s\n", c.Source(), c.ServedBy())
		}
	}
}

// objectStatus is whether the "to" side accepts the object, and where it
// moved from.
func objectStatus(o ObjectChange) string {
	s := "accepted"
	switch {
	case o.Kind == Removed:
		s = "–"
	case o.Served != "":
		s = o.Served.Label()
	}
	if o.WasFile != "" {
		s += "; moved from `" + o.WasFile + "`"
	}
	return s
}

func objectNote(o ObjectChange) string {
	var parts []string
	if o.WasFile != "" {
		parts = append(parts, "moved from "+o.WasFile)
	}
	if o.Served != "" {
		parts = append(parts, o.Served.Label())
	}
	if len(parts) == 0 {
		return ""
	}
	return "  (" + strings.Join(parts, "; ") + ")"
}

// writeViewMarkdown writes the objects and routes of a report as tables,
// the object diffs folded, within budget characters.
func (r *Report) writeViewMarkdown(b *strings.Builder, budget int) {
	begin := b.Len()
	if len(r.Objects) > 0 {
		fmt.Fprintf(b, "**Objects** (%s)\n\n| | Object | File | Status |\n|---|---|---|---|\n", objectTally(r.Objects))
		for i, o := range r.Objects {
			if i == maxRows {
				fmt.Fprintf(b, "\n_%d more object(s): run `gitxds diff -o text` for all of them._\n", len(r.Objects)-i)
				break
			}
			fmt.Fprintf(b, "| %s | %s | `%s` | %s |\n", o.Kind, MarkdownCell(o.Object), o.File, MarkdownCell(objectStatus(o)))
		}
		b.WriteString("\n")
	}
	if len(r.Routes) > 0 {
		fmt.Fprintf(b, "**Routes** (%s)\n\n| | Hostnames | Match | Goes to | Before | Route | Served by |\n|---|---|---|---|---|---|---|\n", routeTally(r.Routes))
		for i, c := range r.Routes {
			if i == maxRows {
				fmt.Fprintf(b, "\n_%d more route change(s): run `gitxds diff -o text` for all of them._\n", len(r.Routes)-i)
				break
			}
			to, from := c.To, c.From
			switch c.Kind {
			case Added:
				from = "–"
			case Removed:
				to = "route removed"
			}
			if len(c.Also) > 0 {
				to += "; also " + strings.Join(c.Also, "; ")
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", c.Kind, MarkdownCell(strings.Join(c.Hostnames, ", ")),
				MarkdownCell(c.Match), MarkdownCell(to), MarkdownCell(from), MarkdownCell(c.Source()), MarkdownCell(c.ServedBy()))
		}
		b.WriteString("\n")
	}
	var diffs []ObjectChange
	for _, o := range r.Objects {
		if o.Diff != "" {
			diffs = append(diffs, o)
		}
	}
	if len(diffs) == 0 {
		return
	}
	fmt.Fprintf(b, "<details><summary>Object diffs (%d)</summary>\n\n", len(diffs))
	for i, o := range diffs {
		block := fmt.Sprintf("**%s** `%s`\n\n```diff\n%s\n```\n\n", o.Object, o.File, fence(o.Diff))
		if b.Len()-begin+len(block) > budget-300 {
			fmt.Fprintf(b, "_%d more diff(s) left out to fit a comment; run `gitxds diff -o text` for all of them._\n\n", len(diffs)-i)
			break
		}
		b.WriteString(block)
	}
	b.WriteString("</details>\n\n")
}
