package diff

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// diffContext is how many unchanged lines a diff shows around a change.
const diffContext = 3

// maxDiffCells bounds the line-by-line comparison (old lines × new lines);
// past it, the old side is shown removed and the new side added.
const maxDiffCells = 1_000_000

// yamlDiff is the line diff of two messages rendered as YAML (protojson
// field names, the form Envoy's own config dump and docs use): "-" lines are
// the old side, "+" lines the new one, "  " lines context. A nil side is
// absent: every line of the other side is added or removed.
func yamlDiff(a, b proto.Message) string {
	var x, y []string
	if a != nil {
		x = lines(toYAML(a))
	}
	if b != nil {
		y = lines(toYAML(b))
	}
	return lineDiffContext(x, y, diffContext)
}

// toYAML renders a message as YAML: protojson (deterministic, no random
// spacing once re-encoded by sigs.k8s.io/yaml, whose keys are sorted), or
// the text format when a field cannot be encoded as JSON (an Any of a type
// this binary does not know).
func toYAML(m proto.Message) string {
	j, err := protojson.MarshalOptions{}.Marshal(m)
	if err == nil {
		if y, err := yaml.JSONToYAML(j); err == nil {
			return string(y)
		}
	}
	return prototext.MarshalOptions{Multiline: true}.Format(m)
}

// lines splits a YAML document; an empty document has none.
func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" || s == "{}" {
		return nil
	}
	return strings.Split(s, "\n")
}

// lineDiffContext is a unified diff of two line lists, without hunk headers
// (hunks are separated by a "  …" line), with ctx lines of context.
func lineDiffContext(a, b []string, ctx int) string {
	ops := lineOps(a, b)
	// keep[i]: op i is within ctx of a change.
	keep := make([]bool, len(ops))
	for i, o := range ops {
		if o.mark == ' ' {
			continue
		}
		for k := max(0, i-ctx); k <= min(len(ops)-1, i+ctx); k++ {
			keep[k] = true
		}
	}
	var s strings.Builder
	gap := false
	for i, o := range ops {
		if !keep[i] {
			gap = true
			continue
		}
		if gap && s.Len() > 0 {
			s.WriteString("  …\n")
		}
		gap = false
		fmt.Fprintf(&s, "%c %s\n", o.mark, o.line)
	}
	return s.String()
}

type lineOp struct {
	mark byte // ' ', '-', '+'
	line string
}

// lineOps aligns two line lists on their longest common subsequence.
func lineOps(a, b []string) []lineOp {
	// Common prefix and suffix first: most diffs are small.
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	q := 0
	for q < len(a)-p && q < len(b)-p && a[len(a)-1-q] == b[len(b)-1-q] {
		q++
	}
	var ops []lineOp
	for _, l := range a[:p] {
		ops = append(ops, lineOp{' ', l})
	}
	ma, mb := a[p:len(a)-q], b[p:len(b)-q]
	if len(ma)*len(mb) > maxDiffCells {
		for _, l := range ma {
			ops = append(ops, lineOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, lineOp{'+', l})
		}
	} else {
		ops = append(ops, lcsOps(ma, mb)...)
	}
	for _, l := range a[len(a)-q:] {
		ops = append(ops, lineOp{' ', l})
	}
	return ops
}

func lcsOps(a, b []string) []lineOp {
	n, m := len(a), len(b)
	// t[i][j]: LCS length of a[i:] and b[j:].
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var ops []lineOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, lineOp{' ', a[i]})
			i, j = i+1, j+1
		case t[i+1][j] >= t[i][j+1]:
			ops = append(ops, lineOp{'-', a[i]})
			i++
		default:
			ops = append(ops, lineOp{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, lineOp{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, lineOp{'+', b[j]})
	}
	return ops
}
