package source

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"gitxds.dev/gitxds/testenv/gitserver"
)

// packFault is what packProxy does to the pack of a fetch (the response to
// POST .../git-upload-pack).
type packFault int

const (
	passPack  packFault = iota
	cutPack             // the connection drops after cutAfter bytes
	stallPack           // the server goes silent after cutAfter bytes
)

// packProxy is an HTTP proxy in front of the Git server that can break the
// pack a fetch receives, and counts the pack bytes it forwarded.
type packProxy struct {
	*httptest.Server
	cutAfter  int64
	mu        sync.Mutex
	fault     packFault
	forwarded atomic.Int64
	packs     atomic.Int64 // fetches that got a pack
}

func newPackProxy(t *testing.T, target string, cutAfter int64) *packProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &packProxy{cutAfter: cutAfter}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.ErrorLog = nil
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/git-upload-pack") {
			return nil
		}
		p.packs.Add(1)
		p.mu.Lock()
		fault := p.fault
		p.mu.Unlock()
		resp.Body = &faultyBody{rc: resp.Body, p: p, fault: fault, ctx: resp.Request.Context()}
		return nil
	}
	p.Server = httptest.NewServer(rp)
	t.Cleanup(p.Close)
	return p
}

func (p *packProxy) set(f packFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
}

// url is repo's URL through the proxy.
func (p *packProxy) url(repo *gitserver.Repo) string {
	u, _ := url.Parse(repo.URL())
	u.Host = strings.TrimPrefix(p.URL, "http://")
	return u.String()
}

type faultyBody struct {
	rc    io.ReadCloser
	p     *packProxy
	fault packFault
	ctx   context.Context
	n     int64
}

func (b *faultyBody) Read(buf []byte) (int, error) {
	if b.fault != passPack && b.n >= b.p.cutAfter {
		if b.fault == stallPack {
			<-b.ctx.Done() // until the client gives up
		}
		return 0, errors.New("pack cut by the test proxy")
	}
	if b.fault != passPack && int64(len(buf)) > b.p.cutAfter-b.n {
		buf = buf[:b.p.cutAfter-b.n]
	}
	n, err := b.rc.Read(buf)
	b.n += int64(n)
	b.p.forwarded.Add(int64(n))
	return n, err
}

func (b *faultyBody) Close() error { return b.rc.Close() }

// randomFiles are n files of size random (incompressible) bytes under dir.
func randomFiles(t *testing.T, dir string, n, size int) map[string]string {
	t.Helper()
	files := map[string]string{}
	for i := range n {
		buf := make([]byte, size)
		if _, err := rand.Read(buf); err != nil {
			t.Fatal(err)
		}
		files[fmt.Sprintf("%s/b%03d.bin", dir, i)] = string(buf)
	}
	return files
}

// A fetch cut in the middle of the pack, or timed out, leaves nothing of the
// commit behind: the poll fails (the source is unreachable, the revision is
// not refused), and the next poll fetches the commit again, whole.
func TestPartialFetchIsDiscarded(t *testing.T) {
	t.Parallel()
	for _, fault := range []packFault{cutPack, stallPack} {
		t.Run(map[packFault]string{cutPack: "cut", stallPack: "stall"}[fault], func(t *testing.T) {
			t.Parallel()
			srv, repo, first := newRepo(t, gitserver.Options{})
			proxy := newPackProxy(t, srv.URL(), 256<<10)
			src := mustSource(t, Options{URL: proxy.url(repo), Ref: "main", Timeout: 2 * time.Second})
			ctx := context.Background()
			if rev, _, err := src.Poll(ctx); err != nil || rev.Hash.String() != first {
				t.Fatalf("first poll: %s, %v", rev, err)
			}

			files := randomFiles(t, "blobs", 8, 200<<10) // 1.6 MB, cut after 256 KiB
			must(t, repo.WriteFiles(files))
			second, err := repo.Commit("blobs")
			if err != nil {
				t.Fatal(err)
			}
			proxy.set(fault)
			rev, _, err := src.Poll(ctx)
			if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrTooLarge) || !rev.IsZero() {
				t.Fatalf("poll through a broken pack: %s, %v; want no revision and ErrUnreachable", rev, err)
			}
			if fault == stallPack && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("stalled pack: %v, want a timeout", err)
			}
			if src.remote.hasCommit(plumbing.NewHash(second)) {
				t.Fatalf("the commit of the broken fetch is held")
			}

			proxy.set(passPack)
			rev, _, err = src.Poll(ctx)
			if err != nil || rev.Hash.String() != second {
				t.Fatalf("poll after the fault: %s, %v; want %s", rev, err, second)
			}
			fsys := mustFS(t, src, rev)
			for name, content := range files {
				wantFile(t, fsys, "/"+name, content)
			}
		})
	}
}

// A commit over the repository limit is refused while it streams in, long
// before the whole pack arrived, with the limit named; it is not fetched
// again by later polls.
func TestTooLargeRefusedWhileFetching(t *testing.T) {
	t.Parallel()
	srv, repo, _ := newRepo(t, gitserver.Options{})
	const limit = 1 << 20
	files := randomFiles(t, "blobs", 12, 1000<<10) // 12 MB of files, each under the 1 MiB file limit
	must(t, repo.WriteFiles(files))
	big, err := repo.Commit("blobs")
	if err != nil {
		t.Fatal(err)
	}
	proxy := newPackProxy(t, srv.URL(), 0)
	src := mustSource(t, Options{URL: proxy.url(repo), Ref: "main", MaxRepoSize: limit})
	rev, _, err := src.Poll(context.Background())
	want := fmt.Sprintf("the repository goes over its limit of %d bytes (refused while fetching", limit)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), want) || rev.Hash.String() != big {
		t.Fatalf("poll = %s, %v; want %s and ErrTooLarge containing %q", rev, err, big, want)
	}
	// The transfer stopped early: what crossed the proxy is a fraction of
	// the pack (socket buffers let a few MB through after the refusal).
	if n := proxy.forwarded.Load(); n > 8<<20 {
		t.Errorf("%d bytes of the pack forwarded, want the fetch stopped near the %d byte limit", n, limit)
	}
	t.Logf("refused after %d bytes of the pack crossed the proxy", proxy.forwarded.Load())
	if _, _, again := src.Poll(context.Background()); !errors.Is(again, ErrTooLarge) {
		t.Errorf("second poll: %v, want ErrTooLarge", again)
	}
	if n := proxy.packs.Load(); n != 1 {
		t.Errorf("the refused commit was fetched again")
	}
}

// A small pack holding a file that inflates far past the per-file limit (32
// MiB of zeros, 32 KiB compressed) is refused from the object's header,
// before the file is inflated.
func TestInflationBombRefusedWhileFetching(t *testing.T) {
	t.Parallel()
	srv, repo, _ := newRepo(t, gitserver.Options{})
	must(t, repo.WriteFiles(map[string]string{"teams/a/zeros.yaml": strings.Repeat("\x00", 32<<20)}))
	if _, err := repo.Commit("zeros"); err != nil {
		t.Fatal(err)
	}
	src := mustSource(t, Options{URL: srv.URL() + "/config.git", Ref: "main"})
	_, _, err := src.Poll(context.Background())
	want := fmt.Sprintf("a file of %d bytes is over the per-file limit of %d bytes (refused while fetching)", 32<<20, DefaultMaxFileSize)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), want) {
		t.Fatalf("poll: %v, want ErrTooLarge containing %q", err, want)
	}
	t.Log(err)
}
