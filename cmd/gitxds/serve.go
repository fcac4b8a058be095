package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/reconciler"
	"gitxds.dev/gitxds/reconciler/credentials"
	"gitxds.dev/gitxds/reconciler/daemon"
	"gitxds.dev/gitxds/reconciler/kubeevents"
	"gitxds.dev/gitxds/reconciler/kubestate"
	"gitxds.dev/gitxds/reconciler/leader"
	"gitxds.dev/gitxds/reconciler/model"
	"gitxds.dev/gitxds/reconciler/notify"
	"gitxds.dev/gitxds/reconciler/rollout"
	"gitxds.dev/gitxds/reconciler/source"
	"gitxds.dev/gitxds/reconciler/xds"
)

type serveFlags struct {
	repo, ref, path          string
	interval                 time.Duration
	scopeDrain               time.Duration
	xdsAddr, adminAddr       string
	stateDir                 string
	logFormat                string
	adminTokenFile           string
	maxFileSize, maxRepoSize int64
	maxObjectsPerTeam        int
	systemCAFile             string
	buildTimeout             time.Duration
	buildMemoryBudget        int64

	webhookSecretFile string
	notifyConfig      string
	git               credentials.GitOptions
	verifyKeyring     string
	xdsTLS            credentials.TLSFiles
	nodeIDPattern     string
	nodeLabelsFile    string

	leaderElect     bool
	leaderNamespace string
	leaderLease     string
	leaderIdentity  string
	// leaseDuration, renewDeadline, retryPeriod of the election (zero:
	// leader's defaults).
	leaseDuration, renewDeadline, retryPeriod time.Duration
	advertiseAdmin                            string
	// kubeEvents: --kube-events; kubeEventsSet: given at all (under
	// --leader-elect it is on unless set to false).
	kubeEvents, kubeEventsSet bool
	kubeconfig                string
	installCRDs               bool
	discoverServices          bool
	clusterDomain             string

	// environ is the process environment (tests replace it); unknownEnv
	// are its GITXDS_ variables that match no flag.
	environ, unknownEnv []string
}

func newServe() *cobra.Command {
	f := serveFlags{environ: os.Environ()}
	c := &cobra.Command{
		Use:   "serve --repo URL|PATH --ref BRANCH --path OVERLAY --interval D --xds-address HOST:PORT --admin-address HOST:PORT --state-dir DIR",
		Short: "Run the control plane: poll Git, serve xDS, roll changes out",
		Long: `serve polls --ref of --repo every --interval (ls-remote first, a shallow fetch only when
the branch moved), builds the --path overlay, and rolls what changed out to the xDS nodes
connected on --xds-address, as the platform's RolloutPolicy says. The last good snapshot
and the rollout state live in --state-dir: after a restart nodes get the last good config at
once, even with Git unreachable. Status, metrics and controls are on --admin-address.

With --webhook-secret-file, POST /hooks/github, /hooks/gitlab and /hooks/generic on the
admin address reconcile a push at once (docs/operations.md).
` + envUsage(),
		Args: cobra.NoArgs,
		// Runs before the required flags are checked, so they may come from
		// the environment too.
		PreRunE: func(c *cobra.Command, _ []string) error {
			unknown, err := applyEnv(c.Flags(), f.environ)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			f.unknownEnv = unknown
			f.kubeEventsSet = c.Flags().Changed("kube-events")
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return serve(c.Context(), f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.repo, "repo", "", "repository: a local path, or a file://, http(s):// or ssh:// URL")
	fl.StringVar(&f.ref, "ref", "main", "branch to follow")
	fl.StringVar(&f.path, "path", "", "overlay directory inside the repository, e.g. overlays/production")
	fl.DurationVar(&f.interval, "interval", time.Minute, "how often to poll the repository")
	fl.DurationVar(&f.scopeDrain, "scope-drain", xds.DefaultScopeDrain, "how long Envoy nodes keep a removed hostname's scope and routes, for connections still draining (Envoy's --drain-time-s); negative: none")
	fl.StringVar(&f.xdsAddr, "xds-address", "127.0.0.1:18000", "address of the xDS (ADS) gRPC server")
	fl.StringVar(&f.adminAddr, "admin-address", "127.0.0.1:9400", "address of the admin HTTP API")
	fl.StringVar(&f.stateDir, "state-dir", "", stateDirUsage)
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file with a bearer token required by mutating admin endpoints")
	fl.Int64Var(&f.maxFileSize, "max-file-size", 0, "largest file read from the repository in bytes (default 1 MiB)")
	fl.Int64Var(&f.maxRepoSize, "max-repo-size", 0, "largest repository tree in bytes (default 64 MiB)")
	fl.StringVar(&f.systemCAFile, "system-ca-file", "", "CA bundle on the proxy hosts that BackendTLSPolicy wellKnownCACertificates: System trusts (default "+model.DefaultSystemCAFile+")")
	fl.IntVar(&f.maxObjectsPerTeam, "max-objects-per-team", 0, "most objects one team directory may list; a team over it keeps its last accepted objects (default 500)")
	fl.DurationVar(&f.buildTimeout, "build-timeout", reconciler.DefaultBuildTimeout, "deadline of one build (render, model, translate); a revision over it fails and is not built again until a new commit")
	fl.Int64Var(&f.buildMemoryBudget, "build-memory-budget", 0, "bytes the live heap may grow by during a build; over it the revision fails and the process restarts once (default: half of GOMEMLIMIT when set, else none; -1: none)")

	fl.StringVar(&f.notifyConfig, "notify-config", "", "YAML file of notification providers (github, gitlab commit statuses; generic, slack); secrets by file path")
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file with the webhook secret; enables POST /hooks/{github,gitlab,generic} on the admin address")
	fl.StringVar(&f.git.SSHKeyFile, "ssh-key-file", "", "private key for ssh:// and scp-like repository URLs")
	fl.StringVar(&f.git.SSHKeyPassphraseFile, "ssh-key-passphrase-file", "", "file with the passphrase of --ssh-key-file")
	fl.StringVar(&f.git.SSHKnownHostsFile, "ssh-known-hosts-file", "", "known_hosts file the Git server's host key is verified against (required for SSH)")
	fl.BoolVar(&f.git.InsecureSkipHostKeyCheck, "insecure-skip-host-key-check", false, "accept any SSH host key (dangerous; logged at WARN)")
	fl.StringVar(&f.git.HTTPSUsername, "https-username", "", "username for HTTPS basic auth (default \"git\" with a token)")
	fl.StringVar(&f.git.HTTPSPasswordFile, "https-password-file", "", "file with the HTTPS basic-auth password (needs --https-username)")
	fl.StringVar(&f.git.HTTPSTokenFile, "https-token-file", "", "file with an HTTPS access token (or set GITXDS_HTTPS_TOKEN)")
	fl.StringVar(&f.verifyKeyring, "verify-signatures-keyring", "", "armored OpenPGP public keys; a head commit not signed by one of them is not applied")
	fl.StringVar(&f.xdsTLS.CertFile, "xds-tls-cert-file", "", "TLS certificate of the xDS server (reloaded when it changes)")
	fl.StringVar(&f.xdsTLS.KeyFile, "xds-tls-key-file", "", "TLS private key of the xDS server")
	fl.StringVar(&f.xdsTLS.ClientCAFile, "xds-client-ca-file", "", "CA bundle for mutual TLS: proxies must present a certificate it signed")
	fl.StringVar(&f.nodeIDPattern, "xds-node-id-pattern", "", "with --xds-client-ca-file: the client certificate SAN (URI or DNS) a node id must match; {id} is the node id, {LABEL} pins a node label (default \"{id}\"; e.g. spiffe://example.org/rollout-group/{rollout-group}/node/{id})")
	fl.StringVar(&f.nodeLabelsFile, "xds-node-labels-file", "", "YAML map of node id to labels (e.g. edge-1: {rollout-group: canary}); when set, nodes' own labels are ignored")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "run several replicas: elect a leader with a Kubernetes Lease (in a pod, or --kubeconfig); the fleet-wide rollout lives in the FleetRollout and ReplicaReport objects (deploy/crds) of the Lease's namespace")
	fl.StringVar(&f.leaderNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the pod's namespace)")
	fl.StringVar(&f.leaderLease, "leader-election-lease-name", "gitxds", "name of the Lease")
	fl.StringVar(&f.leaderIdentity, "leader-election-identity", "", "this replica's name in the Lease (default: the hostname, i.e. the pod name)")
	fl.DurationVar(&f.leaseDuration, "leader-election-lease-duration", leader.DefaultLeaseDuration, "how long a Lease not renewed stays its holder's: how long a dead leader keeps the others waiting")
	fl.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", leader.DefaultRenewDeadline, "how long the leader retries renewing before it gives the leadership up (less than the lease duration)")
	fl.DurationVar(&f.retryPeriod, "leader-election-retry-period", leader.DefaultRetryPeriod, "how often the Lease is renewed, or tried by the other replicas")
	fl.StringVar(&f.advertiseAdmin, "advertise-admin-address", "", "host:port at which the other replicas reach this admin API (default: the --admin-address listener)")
	fl.BoolVar(&f.kubeEvents, "kube-events", false, "record Kubernetes Events (events.k8s.io) for each revision, rollout stage, rollback and refusal, regarding the Lease of --leader-election-namespace/--leader-election-lease-name; on by default with --leader-elect; in-cluster or --kubeconfig")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file for Kubernetes access outside a pod: leader election and the rollout objects, Service discovery and --kube-events (default: $KUBECONFIG, else the pod's service account)")
	fl.BoolVar(&f.installCRDs, "install-crds", false, "at start, apply the CustomResourceDefinitions of deploy/crds (embedded; server-side apply) and wait until they are served; needs permission to create and patch customresourcedefinitions")
	fl.BoolVar(&f.discoverServices, "discover-services", true, "with Kubernetes access, take the endpoints of Service backendRefs from their EndpointSlices and push their changes at once, without a commit; false, or without access: resolve Services by DNS")
	fl.StringVar(&f.clusterDomain, "cluster-domain", model.DefaultClusterDomain, "DNS domain of Kubernetes Services: <name>.<namespace>.svc.<domain>, when they resolve by DNS, and for the backend address policy")
	_ = c.MarkFlagRequired("repo")
	_ = c.MarkFlagRequired("path")
	return c
}

func newLogger(format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, nil)), nil
	}
	return nil, &exitError{code: exitUsage, err: fmt.Errorf("--log-format %q: want text or json", format)}
}

func serve(ctx context.Context, f serveFlags) error {
	log, err := newLogger(f.logFormat)
	if err != nil {
		return err
	}
	for _, name := range f.unknownEnv {
		log.Warn("environment variable matches no flag of serve; ignored", "name", name)
	}
	cfg, err := daemonConfig(f, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if f.installCRDs {
		if err := installCRDs(ctx, f, log); err != nil {
			return err
		}
	}
	if b, ok := cfg.Board.(*kubestate.Board); ok {
		if err := startBoard(ctx, b); err != nil {
			return ioErr(err)
		}
	}
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return ioErr(err)
	}
	err = d.Wait(ctx)
	log.Info("stopped")
	if err != nil {
		return ioErr(err)
	}
	return nil
}

// daemonConfig reads the secret files and builds the daemon's
// configuration. Errors name files, never their content.
func daemonConfig(f serveFlags, log *slog.Logger) (daemon.Config, error) {
	if f.stateDir == "" {
		d, err := defaultStateDir(func(name string) string { return lookupEnvIn(f.environ, name) }, os.UserCacheDir)
		if err != nil {
			return daemon.Config{}, &exitError{code: exitUsage, err: err}
		}
		f.stateDir = d
	}
	cfg := daemon.Config{
		Repo: f.repo, Ref: f.ref, Path: f.path, Interval: f.interval, ScopeDrain: f.scopeDrain,
		XDSAddress: f.xdsAddr, AdminAddress: f.adminAddr, StateDir: f.stateDir,
		Limits: source.Limits{MaxFileSize: f.maxFileSize, MaxRepoSize: f.maxRepoSize}, Log: log,
		RenderLimits: renderLimits(f.maxFileSize, f.maxObjectsPerTeam),
		SystemCAFile: f.systemCAFile,
		Build:        reconciler.BuildLimits{Timeout: f.buildTimeout, MemoryBudget: f.buildMemoryBudget},
	}
	if f.adminTokenFile != "" {
		tok, err := credentials.ReadSecretFile(f.adminTokenFile)
		if err != nil {
			return cfg, ioErr(err)
		}
		cfg.AdminToken = tok
	}
	if f.notifyConfig != "" {
		var err error
		if cfg.Notify, err = notify.Load(f.notifyConfig, nil); err != nil {
			return cfg, &exitError{code: exitUsage, err: fmt.Errorf("--notify-config: %w", err)}
		}
	}
	if f.webhookSecretFile != "" {
		s, err := credentials.ReadSecretFile(f.webhookSecretFile)
		if err != nil {
			return cfg, ioErr(err)
		}
		cfg.WebhookSecret = []byte(s)
	}
	git := f.git
	git.HTTPSToken = lookupEnvIn(f.environ, "GITXDS_HTTPS_TOKEN")
	auth, err := credentials.GitAuth(f.repo, git, log)
	if err != nil {
		return cfg, &exitError{code: exitUsage, err: err}
	}
	cfg.Auth = auth
	if f.verifyKeyring != "" {
		v, err := credentials.PGPVerifier(f.verifyKeyring)
		if err != nil {
			return cfg, ioErr(err)
		}
		cfg.VerifyCommit = v
	}
	tlsCfg, err := credentials.ServerTLS(f.xdsTLS, log)
	if err != nil {
		return cfg, ioErr(err)
	}
	if tlsCfg == nil {
		log.Info("the xDS server runs without TLS; set --xds-tls-cert-file and --xds-tls-key-file (and --xds-client-ca-file for mutual TLS) outside a trusted network")
	}
	cfg.XDSTLS = tlsCfg
	if f.nodeIDPattern != "" || f.nodeLabelsFile != "" {
		ni := &xds.NodeIdentity{Pattern: f.nodeIDPattern}
		if f.nodeLabelsFile != "" {
			b, err := os.ReadFile(f.nodeLabelsFile)
			if err != nil {
				return cfg, ioErr(err)
			}
			if err := yaml.UnmarshalStrict(b, &ni.Labels); err != nil {
				return cfg, &exitError{code: exitUsage, err: fmt.Errorf("--xds-node-labels-file %s: %w", f.nodeLabelsFile, err)}
			}
			if ni.Labels == nil {
				ni.Labels = map[string]map[string]string{}
			}
		}
		if err := ni.Validate(); err != nil {
			return cfg, &exitError{code: exitUsage, err: err}
		}
		cfg.NodeIdentity = ni
	}
	if f.leaderElect {
		lo, board, err := leaderOptions(f)
		if err != nil {
			return cfg, &exitError{code: exitUsage, err: err}
		}
		cfg.Leader, cfg.Board = lo, board
	}
	kube, err := serviceClient(f, log)
	if err != nil {
		return cfg, &exitError{code: exitUsage, err: err}
	}
	cfg.Kube, cfg.ClusterDomain = kube, f.clusterDomain
	switch {
	case f.kubeEventsSet && !f.kubeEvents:
		cfg.NoKubeEvents = true
	case f.kubeEvents && !f.leaderElect:
		ko, err := kubeEventsOptions(f)
		if err != nil {
			return cfg, &exitError{code: exitUsage, err: err}
		}
		cfg.KubeEvents = ko
	}
	return cfg, nil
}

// kubeConfig is the one Kubernetes client configuration of serve, for
// Service discovery and --kube-events: --kubeconfig, else $KUBECONFIG,
// else the pod's service account. ns is the kubeconfig context's
// namespace, or the pod's. ok is false when none of them is there (not in
// a pod, no kubeconfig): err is then why.
func kubeConfig(f serveFlags) (rc *rest.Config, ns string, ok bool, err error) {
	path := f.kubeconfig
	if path == "" {
		path = lookupEnvIn(f.environ, "KUBECONFIG")
	}
	if path != "" {
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(path)}, &clientcmd.ConfigOverrides{})
		if rc, err = cc.ClientConfig(); err != nil {
			return nil, "", true, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		if ns, _, err = cc.Namespace(); err != nil {
			return nil, "", true, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return rc, ns, true, nil
	}
	if rc, err = rest.InClusterConfig(); err != nil {
		return nil, "", false, err
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		ns = strings.TrimSpace(string(b))
	}
	return rc, ns, true, nil
}

// kubeEventsOptions connects to the cluster for --kube-events without
// --leader-elect (kubeConfig). The Events regard the Lease gitxds would
// elect with.
func kubeEventsOptions(f serveFlags) (*kubeevents.Options, error) {
	rc, ns, ok, err := kubeConfig(f)
	if !ok {
		return nil, fmt.Errorf("--kube-events needs to run in a Kubernetes pod, or --kubeconfig: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("--kube-events: %w", err)
	}
	if f.leaderNamespace != "" {
		ns = f.leaderNamespace
	}
	if ns == "" {
		return nil, fmt.Errorf("--leader-election-namespace: not set, and no namespace in the kubeconfig or the pod")
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	id := f.leaderIdentity
	if id == "" {
		if id, err = os.Hostname(); err != nil {
			return nil, err
		}
	}
	return &kubeevents.Options{Client: client, Instance: id, Regarding: kubeevents.LeaseReference(ns, f.leaderLease)}, nil
}

// serviceClient is the client of Service discovery: with
// --discover-services (the default) and Kubernetes access (kubeConfig),
// Service backendRefs get their endpoints from EndpointSlices; without,
// nil (Services resolve by DNS).
func serviceClient(f serveFlags, log *slog.Logger) (kubernetes.Interface, error) {
	if !f.discoverServices {
		return nil, nil
	}
	rc, _, ok, err := kubeConfig(f)
	if !ok {
		log.Info("no Kubernetes access (no --kubeconfig, $KUBECONFIG or pod service account): Service backendRefs resolve by DNS", "clusterDomain", f.clusterDomain)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("service discovery: %w", err)
	}
	// Two lists per Service when discovery starts; client-go's default
	// (5 a second) would take 40 s for 100 Services. Watches are not
	// throttled.
	rc.QPS, rc.Burst = 50, 100
	return kubernetes.NewForConfig(rc)
}

const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// leaderOptions connects to the cluster (kubeConfig: --kubeconfig,
// $KUBECONFIG, else the pod's service account) for leader election and
// the fleet-wide rollout's objects, which live in the Lease's namespace:
// --leader-election-namespace, else the kubeconfig context's or the pod's.
func leaderOptions(f serveFlags) (*leader.Options, rollout.Board, error) {
	rc, ns, ok, err := kubeConfig(f)
	if !ok {
		return nil, nil, fmt.Errorf("--leader-elect needs to run in a Kubernetes pod, or --kubeconfig: %w", err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--leader-elect: %w", err)
	}
	if f.leaderNamespace != "" {
		ns = f.leaderNamespace
	}
	if ns == "" {
		return nil, nil, fmt.Errorf("--leader-election-namespace: not set, and no namespace in the kubeconfig or the pod")
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	id := f.leaderIdentity
	if id == "" {
		if id, err = os.Hostname(); err != nil {
			return nil, nil, err
		}
	}
	var podNS string
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		podNS = strings.TrimSpace(string(b))
	}
	board, err := kubestate.New(kubestate.Options{Client: dyn, Namespace: ns, Name: f.leaderLease, Replica: id,
		Owner: podOwner(f.environ, id, ns, podNS)})
	if err != nil {
		return nil, nil, fmt.Errorf("--leader-election-identity, --leader-election-lease-name: %w", err)
	}
	if f.advertiseAdmin != "" {
		id = leader.Identity(id, f.advertiseAdmin)
	}
	if f.leaseDuration > 0 && f.renewDeadline > 0 && f.renewDeadline >= f.leaseDuration {
		return nil, nil, fmt.Errorf("--leader-election-renew-deadline %s must be less than --leader-election-lease-duration %s", f.renewDeadline, f.leaseDuration)
	}
	return &leader.Options{Client: client, Namespace: ns, Name: f.leaderLease, Identity: id, MinEpoch: board.StoredEpoch,
		LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod}, board, nil
}

// podOwner is the Pod this replica runs in, from the downward API
// variables POD_NAME and POD_UID (deploy/ha sets them), when its name is
// the replica's and it runs in ns, the report's namespace (podNS): its
// ReplicaReport is then deleted with the pod. (An owner must be in the
// dependent's namespace: Kubernetes' garbage collector deletes a
// dependent whose owner it cannot find there.)
func podOwner(environ []string, replica, ns, podNS string) *metav1.OwnerReference {
	name, uid := lookupEnvIn(environ, "POD_NAME"), lookupEnvIn(environ, "POD_UID")
	if name == "" || uid == "" || name != replica || podNS == "" || podNS != ns {
		return nil
	}
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: name, UID: types.UID(uid)}
}

// startBoard checks that the rollout's objects can be read (their CRDs
// installed, RBAC), then runs the Board's informers for the life of serve
// and waits until they have listed them.
func startBoard(ctx context.Context, b *kubestate.Board) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Check(cctx); err != nil {
		return err
	}
	b.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	return b.WaitSynced(wctx)
}

// installCRDs is --install-crds.
func installCRDs(ctx context.Context, f serveFlags, log *slog.Logger) error {
	rc, _, ok, err := kubeConfig(f)
	if !ok {
		return &exitError{code: exitUsage, err: fmt.Errorf("--install-crds needs to run in a Kubernetes pod, or --kubeconfig: %w", err)}
	}
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--install-crds: %w", err)}
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return ioErr(err)
	}
	if err := kubestate.InstallCRDs(ctx, dyn, time.Minute); err != nil {
		return ioErr(fmt.Errorf("--install-crds: %w", err))
	}
	log.Info("CustomResourceDefinitions installed", "group", kubestate.Group, "version", kubestate.Version)
	return nil
}

func lookupEnvIn(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
