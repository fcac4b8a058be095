package model

import (
	"bytes"
	"errors"
	"io"

	yaml3 "go.yaml.in/yaml/v3"

	"gitxds.dev/gitxds/reconciler/render"
	"gitxds.dev/gitxds/reconciler/yamlfield"
)

// SourceFunc reads a file of the repository (a path relative to its root,
// as render.Object.File names it).
type SourceFunc func(file string) ([]byte, error)

// fieldLine is the line of the field at path in o's source file, or 0 when
// it cannot be told honestly. The rendered object is not the file: kustomize
// writes it anew, and a patch may have changed it. So the field is looked
// for in the one document of the file with o's kind and name (and
// namespace, if it says one), and its line is given only when what
// surrounds the field there (the mapping or list that holds it) is what
// was rendered. An object an overlay changed has no line.
func fieldLine(read SourceFunc, o render.Object, path yamlfield.Path) int {
	if read == nil || len(path) == 0 || o.Overlay != "" || o.File == "" {
		return 0
	}
	src, err := read(o.File)
	if err != nil {
		return 0
	}
	doc := sourceDoc(src, o)
	rendered := parseDoc(o.YAML)
	if doc == nil || rendered == nil {
		return 0
	}
	parent, at := yamlfield.Lookup(doc, path)
	rparent, _ := yamlfield.Lookup(rendered, path)
	if at == nil || rparent == nil || !yamlfield.Same(parent, rparent) {
		return 0
	}
	return at.Line
}

// sourceDoc is the one document of a YAML stream that is o (by kind, name
// and namespace when the document sets one); nil if none or several.
func sourceDoc(src []byte, o render.Object) *yaml3.Node {
	dec := yaml3.NewDecoder(bytes.NewReader(src))
	var found *yaml3.Node
	for {
		var d yaml3.Node
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				return found
			}
			return nil
		}
		root := docRoot(&d)
		if root == nil || scalarAt(root, "kind") != o.Kind {
			continue
		}
		meta := child(root, "metadata")
		if meta == nil || scalarAt(meta, "name") != o.Name {
			continue
		}
		if ns := scalarAt(meta, "namespace"); ns != "" && ns != o.Namespace {
			continue
		}
		if found != nil {
			return nil
		}
		found = root
	}
}

func parseDoc(y []byte) *yaml3.Node {
	var d yaml3.Node
	if yaml3.Unmarshal(y, &d) != nil {
		return nil
	}
	return docRoot(&d)
}

func docRoot(d *yaml3.Node) *yaml3.Node {
	if d.Kind != yaml3.DocumentNode || len(d.Content) == 0 || d.Content[0].Kind != yaml3.MappingNode {
		return nil
	}
	return d.Content[0]
}

// child is the value of key in mapping n (the last one, as a decoder
// keeps), or nil.
func child(n *yaml3.Node, key string) *yaml3.Node {
	n = yamlfield.Unalias(n)
	if n.Kind != yaml3.MappingNode {
		return nil
	}
	var v *yaml3.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v = yamlfield.Unalias(n.Content[i+1])
		}
	}
	return v
}

func scalarAt(n *yaml3.Node, key string) string {
	if v := child(n, key); v != nil && v.Kind == yaml3.ScalarNode {
		return v.Value
	}
	return ""
}
