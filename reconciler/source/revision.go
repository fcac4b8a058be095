package source

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Revision is one commit of the repository, with the ref it was reached by.
type Revision struct {
	// Ref is the branch, tag or ref as the user wrote it ("main", "v1.2",
	// "refs/pull/1/head", "HEAD"); empty when the commit was named by SHA.
	Ref string
	// Hash is the commit's SHA-1.
	Hash plumbing.Hash
}

const sha1Marker = "sha1:"

// String is the Flux-style form "main@sha1:<40 hex>", or "sha1:<40 hex>"
// without a ref. The zero Revision is "".
func (r Revision) String() string {
	if r.IsZero() {
		return ""
	}
	if r.Ref == "" {
		return sha1Marker + r.Hash.String()
	}
	return r.Ref + "@" + sha1Marker + r.Hash.String()
}

// Short is "main@<first 12 hex>", for logs and messages.
func (r Revision) Short() string {
	if r.IsZero() {
		return ""
	}
	h := r.Hash.String()[:12]
	if r.Ref == "" {
		return h
	}
	return r.Ref + "@" + h
}

// IsZero reports whether r is the zero Revision (no commit).
func (r Revision) IsZero() bool { return r.Hash.IsZero() }

// ParseRevision parses the forms String writes: "<ref>@sha1:<40 hex>" and
// "sha1:<40 hex>".
func ParseRevision(s string) (Revision, error) {
	ref, h, found := strings.Cut(s, "@"+sha1Marker)
	if !found {
		var ok bool
		if h, ok = strings.CutPrefix(s, sha1Marker); !ok {
			return Revision{}, fmt.Errorf("revision %q: want <ref>@sha1:<hash> or sha1:<hash>", s)
		}
		ref = ""
	} else if ref == "" {
		return Revision{}, fmt.Errorf("revision %q: empty ref before @sha1:", s)
	}
	if len(h) != 40 {
		return Revision{}, fmt.Errorf("revision %q: hash must be 40 hex digits", s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return Revision{}, fmt.Errorf("revision %q: hash is not hex", s)
	}
	hash := plumbing.NewHash(h)
	if hash.IsZero() {
		return Revision{}, fmt.Errorf("revision %q: zero hash", s)
	}
	return Revision{Ref: ref, Hash: hash}, nil
}
