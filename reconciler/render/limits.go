package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// Limits bound what a render reads, so that no file of the repository can
// make a render slow or large: every file a build may read is checked
// against them before kustomize sees it. A zero field takes its default.
type Limits struct {
	// FileBytes caps the size of each file a build reads.
	FileBytes int
	// Depth caps the nesting of mappings and sequences in a YAML file.
	// Kustomize walks nested nodes recursively and superlinearly: 10,000
	// nested flow mappings took 26 s to refuse.
	Depth int
	// ObjectsPerFile caps the YAML documents of one resource file.
	ObjectsPerFile int
	// ObjectsPerTeam caps the objects one team directory (one entry of the
	// overlay's resources) lists. Kustomize checks every object it adds
	// against every object already accumulated in the same build, so one
	// build costs O(n²): 1,000 objects in one team took 2.8 s, 2,000 about
	// 10 s. A sharded render builds each team on its own, so the whole
	// render stays linear in the number of teams.
	ObjectsPerTeam int
}

// Default limits.
const (
	DefaultFileBytes      = 1 << 20
	DefaultDepth          = 64
	DefaultObjectsPerFile = 1000
	DefaultObjectsPerTeam = 500
)

func (l Limits) withDefaults() Limits {
	if l.FileBytes <= 0 {
		l.FileBytes = DefaultFileBytes
	}
	if l.Depth <= 0 {
		l.Depth = DefaultDepth
	}
	if l.ObjectsPerFile <= 0 {
		l.ObjectsPerFile = DefaultObjectsPerFile
	}
	if l.ObjectsPerTeam <= 0 {
		l.ObjectsPerTeam = DefaultObjectsPerTeam
	}
	return l
}

// ErrLimit: a file or a team directory is over one of the Limits.
var ErrLimit = errors.New("over a limit")

// checkSize refuses file data over the size limit.
func (l Limits) checkSize(file string, data []byte) error {
	if len(data) > l.FileBytes {
		return refuse(file, ErrLimit, "the file has %d bytes, over the limit of %d bytes per file", len(data), l.FileBytes)
	}
	return nil
}

// parseYAML parses every document of a YAML file within the limits, and
// names the file and line of the first problem. It returns the documents
// that are mappings.
//
// YAML aliases are refused: kustomize expands them (kyaml's DeAnchor copies
// the anchored node for every alias), so a few hundred bytes of nested
// aliases (a "billion laughs") expand to gigabytes. Anchors alone are
// harmless and allowed.
func (l Limits) parseYAML(file string, data []byte) ([]*kyaml.Node, error) {
	if err := l.checkSize(file, data); err != nil {
		return nil, err
	}
	dec := kyaml.NewDecoder(bytes.NewReader(data))
	var docs []*kyaml.Node
	for n := 0; ; n++ {
		var doc kyaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, refuse(file, ErrMalformed, "malformed YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if n >= l.ObjectsPerFile {
			return nil, refuse(file, ErrLimit, "the file has more than %d YAML documents, the limit per file; split it", l.ObjectsPerFile)
		}
		if err := l.checkNode(file, &doc); err != nil {
			return nil, err
		}
		if len(doc.Content) == 1 && doc.Content[0].Kind == kyaml.MappingNode {
			docs = append(docs, doc.Content[0])
		}
	}
}

// checkNode walks a parsed document (iteratively: its depth is what is being
// checked) and refuses aliases and nesting deeper than the limit.
func (l Limits) checkNode(file string, root *kyaml.Node) error {
	type item struct {
		n     *kyaml.Node
		depth int
	}
	stack := []item{{root, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := it.n
		switch {
		case n.Kind == kyaml.AliasNode:
			return refuse(file, ErrLimit, "line %d: YAML alias *%s: aliases are not allowed (kustomize expands every alias into a copy); write the value out", n.Line, n.Value)
		case it.depth > l.Depth:
			return refuse(file, ErrLimit, "line %d: nested more than %d levels deep, the limit", n.Line, l.Depth)
		}
		for _, c := range n.Content {
			stack = append(stack, item{c, it.depth + 1})
		}
	}
	return nil
}

func (l Limits) String() string {
	return fmt.Sprintf("%d bytes per file, %d levels of nesting, %d objects per file, %d objects per team",
		l.FileBytes, l.Depth, l.ObjectsPerFile, l.ObjectsPerTeam)
}
