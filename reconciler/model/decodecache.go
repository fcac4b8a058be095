package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"sync"

	"sigs.k8s.io/yaml"
)

// DecodeCache remembers the JSON form of rendered objects by the content
// hash of their YAML. Converting YAML to JSON is most of the model's time
// (yaml.v2's parser); between two revisions almost every object is
// unchanged, so a reconciler keeps one cache for its life and only changed
// objects are parsed again. The zero value is ready; safe for concurrent use.
type DecodeCache struct {
	mu sync.Mutex
	m  map[[32]byte][]byte
}

// maxDecodeCache bounds the cache; past it the cache starts over.
const maxDecodeCache = 200_000

func (c *DecodeCache) toJSON(y []byte) ([]byte, error) {
	if c == nil {
		return yaml.YAMLToJSONStrict(y)
	}
	k := sha256.Sum256(y)
	c.mu.Lock()
	j, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return j, nil
	}
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxDecodeCache {
		c.m = map[[32]byte][]byte{}
	}
	c.m[k] = j
	c.mu.Unlock()
	return j, nil
}

// unmarshalStrict is sigs.k8s.io/yaml.UnmarshalStrict (duplicate keys and
// unknown fields are errors, with the same messages) through the cache.
func (c *DecodeCache) unmarshalStrict(y []byte, into any) error {
	j, err := c.toJSON(y)
	if err != nil {
		return &decodeError{"error converting YAML to JSON: " + err.Error()}
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	if err := d.Decode(into); err != nil {
		return &decodeError{"error unmarshaling JSON: while decoding JSON: " + err.Error()}
	}
	return nil
}

type decodeError struct{ msg string }

func (e *decodeError) Error() string { return e.msg }
