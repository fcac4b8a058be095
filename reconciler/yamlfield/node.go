package yamlfield

import (
	yaml3 "go.yaml.in/yaml/v3"
)

// Line is the line of the field at path in the YAML document doc (a
// file of one document, as a kustomization is), or 0 when it is not
// there.
func Line(doc []byte, path Path) int {
	var d yaml3.Node
	if yaml3.Unmarshal(doc, &d) != nil || d.Kind != yaml3.DocumentNode || len(d.Content) == 0 {
		return 0
	}
	if _, at := Lookup(d.Content[0], path); at != nil {
		return at.Line
	}
	return 0
}

// Unalias is the node an alias stands for, or n.
func Unalias(n *yaml3.Node) *yaml3.Node {
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// Lookup walks path from root: the node holding its last step (a
// mapping or a list), and the node the step names there (for a key, the
// key itself: its line is the field's; for a duplicate key, the last one,
// which the decoder complains of).
func Lookup(root *yaml3.Node, path Path) (parent, at *yaml3.Node) {
	n := root
	for i, s := range path {
		n = Unalias(n)
		var next, mark *yaml3.Node
		switch {
		case s.Key != "" && n.Kind == yaml3.MappingNode:
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == s.Key {
					mark, next = n.Content[j], n.Content[j+1]
				}
			}
		case s.Key == "" && n.Kind == yaml3.SequenceNode && s.Index < len(n.Content):
			next = n.Content[s.Index]
			mark = next
		}
		if next == nil {
			return nil, nil
		}
		if i == len(path)-1 {
			return n, mark
		}
		n = next
	}
	return nil, nil
}

// Same reports whether two nodes hold the same data, whatever their
// style (flow or block, quoted or not): mappings with the same keys and
// values in any order, lists in order.
func Same(a, b *yaml3.Node) bool {
	a, b = Unalias(a), Unalias(b)
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return false
	}
	switch a.Kind {
	case yaml3.ScalarNode:
		ca, va := scalarClass(a)
		cb, vb := scalarClass(b)
		return ca == cb && va == vb
	case yaml3.SequenceNode:
		for i := range a.Content {
			if !Same(a.Content[i], b.Content[i]) {
				return false
			}
		}
		return true
	case yaml3.MappingNode:
		for i := 0; i+1 < len(a.Content); i += 2 {
			found := false
			for j := 0; j+1 < len(b.Content); j += 2 {
				if a.Content[i].Value == b.Content[j].Value && Same(a.Content[i+1], b.Content[j+1]) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	return false
}
