package model

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sync"

	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler/yamlfield"
)

// DecodeCache remembers decoded objects by their kind and YAML. Decoding (YAML to JSON with yaml.v2's parser, then JSON
// into the typed Go struct) is most of the model's time; between two
// revisions almost every object is unchanged, so a reconciler keeps one
// cache for its life and only changed objects are decoded again. The zero
// value is ready; safe for concurrent use.
//
// The typed objects are shared: by every pass of a Build, by the revisions
// that follow, and by concurrent Builds on the same cache. The model only
// reads them (the IR, statuses and Output are built from copies of their
// fields; TestDecodeCacheUnmodified checks every golden case), and the one
// typed object Build hands out, Output.Rollout, is decoded afresh
// (freshRollout).
type DecodeCache struct {
	mu sync.Mutex
	// Two generations: when cur is full it becomes prev and a new cur
	// starts; a hit in prev moves the entry to cur. What the current
	// revisions use stays, what no revision used for a generation goes.
	// Keyed by kind ("apiVersion Kind", the key of kinds), then by the
	// YAML itself: Go's map hash and one comparison cost a fraction of a
	// cryptographic hash of every object on every revision.
	cur, prev generation
}

type generation struct {
	m map[string]map[string]*decoded
	n int
}

func (g *generation) get(kind string, y []byte) (*decoded, bool) {
	d, ok := g.m[kind][string(y)]
	return d, ok
}

func (g *generation) put(kind string, y []byte, d *decoded) {
	byYAML := g.m[kind]
	if byYAML == nil {
		byYAML = map[string]*decoded{}
		g.m[kind] = byYAML
	}
	if _, ok := byYAML[string(y)]; !ok {
		g.n++
	}
	byYAML[string(y)] = d
}

// decoded is a typed object, or why it does not decode. Read-only.
type decoded struct {
	typed any
	err   error
}

// maxDecodeCache bounds a generation of the cache (DefaultMaxObjects of
// render is 50,000 objects a revision). A variable for tests.
var maxDecodeCache = 100_000

// decode decodes y strictly into a new object of mk (kind names it), or
// returns the object an earlier call decoded from the same kind and YAML.
// The object is shared: the caller must not modify it.
func (c *DecodeCache) decode(kind string, mk func() any, y []byte) (any, error) {
	if c == nil {
		typed := mk()
		err := unmarshalStrict(y, typed)
		return typed, err
	}
	c.mu.Lock()
	d, ok := c.cur.get(kind, y)
	if !ok {
		if d, ok = c.prev.get(kind, y); ok {
			c.putLocked(kind, y, d)
		}
	}
	c.mu.Unlock()
	if ok {
		return d.typed, d.err
	}
	d = &decoded{typed: mk()}
	if d.err = unmarshalStrict(y, d.typed); d.err != nil {
		d.typed = nil
	}
	c.mu.Lock()
	c.putLocked(kind, y, d)
	c.mu.Unlock()
	return d.typed, d.err
}

func (c *DecodeCache) putLocked(kind string, y []byte, d *decoded) {
	if c.cur.m == nil || c.cur.n >= maxDecodeCache {
		c.prev, c.cur = c.cur, generation{m: map[string]map[string]*decoded{}}
	}
	c.cur.put(kind, y, d)
}

// unmarshalStrict is sigs.k8s.io/yaml.UnmarshalStrict (duplicate keys and
// unknown fields are errors, with the same messages). When it fails, the
// error says which field, where and why when yamlfield.Diagnose can tell
// (decodeError.field).
func unmarshalStrict(y []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return &decodeError{msg: "error converting YAML to JSON: " + err.Error(), field: yamlfield.Diagnose(reflect.TypeOf(into), y)}
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(into); err != nil {
		return &decodeError{msg: "error unmarshaling JSON: while decoding JSON: " + err.Error(), field: yamlfield.Diagnose(reflect.TypeOf(into), y)}
	}
	return nil
}

// decodeError is a decoding failure: the decoder's message, and the field
// it is about when yamlfield.Diagnose found it.
type decodeError struct {
	msg   string
	field *yamlfield.Error
}

func (e *decodeError) Error() string { return e.msg }
