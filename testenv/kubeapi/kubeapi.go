// Package kubeapi runs a real Kubernetes API server for tests: etcd and
// kube-apiserver, built by tools/kube (its own Go module) into a cache
// directory outside the repository, started on 127.0.0.1 with free ports.
//
// Start gives a test its own server; Shared gives every test of the test
// binary one server, stopped by Main (use it as TestMain). Either waits for
// /readyz, writes a kubeconfig holding an admin token (the token file puts
// the user in group system:masters; authorization is RBAC, as in a cluster)
// and returns it with a client-go rest.Config.
//
// Without the binaries the test is skipped, or fails when
// GITXDS_REQUIRE_KUBE=1 (as .ci/run sets it after building them). Build
// them with `go -C tools tool task -d .. kube-binaries` (tools/kube/build.sh).
package kubeapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// EnvBin names the directory of the etcd and kube-apiserver binaries.
	EnvBin = "GITXDS_KUBE_BIN"
	// EnvRequire, when "1", makes a missing binary a test failure.
	EnvRequire = "GITXDS_REQUIRE_KUBE"
	// Version is the Kubernetes release tools/kube builds.
	Version = "v1.37.2"

	// ServiceCIDR is the cluster's --service-cluster-ip-range.
	ServiceCIDR = "10.96.0.0/24"
	// AdminUser is the user of the kubeconfig's token, in group system:masters.
	AdminUser = "admin"
)

// BinDir is where the binaries are: $GITXDS_KUBE_BIN, or
// ~/.cache/gitxds/kube-<Version>, as tools/kube/build.sh writes them.
func BinDir() string {
	if d := os.Getenv(EnvBin); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "gitxds", "kube-"+Version)
	}
	return filepath.Join(home, ".cache", "gitxds", "kube-"+Version)
}

// binaries returns the paths of etcd and kube-apiserver, or an error
// naming what is missing.
func binaries() (etcd, apiserver string, err error) {
	dir := BinDir()
	etcd, apiserver = filepath.Join(dir, "etcd"), filepath.Join(dir, "kube-apiserver")
	var missing []string
	for _, p := range []string{etcd, apiserver} {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("missing %s (build them with `go -C tools tool task -d .. kube-binaries`, or tools/kube/build.sh)", strings.Join(missing, " and "))
	}
	return etcd, apiserver, nil
}

// Require skips t when the binaries are missing, or fails it when
// GITXDS_REQUIRE_KUBE=1.
func Require(t testing.TB) {
	t.Helper()
	if _, _, err := binaries(); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("a Kubernetes API server is required (%s=1): %v", EnvRequire, err)
		}
		t.Skipf("no Kubernetes API server: %v; set %s=1 to make this a failure", err, EnvRequire)
	}
}

// Server is a running etcd and kube-apiserver.
type Server struct {
	// Kubeconfig is the path of a kubeconfig for the admin user (context
	// "gitxds-test"), for kubectl --kubeconfig and KUBECONFIG.
	Kubeconfig string
	// Config is the same for client-go.
	Config *rest.Config
	// URL is https://127.0.0.1:PORT.
	URL string
	// Ready is how long kube-apiserver took from its start to /readyz.
	Ready time.Duration
	// APIServerPID is the kube-apiserver process, for measurements.
	APIServerPID int

	dir            string
	etcd, apiserve *process
}

// Start runs a server for t alone and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	s, err := start(t.TempDir())
	if err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared struct {
	mu  sync.Mutex
	s   *Server
	err error
	dir string
}

// Shared runs one server for the whole test binary, started by the first
// test that asks. Main stops it; without Main the processes end with the
// test binary (they are started with a parent-death signal). Tests that
// share it must not depend on each other's objects: use a namespace each.
func Shared(t testing.TB) *Server {
	t.Helper()
	Require(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "gitxds-kubeapi-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		shared.s, shared.err = start(dir)
	}
	if shared.err != nil {
		t.Fatalf("kubeapi: %v", shared.err)
	}
	return shared.s
}

// Main runs the tests, then stops the server Shared started:
//
//	func TestMain(m *testing.M) { kubeapi.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.s != nil {
		shared.s.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Stop ends kube-apiserver, then etcd.
func (s *Server) Stop() {
	s.apiserve.stop()
	s.etcd.stop()
}

// RSS is kube-apiserver's resident set size, in bytes (Linux).
func (s *Server) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.APIServerPID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func start(dir string) (*Server, error) {
	etcdBin, apiBin, err := binaries()
	if err != nil {
		return nil, err
	}
	// A free port can be taken between the probe and the bind: retry.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		run := filepath.Join(dir, fmt.Sprintf("run%d", attempt))
		if err := os.MkdirAll(run, 0o700); err != nil {
			return nil, err
		}
		s, err := startOnce(run, etcdBin, apiBin)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOnce(dir, etcdBin, apiBin string) (*Server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := startProcess(filepath.Join(dir, "etcd.log"), etcdBin,
		"--name", "default",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdClient, "--advertise-client-urls", etcdClient,
		"--listen-peer-urls", etcdPeer, "--initial-advertise-peer-urls", etcdPeer,
		"--initial-cluster", "default="+etcdPeer,
		// A test cluster: durability does not matter, speed does.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	)
	if err != nil {
		return nil, err
	}

	files, err := writeFiles(dir)
	if err != nil {
		etcd.stop()
		return nil, err
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	began := time.Now()
	api, err := startProcess(filepath.Join(dir, "kube-apiserver.log"), apiBin,
		"--etcd-servers", etcdClient,
		"--secure-port", strconv.Itoa(ports[2]),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		// No kubernetes Service endpoints to keep: nothing runs pods here.
		"--endpoint-reconciler-type", "none",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", files.saKey,
		"--service-account-signing-key-file", files.saKey,
		"--service-cluster-ip-range", ServiceCIDR,
		"--token-auth-file", files.tokens,
		"--authorization-mode", "RBAC",
		"--tls-cert-file", files.cert,
		"--tls-private-key-file", files.key,
		"--cert-dir", filepath.Join(dir, "certs"),
	)
	if err != nil {
		etcd.stop()
		return nil, err
	}
	s := &Server{URL: url, dir: dir, etcd: etcd, apiserve: api, APIServerPID: api.cmd.Process.Pid}
	s.Config = &rest.Config{
		Host:            url,
		BearerToken:     files.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: files.caPEM},
	}
	if err := s.waitReady(2 * time.Minute); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\netcd:\n%s\nkube-apiserver:\n%s", err, etcd.tail(), api.tail())
	}
	s.Ready = time.Since(began)
	s.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(s.Kubeconfig, url, files); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls GET /readyz until it answers 200, a process exits, or
// the timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	rt, err := rest.TransportFor(s.Config)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		for _, p := range []*process{s.etcd, s.apiserve} {
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited before the API server was ready: %v", filepath.Base(p.cmd.Path), p.err)
			default:
			}
		}
		resp, err := client.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after %s (last: %s)", timeout, last)
}

type files struct {
	saKey, tokens, cert, key string
	token                    string
	caPEM                    []byte
}

// writeFiles writes the service-account key, the token file and a serving
// certificate for 127.0.0.1 (self-signed: it is its own CA).
func writeFiles(dir string) (*files, error) {
	f := &files{
		saKey:  filepath.Join(dir, "sa.key"),
		tokens: filepath.Join(dir, "tokens.csv"),
		cert:   filepath.Join(dir, "serving.crt"),
		key:    filepath.Join(dir, "serving.key"),
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := writePEM(f.saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sa)); err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	f.token = hex.EncodeToString(tok)
	// token,user,uid,"group,..." (kube-apiserver --token-auth-file).
	if err := os.WriteFile(f.tokens, []byte(fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", f.token, AdminUser, AdminUser)), 0o600); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-apiserver (gitxds tests)"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	f.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(f.cert, f.caPEM, 0o600); err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return f, writePEM(f.key, "EC PRIVATE KEY", kder)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func writeKubeconfig(path, url string, f *files) error {
	const name = "gitxds-test"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: f.caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: f.token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.WriteToFile(*cfg, path)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// process is a started binary whose output goes to a log file.
type process struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
	once   sync.Once
}

func startProcess(log, bin string, args ...string) (*process, error) {
	out, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// The processes end with the test binary even when nothing stops them
	// (a test binary killed by its timeout, Shared without Main).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	p := &process{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after 10 s.
func (p *process) stop() {
	p.once.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// tail is the end of the process's log, for errors.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Namespace creates a namespace named after t (for tests sharing a server)
// and returns its name.
func (s *Server) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	cs, err := s.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := createNamespace(context.Background(), cs, prefix)
	if err != nil {
		t.Fatalf("kubeapi: create namespace: %v", err)
	}
	return ns
}

// Clientset is a client-go clientset for the admin user.
func (s *Server) Clientset() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(s.Config)
}

func createNamespace(ctx context.Context, cs kubernetes.Interface, prefix string) (string, error) {
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return ns.Name, nil
}
