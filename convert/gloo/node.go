package gloo

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// node is one YAML mapping of an input object being converted. Every key
// the converter reads is marked used; done reports the keys nobody read, so
// each field of the input is either converted or reported, never silently
// dropped.
type node struct {
	r    *Report
	file string
	path string // field path from the object, e.g. spec.virtualHost.routes[0]
	m    map[string]any
	used map[string]bool
}

func newNode(r *Report, file, path string, m map[string]any) *node {
	return &node{r: r, file: file, path: path, m: m, used: map[string]bool{}}
}

func (n *node) field(k string) string {
	if n.path == "" {
		return k
	}
	return n.path + "." + k
}

func (n *node) has(k string) bool {
	if n == nil {
		return false
	}
	_, ok := n.m[k]
	return ok
}

func (n *node) get(k string) (any, bool) {
	if n == nil {
		return nil, false
	}
	v, ok := n.m[k]
	if ok {
		n.used[k] = true
	}
	return v, ok && v != nil
}

// child returns the mapping under k, or nil.
func (n *node) child(k string) *node {
	v, ok := n.get(k)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		n.bad(k, "is not a mapping")
		return nil
	}
	return newNode(n.r, n.file, n.field(k), m)
}

// list returns the mappings of the list under k.
func (n *node) list(k string) []*node {
	v, ok := n.get(k)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		n.bad(k, "is not a list")
		return nil
	}
	var out []*node
	for i, e := range l {
		m, isMap := e.(map[string]any)
		if !isMap {
			n.bad(fmt.Sprintf("%s[%d]", k, i), "is not a mapping")
			continue
		}
		out = append(out, newNode(n.r, n.file, fmt.Sprintf("%s[%d]", n.field(k), i), m))
	}
	return out
}

func (n *node) str(k string) string {
	v, ok := n.get(k)
	if !ok {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case float64, bool, int64:
		return fmt.Sprint(x)
	}
	n.bad(k, "is not a string")
	return ""
}

func (n *node) strs(k string) []string {
	v, ok := n.get(k)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		n.bad(k, "is not a list")
		return nil
	}
	var out []string
	for _, e := range l {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// num returns a number, also one written as a string (protobuf's JSON
// mapping writes 64-bit integers and wrapper values either way).
func (n *node) num(k string) (float64, bool) {
	v, ok := n.get(k)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f, true
		}
	case map[string]any: // {value: N}, a wrapper written as a message
		if w, ok := x["value"]; ok && len(x) == 1 {
			if f, ok := w.(float64); ok {
				return f, true
			}
		}
	}
	n.bad(k, "is not a number")
	return 0, false
}

// boolean returns a bool; set is false when k is absent.
func (n *node) boolean(k string) (v, set bool) {
	x, ok := n.get(k)
	if !ok {
		return false, false
	}
	switch b := x.(type) {
	case bool:
		return b, true
	case map[string]any: // {value: true}
		if w, ok := b["value"].(bool); ok {
			return w, true
		}
	}
	n.bad(k, "is not a boolean")
	return false, false
}

// duration parses a protobuf Duration in its JSON form ("1.5s").
func (n *node) duration(k string) (time.Duration, bool) {
	s := n.str(k)
	if s == "" {
		return 0, false
	}
	d, err := parseProtoDuration(s)
	if err != nil {
		n.bad(k, err.Error())
		return 0, false
	}
	return d, true
}

func parseProtoDuration(s string) (time.Duration, error) {
	if !strings.HasSuffix(s, "s") {
		return 0, fmt.Errorf("duration %q must end in s (protobuf Duration)", s)
	}
	// time.ParseDuration also accepts "1m30s" or "100ms", which Gloo
	// users write and Gloo's YAML decoding refuses; accept them too.
	return time.ParseDuration(s)
}

// skip marks keys as read without converting them (metadata and the like).
func (n *node) skip(keys ...string) {
	if n == nil {
		return
	}
	for _, k := range keys {
		n.used[k] = true
	}
}

// unsupported reports k, when present, as not converted.
func (n *node) unsupported(k, why string) {
	if n.has(k) {
		n.used[k] = true
		n.r.notConverted(n.file, n.field(k), "%s", why)
	}
}

func (n *node) bad(k, why string) {
	n.r.notConverted(n.file, n.field(k), "%s", why)
}

// done reports every key that was not read.
func (n *node) done() {
	if n == nil {
		return
	}
	var rest []string
	for k := range n.m {
		if !n.used[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		n.r.notConverted(n.file, n.field(k), "not supported by gitxds convert gloo")
	}
}
