package render

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/resid"
)

// Error is a render failure with its provenance: the repository file (relative
// to the repository root) and, when one is involved, the object.
type Error struct {
	// File relative to the repository root, e.g.
	// "teams/payments/kustomization.yaml".
	File string
	// Line in File the error is about, when it is known; 0 otherwise.
	Line int
	// Object is "Kind namespace/name" (or "Kind name"), or empty.
	Object string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Refusals of the confinement check. They are wrapped in *Error, so callers
// can tell them apart with errors.Is.
var (
	// ErrOutsideRepository: an absolute path or one that leaves the repository.
	ErrOutsideRepository = errors.New("path leaves the repository")
	// ErrRemote: a remote base, resource or file (URL, git repository).
	ErrRemote = errors.New("remote references are not allowed")
	// ErrPlugin: an exec, Go or container (KRM function) plugin, or helm.
	ErrPlugin = errors.New("only kustomize's builtin generators and transformers are allowed")
	// ErrMalformed: a file that is not valid YAML, or an invalid kustomization.
	ErrMalformed = errors.New("malformed")
	// ErrNotFound: a referenced file or directory that is not in the repository.
	ErrNotFound = errors.New("not found in the repository")
	// ErrReservedAnnotation: an input that sets an annotation kustomize uses
	// for provenance, or an object whose provenance was forged.
	ErrReservedAnnotation = errors.New("reserved annotation")
	// ErrConfinement: a path that leaves the kustomization's area: a team's
	// kustomization naming a path outside teams/<team>/, the platform's one
	// outside platform/, or a directory other than an overlay naming either.
	ErrConfinement = errors.New("path leaves its directory")
	// ErrNoOverlay: the overlay directory asked for is not in the
	// repository, or holds no kustomization file: the caller named the
	// wrong directory (a command-line tool's usage error). It matches
	// ErrNotFound too.
	ErrNoOverlay = errors.New("no such overlay")
	// ErrTooManyObjects: the render produced more than Options.MaxObjects.
	ErrTooManyObjects = errors.New("too many objects")
)

// refusal is an error that reads as its own message but matches a sentinel.
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Is(target error) bool {
	return target == r.kind || r.kind == ErrNoOverlay && target == ErrNotFound
}

func refuse(file string, kind error, format string, args ...any) *Error {
	return &Error{File: file, Err: &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}}
}

// translator rewrites the paths of the staged build tree in kustomize's error
// messages into paths relative to the repository root, and finds the file an
// error is about.
type translator struct {
	repoDir string // absolute directory of the repository in the staged FS
	topDir  string // absolute directory of the synthetic top kustomization
	overlay string // repo-relative overlay directory
	files   map[string]bool
	kfile   map[string]string // repo-relative dir -> its kustomization file
	defines map[string][]string
}

var (
	quotedFrom = regexp.MustCompile(`(?:accumulating resources from|merging resources from|from) '([^']+)'`)
	registered = regexp.MustCompile(`already registered id: ([^\s']+)`)
	// Kustomize's trail through directories ("try as a file, then as a
	// directory"): noise once the error names its file.
	dirTrail  = regexp.MustCompile(`accumulating resources: accumulation err='accumulating resources from '[^']*': '[^']*' must resolve to a file': recursed (?:accumulation of|merging from) path '[^']*': `)
	fileTrail = regexp.MustCompile(`^accumulating resources: accumulation err='accumulating resources from '[^']*': (.*)': must build at directory: '[^']*': file is not directory$`)
)

// distill removes kustomize's trail through the kustomization graph from a
// (translated) message, keeping the cause.
func distill(msg string) string {
	msg = dirTrail.ReplaceAllString(msg, "")
	if m := fileTrail.FindStringSubmatch(msg); m != nil {
		msg = m[1]
	}
	if strings.HasPrefix(msg, "may not add resource with an already registered id") {
		msg = "duplicate object: " + msg
	}
	return msg
}

// rel rewrites every staged path in s to a repository-relative one.
func (t *translator) rel(s string) string {
	s = strings.ReplaceAll(s, ".."+t.repoDir+"/", "")
	s = strings.ReplaceAll(s, t.repoDir+"/", "")
	s = strings.ReplaceAll(s, ".."+t.repoDir, ".")
	s = strings.ReplaceAll(s, t.repoDir, ".")
	s = strings.ReplaceAll(s, t.topDir, t.overlay)
	return s
}

// wrap turns a kustomize error into an *Error naming the most specific
// repository file the message points at.
func (t *translator) wrap(err error) *Error {
	msg := err.Error()
	e := &Error{File: t.kfile[t.overlay], Err: errors.New(distill(t.rel(msg)))}
	// The deepest kustomization directory the message names.
	dir := t.overlay
	for i := 0; ; {
		j := strings.Index(msg[i:], t.repoDir)
		if j < 0 {
			break
		}
		i += j + len(t.repoDir)
		end := i
		for end < len(msg) && !strings.ContainsRune("'\" :\n", rune(msg[end])) {
			end++
		}
		p := strings.TrimPrefix(msg[i:end], "/")
		if p == "" {
			p = "."
		}
		switch {
		case t.kfile[p] != "":
			dir, e.File = p, t.kfile[p]
		case t.files[p]:
			dir, e.File = path.Dir(p), p
		}
		i = end
	}
	// The file inside it ("merging resources from 'routes.yaml'").
	for _, m := range quotedFrom.FindAllStringSubmatch(msg, -1) {
		if p := path.Join(dir, m[1]); t.files[p] {
			e.File = p
		}
	}
	if m := registered.FindStringSubmatch(msg); m != nil && strings.Contains(m[1], "/") {
		id := resid.FromString(m[1])
		e.Object = objectID(id.Kind, id.Namespace, id.Name)
		if f := t.definedIn(dir, id.Kind+" "+id.Name); f != "" {
			e.File = f
		}
	}
	return e
}

// definedIn is the one resource file at or below dir that defines the object
// "Kind name", or "".
func (t *translator) definedIn(dir, obj string) string {
	var found string
	for f, objs := range t.defines {
		if dir != "." && !strings.HasPrefix(f, dir+"/") {
			continue
		}
		for _, o := range objs {
			if o == obj {
				if found != "" && found != f {
					return ""
				}
				found = f
			}
		}
	}
	return found
}

func objectID(kind, namespace, name string) string {
	return Object{Kind: kind, Namespace: namespace, Name: name}.ID()
}
