package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Errors a Source returns, usable with errors.Is. Every error a Source
// returns is free of the credentials given in the URL or Options.Auth.
var (
	// ErrUnreachable: the repository could not be reached (network, timeout,
	// server error, a local path that is not a repository). Retry later.
	ErrUnreachable = errors.New("repository unreachable")
	// ErrAuth: the server refused the credentials, asked for some, or says the
	// repository does not exist (forges answer so for private repositories);
	// over SSH also an unknown or changed host key.
	ErrAuth = errors.New("authentication failed or repository not found")
	// ErrRefNotFound: the branch, tag, ref or commit does not exist (or the
	// repository has no refs at all).
	ErrRefNotFound = errors.New("revision not found")
	// ErrTooLarge: a file or the whole tree is over Options.MaxFileSize or
	// Options.MaxRepoSize.
	ErrTooLarge = errors.New("over the size limit")
	// ErrUnverified: the commit failed Options.VerifyCommit (unsigned, or
	// not signed by a trusted key).
	ErrUnverified = errors.New("commit verification failed")
)

// knownCauses are the underlying errors kept in an error's chain, so callers
// can still test for them; other causes are only rendered (scrubbed) into the
// message, never kept, since their text may hold credentials.
var knownCauses = []error{
	context.DeadlineExceeded,
	context.Canceled,
	transport.ErrAuthenticationRequired,
	transport.ErrAuthorizationFailed,
	transport.ErrInvalidAuthMethod,
	transport.ErrRepositoryNotFound,
	transport.ErrEmptyRemoteRepository,
	plumbing.ErrReferenceNotFound,
	plumbing.ErrObjectNotFound,
}

// sourceError is a classified, credential-free error.
type sourceError struct {
	kind  error // one of the Err* above, or nil
	cause error // one of knownCauses, or nil
	msg   string
}

func (e *sourceError) Error() string { return e.msg }

func (e *sourceError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.kind, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// redactor removes credentials from text.
type redactor struct {
	secrets []string
}

func (r redactor) scrub(s string) string {
	for _, secret := range r.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}

// wrap returns err as a sourceError of the given kind (nil: classify it as
// a transport error) with message "op: <err>", scrubbed. A nil err stays
// nil; an error that already is a sourceError keeps its kind.
func (r redactor) wrap(kind error, op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sourceError
	if errors.As(err, &se) {
		return &sourceError{kind: se.kind, cause: se.cause, msg: r.scrub(op + ": " + se.msg)}
	}
	if kind == nil {
		kind = classify(err)
	}
	e := &sourceError{kind: kind, msg: r.scrub(op + ": " + err.Error())}
	for _, c := range knownCauses {
		if errors.Is(err, c) {
			e.cause = c
			break
		}
	}
	if errors.Is(err, context.DeadlineExceeded) && !strings.Contains(e.msg, "deadline") {
		e.msg += " (timed out)"
	}
	return e
}

// errorf is a sourceError of the given kind with a formatted, scrubbed
// message.
func (r redactor) errorf(kind error, format string, args ...any) error {
	return &sourceError{kind: kind, msg: r.scrub(fmt.Sprintf(format, args...))}
}

// classify maps an error of go-git's transport or of the network to one of
// ErrAuth, ErrRefNotFound or ErrUnreachable.
func classify(err error) error {
	var noMatch git.NoMatchingRefSpecError
	for _, kind := range []error{ErrUnreachable, ErrAuth, ErrRefNotFound, ErrTooLarge} {
		if errors.Is(err, kind) {
			return kind
		}
	}
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		errors.Is(err, transport.ErrRepositoryNotFound):
		return ErrAuth
	case errors.Is(err, transport.ErrEmptyRemoteRepository),
		errors.Is(err, plumbing.ErrReferenceNotFound),
		errors.As(err, &noMatch):
		return ErrRefNotFound
	}
	// SSH reports refused keys and unknown host keys only in text.
	msg := err.Error()
	for _, s := range []string{"unable to authenticate", "knownhosts:", "host key mismatch"} {
		if strings.Contains(msg, s) {
			return ErrAuth
		}
	}
	return ErrUnreachable
}

// redactURL returns a URL fit for messages and the secrets it holds: the
// password, and for http(s) a user name given without password (a token).
func redactURL(raw string) (shown string, secrets []string) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || u.Scheme == "" {
		return raw, nil
	}
	if pass, ok := u.User.Password(); ok {
		secrets = append(secrets, pass, url.QueryEscape(pass), url.PathEscape(pass))
		u.User = url.User(u.User.Username())
	} else if u.Scheme == "http" || u.Scheme == "https" {
		name := u.User.Username()
		secrets = append(secrets, name, url.QueryEscape(name), url.PathEscape(name))
		u.User = nil
	}
	return u.String(), dedupe(secrets)
}

func dedupe(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
