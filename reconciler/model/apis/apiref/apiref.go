// Package apiref generates docs/reference.md, the field reference of
// gitxds's own kinds, from the Go source of their types
// (reconciler/model/apis/v1alpha1). It parses the package with go/parser and
// reads the doc comments; nothing is hand-listed, so a kind added to the
// package appears in the reference when it is regenerated:
//
//	go test ./reconciler/model/apis/apiref -update
//
// (also part of the Taskfile's golden task). A test fails while
// docs/reference.md differs from what the source gives.
//
// # What is read from the source
//
//   - A kind is an exported struct type that embeds metav1.TypeMeta and
//     metav1.ObjectMeta. Its doc comment introduces it.
//   - A field's YAML path comes from its json tag; a field with
//     `json:",inline"`, or embedded without a tag, contributes its own
//     fields at the same level; `json:"-"` is left out.
//   - A field is required when its tag has no omitempty, unless its comment
//     has the marker +optional (or +required forces it).
//   - A line of a field's comment that starts with "Default:" or
//     "Validation:", and the lines after it up to the next such line or
//     marker, go to the Default or Validation column, as do the
//     kubebuilder markers +kubebuilder:default=V and
//     +kubebuilder:validation:Name=V. Lines starting with "+" are markers
//     and never shown as text.
//   - A field without a comment is described by its type's comment.
//   - A named string type with constants of that type lists them as its
//     values.
package apiref

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Package is the parsed API package.
type Package struct {
	// Group and Version from the package's Group and Version constants.
	Group, Version string
	Kinds          []Kind
}

// Kind is one kind and its fields, depth first in source order.
type Kind struct {
	Name   string
	Doc    string
	Fields []Field
}

// Field is one row of the reference.
type Field struct {
	// Path is the YAML path from the object's root: spec.endpoints[].ip.address.
	Path       string
	Type       string
	Required   bool
	Default    string
	Validation string
	Doc        string
}

// parsed holds the declarations of the package's files.
type parsed struct {
	types  map[string]*ast.TypeSpec
	docs   map[string]string   // type name -> doc comment
	enums  map[string][]string // type name -> constant values
	consts map[string]string   // untyped string constants by name
}

// Load parses the non-test Go files of dir.
func Load(dir string) (*Package, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	fset := token.NewFileSet()
	p := &parsed{types: map[string]*ast.TypeSpec{}, docs: map[string]string{}, enums: map[string][]string{}, consts: map[string]string{}}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		p.collect(f)
	}
	out := &Package{Group: p.consts["Group"], Version: p.consts["Version"]}
	var kinds []string
	for name, ts := range p.types {
		if ast.IsExported(name) && isKind(ts) {
			kinds = append(kinds, name)
		}
	}
	sort.Strings(kinds)
	for _, name := range kinds {
		k := Kind{Name: name, Doc: p.docs[name]}
		p.fields(&k, "", p.types[name].Type.(*ast.StructType), map[string]bool{name: true})
		out.Kinds = append(out.Kinds, k)
	}
	return out, nil
}

func (p *parsed) collect(f *ast.File) {
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		switch g.Tok {
		case token.TYPE:
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(g.Specs) == 1 {
					doc = g.Doc
				}
				p.types[ts.Name.Name] = ts
				p.docs[ts.Name.Name] = text(doc)
			}
		case token.CONST:
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				typ := ""
				if id, ok := vs.Type.(*ast.Ident); ok {
					typ = id.Name
				}
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						continue
					}
					if typ != "" {
						p.enums[typ] = append(p.enums[typ], v)
					} else {
						p.consts[n.Name] = v
					}
				}
			}
		}
	}
}

// text is a comment's text on one line per source line, trimmed.
func text(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.TrimSpace(cg.Text())
}

// isKind: a struct that embeds metav1.TypeMeta and metav1.ObjectMeta.
func isKind(ts *ast.TypeSpec) bool {
	st, ok := ts.Type.(*ast.StructType)
	if !ok {
		return false
	}
	var typeMeta, objectMeta bool
	for _, f := range st.Fields.List {
		if len(f.Names) > 0 {
			continue
		}
		if sel, ok := f.Type.(*ast.SelectorExpr); ok {
			typeMeta = typeMeta || sel.Sel.Name == "TypeMeta"
			objectMeta = objectMeta || sel.Sel.Name == "ObjectMeta"
		}
	}
	return typeMeta && objectMeta
}

// fields appends the rows of struct st, below path prefix, to k.
func (p *parsed) fields(k *Kind, prefix string, st *ast.StructType, seen map[string]bool) {
	for _, f := range st.Fields.List {
		tag := ""
		if f.Tag != nil {
			if t, err := strconv.Unquote(f.Tag.Value); err == nil {
				tag = reflect.StructTag(t).Get("json")
			}
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		embedded := len(f.Names) == 0
		if embedded {
			if sel, ok := f.Type.(*ast.SelectorExpr); ok && (sel.Sel.Name == "TypeMeta" || sel.Sel.Name == "ObjectMeta") {
				continue // apiVersion, kind and metadata: said once for every kind
			}
		}
		if (embedded && name == "") || hasOpt(opts, "inline") {
			base := deref(f.Type)
			if id, ok := base.(*ast.Ident); ok {
				if ts, ok := p.types[id.Name]; ok {
					if inner, ok := ts.Type.(*ast.StructType); ok && !seen[id.Name] {
						seen[id.Name] = true
						p.fields(k, prefix, inner, seen)
						delete(seen, id.Name)
						continue
					}
				}
			}
			if inner, ok := base.(*ast.StructType); ok {
				p.fields(k, prefix, inner, seen)
				continue
			}
			k.Fields = append(k.Fields, Field{Path: strings.TrimSuffix(prefix, ".") + " (inline)", Type: p.typeName(f.Type), Doc: "the fields of " + p.typeName(f.Type) + ", at this level"})
			continue
		}
		if embedded {
			p.field(k, prefix+name, f, opts, seen) // an embedded field with a json name
			continue
		}
		for _, n := range f.Names {
			if !ast.IsExported(n.Name) {
				continue
			}
			key := name
			if key == "" {
				key = n.Name // encoding/json's default; gitxds tags every field
			}
			p.field(k, prefix+key, f, opts, seen)
		}
	}
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

func deref(e ast.Expr) ast.Expr {
	for {
		s, ok := e.(*ast.StarExpr)
		if !ok {
			return e
		}
		e = s.X
	}
}

// field appends the row of one field and, for an object, its fields.
func (p *parsed) field(k *Kind, path string, f *ast.Field, opts string, seen map[string]bool) {
	doc := text(f.Doc)
	if doc == "" {
		doc = text(f.Comment)
	}
	row := Field{Path: path, Type: p.typeName(f.Type), Required: !hasOpt(opts, "omitempty")}
	var lines, valid []string
	// cont is where a line that continues a Default: or Validation: line
	// goes: they run to the next such line or marker.
	var cont *string
	for _, l := range strings.Split(doc, "\n") {
		l = strings.TrimSpace(l)
		isMarker := strings.HasPrefix(l, "+") || strings.HasPrefix(l, "Default:") || strings.HasPrefix(l, "Validation:")
		if cont != nil && !isMarker && l != "" {
			*cont += " " + l
			continue
		}
		cont = nil
		switch {
		case l == "+optional":
			row.Required = false
		case l == "+required":
			row.Required = true
		case strings.HasPrefix(l, "+kubebuilder:default="):
			row.Default = strings.TrimPrefix(l, "+kubebuilder:default=")
		case strings.HasPrefix(l, "+kubebuilder:validation:"):
			n, v, _ := strings.Cut(strings.TrimPrefix(l, "+kubebuilder:validation:"), "=")
			valid = append(valid, strings.TrimSpace(n+" "+v))
		case strings.HasPrefix(l, "+"):
			// another marker
		case strings.HasPrefix(l, "Default:"):
			row.Default = strings.TrimSpace(strings.TrimPrefix(l, "Default:"))
			cont = &row.Default
		case strings.HasPrefix(l, "Validation:"):
			valid = append(valid, strings.TrimSpace(strings.TrimPrefix(l, "Validation:")))
			cont = &valid[len(valid)-1]
		default:
			lines = append(lines, l)
		}
	}
	row.Default = strings.TrimSuffix(row.Default, ".")
	for i := range valid {
		valid[i] = strings.TrimSuffix(valid[i], ".")
	}
	row.Validation = strings.Join(valid, "; ")
	row.Doc = strings.TrimSpace(strings.Join(lines, " "))
	local := p.localType(f.Type)
	if row.Doc == "" && local != "" {
		row.Doc = p.docs[local]
	}
	if local != "" {
		if vs := p.enums[local]; len(vs) > 0 && row.Validation == "" {
			q := make([]string, len(vs))
			for i, v := range vs {
				q[i] = "`" + v + "`"
			}
			row.Validation = "one of " + strings.Join(q, ", ")
		}
	}
	k.Fields = append(k.Fields, row)

	// Recurse into objects, through pointers, slices and maps.
	e, suffix := f.Type, ""
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
			continue
		case *ast.ArrayType:
			e, suffix = t.Elt, suffix+"[]"
			continue
		case *ast.MapType:
			e, suffix = t.Value, suffix+".*"
			continue
		}
		break
	}
	switch t := e.(type) {
	case *ast.StructType:
		p.fields(k, path+suffix+".", t, seen)
	case *ast.Ident:
		ts, ok := p.types[t.Name]
		if !ok || seen[t.Name] {
			return
		}
		if st, ok := ts.Type.(*ast.StructType); ok {
			seen[t.Name] = true
			p.fields(k, path+suffix+".", st, seen)
			delete(seen, t.Name)
		}
	}
}

// localType is the name of the package's own type a field's type refers
// to (through pointers, slices and maps), or "".
func (p *parsed) localType(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.ArrayType:
			e = t.Elt
		case *ast.MapType:
			e = t.Value
		case *ast.Ident:
			if _, ok := p.types[t.Name]; ok {
				return t.Name
			}
			return ""
		default:
			return ""
		}
	}
}

// external are the types of other packages that gitxds's kinds use, as a
// YAML author writes them.
var external = map[string]string{
	"metav1.Duration":      "duration",
	"metav1.LabelSelector": "label selector (`matchLabels`, `matchExpressions`)",
	"metav1.Time":          "timestamp (RFC 3339)",
	"intstr.IntOrString":   "integer or string",
}

// typeName is a field type as a YAML author reads it.
func (p *parsed) typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return p.typeName(t.X)
	case *ast.ArrayType:
		return "[]" + p.typeName(t.Elt)
	case *ast.MapType:
		return "map[" + p.typeName(t.Key) + "]" + p.typeName(t.Value)
	case *ast.StructType:
		return "object"
	case *ast.InterfaceType:
		return "any"
	case *ast.SelectorExpr:
		q := fmt.Sprintf("%s.%s", t.X, t.Sel.Name)
		if s, ok := external[q]; ok {
			return s
		}
		return "`" + q + "`"
	case *ast.Ident:
		if ts, ok := p.types[t.Name]; ok {
			if _, isStruct := ts.Type.(*ast.StructType); isStruct {
				return "object"
			}
			return p.typeName(ts.Type)
		}
		switch t.Name {
		case "string":
			return "string"
		case "bool":
			return "boolean"
		case "float32", "float64":
			return "number"
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			return "integer"
		}
		return t.Name
	}
	return "any"
}
