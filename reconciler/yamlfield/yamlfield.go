// Package yamlfield says which field of a YAML document does not decode
// into a Go type, and where: the field's path (spec.rules[0].backendRef),
// what is wrong (an unknown field, with the closest valid name; a wrong
// type), and its line. It reads YAML as Kubernetes does (sigs.k8s.io/yaml:
// YAML 1.1 scalars, then encoding/json with unknown fields disallowed), and
// is generic over the Go types, so every kind gets the same messages.
package yamlfield

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	yaml2 "go.yaml.in/yaml/v2"
	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// Error is why an object does not decode, said of one field: its
// path in the object (spec.rules[0].backendRef) and what is wrong there
// ("unknown field (did you mean "backendRefs"?)", "expected integer, got
// string").
type Error struct {
	Path Path
	Msg  string
}

func (e *Error) Error() string {
	if len(e.Path) == 0 {
		return e.Msg
	}
	return e.Path.String() + ": " + e.Msg
}

// MsgDuplicate is the Msg of a key given twice in a mapping.
const MsgDuplicate = "duplicate field"

// Path is the path of a field from the document's root: map keys and
// list indexes.
type Path []Step

// Step is a key of a mapping, or (Key empty) an index of a list.
type Step struct {
	Key   string
	Index int
}

// String is the path as Gateway API's validation messages write one:
// spec.rules[0].backendRefs[1].port, with a key that is not a plain name
// quoted (metadata.labels["app.kubernetes.io/name"]).
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		switch {
		case s.Key == "":
			fmt.Fprintf(&b, "[%d]", s.Index)
		case !plainKey(s.Key):
			fmt.Fprintf(&b, "[%q]", s.Key)
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Key)
		}
	}
	return b.String()
}

func plainKey(k string) bool {
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return k != ""
}

func (p Path) key(k string) Path { return append(slices.Clip(p), Step{Key: k}) }
func (p Path) index(i int) Path  { return append(slices.Clip(p), Step{Index: i}) }

// Diagnose finds the first field of the YAML document y, in document
// order, that does not decode strictly into a value of type t the way
// sigs.k8s.io/yaml.UnmarshalStrict decodes (YAML 1.1 scalars, then
// encoding/json with unknown fields disallowed). nil when it finds none:
// the caller keeps the decoder's own message.
//
// Meant for documents that failed to decode: it is not fast.
func Diagnose(t reflect.Type, y []byte) *Error {
	var doc yaml3.Node
	if err := yaml3.Unmarshal(y, &doc); err != nil || doc.Kind != yaml3.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	return walkType(doc.Content[0], t, nil)
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func walkType(n *yaml3.Node, t reflect.Type, path Path) *Error {
	if n.Kind == yaml3.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml3.ScalarNode {
		if class, _ := scalarClass(n); class == classNull {
			return nil // null decodes into anything
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		// The type decodes itself (a time, a quantity): ask it.
		return unmarshalerError(n, t, path)
	}
	switch t.Kind() {
	case reflect.Interface:
		return nil
	case reflect.Struct:
		if n.Kind != yaml3.MappingNode {
			return mismatch(n, "object", path)
		}
		fields := jsonFieldsOf(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path.key(k.Value)
			if seen[k.Value] {
				return &Error{Path: p, Msg: MsgDuplicate}
			}
			seen[k.Value] = true
			ft, ok := fields.lookup(k.Value)
			if !ok {
				return &Error{Path: p, Msg: "unknown field" + fields.suggest(k.Value)}
			}
			if e := walkType(v, ft, p); e != nil {
				return e
			}
		}
	case reflect.Map:
		if n.Kind != yaml3.MappingNode {
			return mismatch(n, "object", path)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path.key(k.Value)
			if seen[k.Value] {
				return &Error{Path: p, Msg: MsgDuplicate}
			}
			seen[k.Value] = true
			if e := walkType(v, t.Elem(), p); e != nil {
				return e
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return scalarOf(n, t, path) // []byte: a base64 string
		}
		if n.Kind != yaml3.SequenceNode {
			return mismatch(n, "array", path)
		}
		for i, e := range n.Content {
			if err := walkType(e, t.Elem(), path.index(i)); err != nil {
				return err
			}
		}
	default:
		return scalarOf(n, t, path)
	}
	return nil
}

// scalarOf checks a scalar field of kind t.Kind().
func scalarOf(n *yaml3.Node, t reflect.Type, path Path) *Error {
	want := kindName(t)
	if n.Kind != yaml3.ScalarNode {
		return mismatch(n, want, path)
	}
	class, v := scalarClass(n)
	ok := false
	switch t.Kind() {
	case reflect.String:
		ok = class == classString
	case reflect.Bool:
		ok = class == classBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		// 1.0 is 1 once in JSON; 1.5 is not an integer.
		f, isFloat := v.(float64)
		ok = class == classInt || isFloat && f == math.Trunc(f)
	case reflect.Float32, reflect.Float64:
		ok = class == classInt || class == classFloat
	case reflect.Slice: // []byte
		ok = class == classString
	default:
		return nil // a kind the JSON decoder has its own words for
	}
	if ok {
		return nil
	}
	e := mismatch(n, want, path)
	if class == classBool && t.Kind() == reflect.String && n.Value != "true" && n.Value != "false" {
		e.Msg += fmt.Sprintf(" (YAML reads an unquoted %s as a boolean: quote it)", n.Value)
	}
	return e
}

func mismatch(n *yaml3.Node, want string, path Path) *Error {
	return &Error{Path: path, Msg: fmt.Sprintf("expected %s, got %s", want, nodeName(n))}
}

// unmarshalerError is the error of a type that decodes itself, given the
// node as JSON.
func unmarshalerError(n *yaml3.Node, t reflect.Type, path Path) *Error {
	y, err := yaml3.Marshal(n)
	if err != nil {
		return nil
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil
	}
	if err := json.Unmarshal(j, reflect.New(t).Interface()); err != nil {
		msg := err.Error()
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("expected %s, got %s", kindName(t), nodeName(n))
		}
		return &Error{Path: path, Msg: msg}
	}
	return nil
}

// Scalar classes, as JSON sees the value sigs.k8s.io/yaml makes of a
// scalar.
const (
	classNull   = "null"
	classBool   = "boolean"
	classInt    = "integer"
	classFloat  = "number"
	classString = "string"
)

// scalarClass is what sigs.k8s.io/yaml (YAML 1.1, by go.yaml.in/yaml/v2)
// makes of a scalar: an unquoted on, yes or y is a boolean there, 010 an
// integer (8). The value is the one it reads.
func scalarClass(n *yaml3.Node) (string, any) {
	if n.Style&(yaml3.DoubleQuotedStyle|yaml3.SingleQuotedStyle|yaml3.LiteralStyle|yaml3.FoldedStyle) != 0 {
		return classString, n.Value
	}
	if n.Style&yaml3.TaggedStyle != 0 {
		switch n.ShortTag() {
		case "!!null":
			return classNull, nil
		case "!!bool":
			return classBool, nil
		case "!!int":
			return classInt, nil
		case "!!float":
			return classFloat, nil
		}
		return classString, n.Value
	}
	var v any
	if err := yaml2.Unmarshal([]byte(n.Value), &v); err != nil {
		return classString, n.Value
	}
	switch v := v.(type) {
	case nil:
		return classNull, nil
	case bool:
		return classBool, v
	case int, int64, uint64:
		return classInt, v
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return classString, n.Value // JSON has no such number: the conversion fails anyway
		}
		return classFloat, v
	case string:
		return classString, v
	}
	return classString, n.Value
}

func nodeName(n *yaml3.Node) string {
	switch n.Kind {
	case yaml3.MappingNode:
		return "object"
	case yaml3.SequenceNode:
		return "array"
	case yaml3.ScalarNode:
		class, _ := scalarClass(n)
		if class == classString {
			return "string " + strconv.Quote(n.Value)
		}
		return class + " " + n.Value
	}
	return "something else"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return classString
	case reflect.Bool:
		return classBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return classInt
	case reflect.Float32, reflect.Float64:
		return classFloat
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return classString
		}
		return "array"
	}
	return t.String()
}

// jsonFields are the JSON field names of a struct type, with embedded
// structs' fields promoted as encoding/json promotes them.
type jsonFields struct {
	byName map[string]reflect.Type
	names  []string // sorted
}

var jsonFieldsCache sync.Map // reflect.Type -> *jsonFields

func jsonFieldsOf(t reflect.Type) *jsonFields {
	if f, ok := jsonFieldsCache.Load(t); ok {
		return f.(*jsonFields)
	}
	f := &jsonFields{byName: map[string]reflect.Type{}}
	f.collect(t, map[reflect.Type]bool{})
	for n := range f.byName {
		f.names = append(f.names, n)
	}
	slices.Sort(f.names)
	jsonFieldsCache.Store(t, f)
	return f
}

// collect adds t's fields, then the fields of its embedded structs (a
// shallower field wins, as in encoding/json).
func (f *jsonFields) collect(t reflect.Type, visiting map[reflect.Type]bool) {
	if visiting[t] {
		return
	}
	visiting[t] = true
	var embedded []reflect.Type
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := f.byName[name]; !dup {
			f.byName[name] = sf.Type
		}
	}
	for _, e := range embedded {
		f.collect(e, visiting)
	}
}

// lookup finds a key as encoding/json does: the exact name, else a name
// equal to it but for case.
func (f *jsonFields) lookup(key string) (reflect.Type, bool) {
	if t, ok := f.byName[key]; ok {
		return t, true
	}
	for _, n := range f.names {
		if strings.EqualFold(n, key) {
			return f.byName[n], true
		}
	}
	return nil, false
}

// suggest is ` (did you mean "x"?)` for the closest field name to an
// unknown key when it is close (a typo: an edit or two), else the valid
// names, or "" when there are none.
func (f *jsonFields) suggest(key string) string {
	if best, ok := Closest(key, f.names); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(f.names) == 0 {
		return ""
	}
	return " (valid: " + ListNames(f.names) + ")"
}

// Closest is the name nearest to s by edit distance (optimal string
// alignment: insertions, deletions, substitutions and transpositions,
// ignoring case), when the distance is at most 1, or a quarter of s's
// length; ties go to the first name in sorted order.
func Closest(s string, names []string) (string, bool) {
	best, bestD := "", -1
	for _, n := range names {
		d := editDistance(strings.ToLower(s), strings.ToLower(n))
		if bestD < 0 || d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if bestD < 0 || bestD > max(1, len(s)/4) {
		return "", false
	}
	return best, true
}

func editDistance(a, b string) int {
	// Three rows of the optimal string alignment distance.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// MaxListed is how many names a message lists at most ("valid: a, b, c
// and 4 more"): enough to spot a typo, short enough for a status line.
const MaxListed = 8

// ListNames is names sorted, without duplicates, joined by ", ": the first
// MaxListed of them and how many more. names is not modified.
func ListNames(names []string) string {
	s := slices.Clone(names)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) <= MaxListed {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:MaxListed], ", "), len(s)-MaxListed)
}
