// Package gitserver runs a real smart-HTTP Git server on 127.0.0.1 for tests
// and the demo: `git http-backend` behind net/http/cgi, optionally behind basic
// auth, counting requests by kind so a test can assert that a poll made only an
// ls-remote. Repo drives a work repository like a user would: write files,
// commit, push, tag, revert.
//
// The git CLI must be on PATH. Every git process runs with an isolated
// environment (no global or system config, fixed identity and dates), so the
// user's configuration never leaks in and commit SHAs are reproducible.
package gitserver

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// User and Password, when User is set, require HTTP basic auth on every
	// request; a request without them or with wrong ones gets 401.
	User, Password string
}

// Counts is how many requests of each kind reached the server.
type Counts struct {
	// InfoRefs is the GET .../info/refs requests (the ref advertisement an
	// ls-remote or the first step of a fetch makes).
	InfoRefs int64
	// UploadPack is the POST .../git-upload-pack requests (a fetch).
	UploadPack int64
	// ReceivePack is the POST .../git-receive-pack requests (a push).
	ReceivePack int64
	// Unauthorized is the requests refused with 401.
	Unauthorized int64
	// Other is every other request.
	Other int64
}

// Server is a smart-HTTP Git server serving the bare repositories under
// Dir()/repos.
type Server struct {
	dir     string
	ownsDir bool
	opts    Options
	handler http.Handler

	mu   sync.Mutex
	addr string // host:port, fixed after the first Start so URLs stay valid
	srv  *http.Server

	infoRefs, uploadPack, receivePack, unauthorized, other atomic.Int64
}

// Start creates the server's directory layout under dir (a new temporary
// directory, removed by Close, when dir is empty) and starts serving on
// 127.0.0.1 on a free port.
func Start(dir string, opts Options) (*Server, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("gitserver: git CLI not found: %w", err)
	}
	s := &Server{dir: dir, opts: opts}
	if dir == "" {
		if s.dir, err = os.MkdirTemp("", "gitserver-"); err != nil {
			return nil, fmt.Errorf("gitserver: %w", err)
		}
		s.ownsDir = true
	}
	if s.dir, err = filepath.Abs(s.dir); err != nil {
		return nil, fmt.Errorf("gitserver: %w", err)
	}
	for _, d := range []string{s.reposDir(), s.workDir(), s.homeDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("gitserver: %w", err)
		}
	}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Dir:  s.reposDir(),
		Env: append(isolatedEnv(s.homeDir()),
			"GIT_PROJECT_ROOT="+s.reposDir(),
			"GIT_HTTP_EXPORT_ALL=1",
		),
		Stderr: os.Stderr,
	}
	s.handler = s.count(s.auth(backend))
	if err := s.Start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// New is Start for tests: it fails the test on error and closes the server
// when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start (re)starts serving, on the same address as before when the server
// served already, so URLs handed out stay valid. It is a no-op when the
// server is running.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// The port of a server just stopped can take a moment to be free again.
	for attempt := 0; ; attempt++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || attempt == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("gitserver: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Stop
	return nil
}

// Stop stops serving and drops open connections: the server is unreachable
// until Start. Repositories are kept.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// Close stops the server and removes its directory when Start created it.
func (s *Server) Close() {
	s.Stop()
	if s.ownsDir {
		_ = os.RemoveAll(s.dir)
	}
}

// URL is the server's base URL, "http://127.0.0.1:PORT". A repository named
// N is served at URL()+"/N.git" (see Repo.URL).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// Dir is the server's directory: bare repositories in Dir()/repos, work
// trees in Dir()/work.
func (s *Server) Dir() string { return s.dir }

// Counts returns how many requests of each kind reached the server since it
// was created or since the last ResetCounts.
func (s *Server) Counts() Counts {
	return Counts{
		InfoRefs:     s.infoRefs.Load(),
		UploadPack:   s.uploadPack.Load(),
		ReceivePack:  s.receivePack.Load(),
		Unauthorized: s.unauthorized.Load(),
		Other:        s.other.Load(),
	}
}

// ResetCounts sets every count back to zero.
func (s *Server) ResetCounts() {
	for _, c := range []*atomic.Int64{&s.infoRefs, &s.uploadPack, &s.receivePack, &s.unauthorized, &s.other} {
		c.Store(0)
	}
}

// CreateRepo creates an empty bare repository Dir()/repos/NAME.git, served
// at URL()+"/NAME.git", and a work repository for it whose default branch is
// main.
func (s *Server) CreateRepo(name string) (*Repo, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("gitserver: invalid repository name %q", name)
	}
	bare := filepath.Join(s.reposDir(), name+".git")
	work := filepath.Join(s.workDir(), name)
	if _, err := os.Stat(bare); err == nil {
		return nil, fmt.Errorf("gitserver: repository %q exists", name)
	}
	r := &Repo{server: s, name: name, bare: bare, work: work, home: s.homeDir(), branch: "main"}
	if _, err := r.git(s.reposDir(), "init", "--quiet", "--bare", "--initial-branch=main", bare); err != nil {
		return nil, err
	}
	if _, err := r.git(s.workDir(), "init", "--quiet", "--initial-branch=main", work); err != nil {
		return nil, err
	}
	if _, err := r.Git("remote", "add", "origin", bare); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Server) reposDir() string { return filepath.Join(s.dir, "repos") }
func (s *Server) workDir() string  { return filepath.Join(s.dir, "work") }
func (s *Server) homeDir() string  { return filepath.Join(s.dir, "home") }

// auth requires basic auth when Options.User is set.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opts.User == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.User)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password)) != 1 {
			s.unauthorized.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="gitserver"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// count counts the requests that pass authentication, by kind.
func (s *Server) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized {
			return // counted by auth
		}
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			s.infoRefs.Add(1)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.uploadPack.Add(1)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack"):
			s.receivePack.Add(1)
		default:
			s.other.Add(1)
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// isolatedEnv is the environment of every git process: PATH only from the
// caller, no global or system configuration, no prompts.
func isolatedEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
}

var errNoCommit = errors.New("gitserver: no commit yet")
