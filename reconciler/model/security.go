package model

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/model/apis/v1alpha1"
)

// htpasswdFile is the file of a basicAuth users directory: the key of a
// Kubernetes Secret that Envoy Gateway's basicAuth reads.
const htpasswdFile = ".htpasswd"

// apiKeysFile is the file of an apiKeyAuth credentials directory: one
// "client-id:key" a line.
const apiKeysFile = "api-keys"

// defaultExtAuthTimeout is Envoy Gateway's default for extAuth.timeout.
const defaultExtAuthTimeout = 10 * time.Second

// secPolicy is a validated SecurityPolicy.
type secPolicy struct {
	obj *object
	ir  *ir.Security
}

// secPolicies validates the SecurityPolicies and gives their routes
// their policy: a policy on a rule (targetRef sectionName) beats one on
// the route, which beats one on a Gateway the route is attached to (the
// first Gateway by name whose policy applies). Policies do not merge: the
// most specific one is the route's whole security. A policy's targets
// have no namespace field, so a team's policy reaches only its own routes;
// only platform/ may target a Gateway.
//
// Sets on policies: Accepted (Accepted, Invalid, TargetNotFound,
// Conflicted).
func (b *builder) secPolicies() {
	var pols []*secPolicy
	for _, o := range b.live() {
		t, ok := o.typed.(*v1alpha1.SecurityPolicy)
		if !ok {
			continue
		}
		s, msg := b.newSecurity(o, t)
		if msg != "" {
			o.reject(string(gwv1.PolicyReasonInvalid), "%s", msg)
			continue
		}
		pols = append(pols, &secPolicy{obj: o, ir: s})
	}
	sort.Slice(pols, func(i, j int) bool { return pols[i].obj.src.Name < pols[j].obj.src.Name })
	routes := map[string]*route{}
	for _, r := range b.rts {
		routes[r.obj.src.Kind+" "+r.key()] = r
	}
	gws := map[string]bool{}
	for _, g := range b.gws {
		gws[g.gw.Namespace+"/"+g.gw.Name] = true
	}
	byTarget := map[string]*secPolicy{}
	for _, p := range pols {
		t := p.obj.typed.(*v1alpha1.SecurityPolicy)
		ns := p.obj.src.Namespace
		var missing, conflicts []string
		for i, ref := range t.Spec.TargetRefs {
			var key, msg string
			if ref.Group == gatewayGroup && ref.Kind == "Gateway" {
				key, msg = securityGatewayTarget(p.obj, ref, gws)
			} else if ref.Group == gatewayGroup && (ref.Kind == "HTTPRoute" || ref.Kind == "GRPCRoute") {
				key, msg = b.policyTarget(ns, ref, routes)
			} else {
				msg = fmt.Sprintf("%s/%s is not a supported target; target an HTTPRoute, GRPCRoute or Gateway (group %s)", ref.Group, ref.Kind, gatewayGroup)
			}
			if msg != "" {
				missing = append(missing, fmt.Sprintf("targetRefs[%d]: %s", i, msg))
				continue
			}
			if w, ok := byTarget[key]; ok && w != p {
				conflicts = append(conflicts, fmt.Sprintf("targetRefs[%d]: %s is already targeted by SecurityPolicy %s, which wins (first by name)", i, key, w.obj.src.Name))
				continue
			}
			byTarget[key] = p
		}
		// Proxyless gRPC clients are served the same routes (HTTPRoutes
		// too) as API listeners, and call the backends themselves: no
		// filter of the policy runs for them.
		note := "; it applies on Envoy nodes only: proxyless gRPC clients (xds:/// targets) get the targeted routes without it"
		switch {
		case len(conflicts) > 0:
			p.obj.set(CondAccepted, metav1.ConditionFalse, string(gwv1.PolicyReasonConflicted), p.obj.msg("%s", strings.Join(append(conflicts, missing...), "; ")))
		case len(missing) > 0:
			p.obj.set(CondAccepted, metav1.ConditionFalse, string(gwv1.PolicyReasonTargetNotFound), p.obj.msg("%s", strings.Join(missing, "; ")))
		default:
			p.obj.set(CondAccepted, metav1.ConditionTrue, string(gwv1.PolicyReasonAccepted), "accepted"+note)
		}
	}
	merged := map[*ir.Security]*ir.Security{} // a rule's ExternalAuth filter -> with the policy
	for _, r := range b.rts {
		rkey := r.obj.src.Kind + " " + r.key()
		gw := b.gatewayPolicy(r, byTarget)
		noted := map[int]bool{}
		for _, m := range r.matches {
			var p *secPolicy
			if n := r.ruleNames[m.rule]; n != "" {
				p = byTarget[rkey+"#"+n]
			}
			if p == nil {
				p = byTarget[rkey]
			}
			if p == nil {
				p = gw
			}
			switch filter := m.ir.Security; {
			case p == nil:
			case filter == nil:
				m.ir.Security = p.ir
			case p.ir.ExtAuth != nil:
				// The policy's authorization service wins: a team's
				// filter cannot replace the one a policy (perhaps the
				// platform's) requires.
				m.ir.Security = p.ir
				if !noted[m.rule] {
					noted[m.rule] = true
					acceptedNote(r.obj, fmt.Sprintf("rules[%d]: the ExternalAuth filter is not applied: SecurityPolicy %s sets extAuth for this rule", m.rule, p.ir.Name))
				}
			default:
				if merged[filter] == nil {
					s := *p.ir
					s.Name, s.ExtAuth = filter.Name, filter.ExtAuth
					s.StripHeaders = sortedUnique(append(append([]string(nil), p.ir.StripHeaders...), filter.StripHeaders...))
					merged[filter] = &s
				}
				m.ir.Security = merged[filter]
			}
		}
	}
}

// acceptedNote adds note to the Accepted=True message of o (routes set it
// before policies are applied).
func acceptedNote(o *object, note string) {
	for i := range o.conds {
		if c := &o.conds[i]; c.Type == CondAccepted && c.Status == metav1.ConditionTrue {
			c.Message += "; " + note
		}
	}
}

// sortedUnique is in sorted, without repeats.
func sortedUnique(in []string) []string {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	if len(m) == 0 {
		return nil
	}
	return sortedKeys(m)
}

// securityGatewayTarget resolves a Gateway target: platform's policies
// only.
func securityGatewayTarget(o *object, ref v1alpha1.PolicyTargetReference, gws map[string]bool) (string, string) {
	if o.owner != PlatformNamespace {
		return "", fmt.Sprintf("Gateway %s: only platform/ may secure a whole Gateway; target your HTTPRoutes or GRPCRoutes", ref.Name)
	}
	if ref.SectionName != nil {
		return "", "sectionName is not supported on a Gateway target"
	}
	key := o.src.Namespace + "/" + ref.Name
	if !gws[key] {
		var names []string
		for k := range gws {
			if n, ok := strings.CutPrefix(k, o.src.Namespace+"/"); ok {
				names = append(names, n)
			}
		}
		return "", fmt.Sprintf("Gateway %s does not exist or is not accepted%s", key,
			validList(names, fmt.Sprintf("namespace %s has no accepted Gateway", o.src.Namespace)))
	}
	return "Gateway " + key, ""
}

// gatewayPolicy is the policy of the first Gateway (by namespace/name) the
// route is attached to that has one.
func (b *builder) gatewayPolicy(r *route, byTarget map[string]*secPolicy) *secPolicy {
	var names []string
	for _, a := range r.attached {
		names = append(names, a.l.gw.gw.Namespace+"/"+a.l.gw.gw.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		if p := byTarget["Gateway "+n]; p != nil {
			return p
		}
	}
	return nil
}

// newSecurity validates a policy; a message says why it is invalid.
func (b *builder) newSecurity(o *object, t *v1alpha1.SecurityPolicy) (*ir.Security, string) {
	s := t.Spec
	if len(s.TargetRefs) == 0 {
		return nil, "spec.targetRefs is empty"
	}
	if s.JWT == nil && s.ExtAuth == nil && s.BasicAuth == nil && s.APIKeyAuth == nil && s.Authorization == nil {
		return nil, "the policy sets none of jwt, extAuth, basicAuth, apiKeyAuth, authorization"
	}
	out := &ir.Security{Name: o.src.Namespace + "/" + o.src.Name, Owner: o.ref()}
	strip := map[string]bool{}
	// The credential files (basicAuth, apiKeyAuth) are in the proxies'
	// credentials directory, or in the one the policy's
	// gitxds.dev/certs-dir annotation names (as for BackendTLSPolicy).
	certsDir := DefaultCertsDir
	if d, ok := t.Annotations[AnnotationCertsDir]; ok {
		if !path.IsAbs(d) || path.Clean(d) != d {
			return nil, fmt.Sprintf("annotation %s: %q must be a clean absolute path", AnnotationCertsDir, d)
		}
		certsDir = d
	}
	if j := s.JWT; j != nil {
		jwt, msg := b.newJWT(o, j, strip)
		if msg != "" {
			return nil, msg
		}
		out.JWT = jwt
	}
	if e := s.ExtAuth; e != nil {
		ea, msg := b.newExtAuth(o, e, strip)
		if msg != "" {
			return nil, msg
		}
		out.ExtAuth = ea
	}
	if ba := s.BasicAuth; ba != nil {
		if msg := validName(ba.Users.Name); msg != "" {
			return nil, "basicAuth.users.name " + msg
		}
		out.BasicAuth = &ir.BasicAuth{UsersFile: path.Join(certsDir, o.src.Namespace, ba.Users.Name, htpasswdFile)}
		if h := ba.ForwardUsernameHeader; h != nil {
			name := strings.ToLower(*h)
			if msg := validHeaderName(name); msg != "" {
				return nil, "basicAuth.forwardUsernameHeader: " + msg
			}
			out.BasicAuth.ForwardUsernameHeader = name
			strip[name] = true
		}
	}
	if k := s.APIKeyAuth; k != nil {
		ak, msg := newAPIKeyAuth(o, k, certsDir, strip)
		if msg != "" {
			return nil, msg
		}
		out.APIKeyAuth = ak
	}
	if a := s.Authorization; a != nil {
		az, msg := newAuthorization(a, out.JWT)
		if msg != "" {
			return nil, msg
		}
		out.Authorization = az
	}
	out.StripHeaders = sortedKeys(strip)
	return out, ""
}

func (b *builder) newJWT(o *object, j *v1alpha1.JWT, strip map[string]bool) (*ir.JWT, string) {
	if len(j.Providers) == 0 {
		return nil, "jwt.providers is empty"
	}
	out := &ir.JWT{Optional: j.Optional != nil && *j.Optional}
	seen := map[string]bool{}
	for i, p := range j.Providers {
		where := fmt.Sprintf("jwt.providers[%d]", i)
		if msg := validName(p.Name); msg != "" {
			return nil, where + ".name " + msg
		}
		if seen[p.Name] {
			return nil, fmt.Sprintf("%s.name %q is used twice", where, p.Name)
		}
		seen[p.Name] = true
		ip := ir.JWTProvider{Name: p.Name, Issuer: p.Issuer, Forward: p.Forward != nil && *p.Forward}
		for k, a := range p.Audiences {
			if a == "" {
				return nil, fmt.Sprintf("%s.audiences[%d] is empty", where, k)
			}
			ip.Audiences = append(ip.Audiences, a)
		}
		switch {
		case (p.RemoteJWKS == nil) == (p.LocalJWKS == nil):
			return nil, where + ": set exactly one of remoteJWKS and localJWKS"
		case p.RemoteJWKS != nil:
			u, err := url.Parse(p.RemoteJWKS.URI)
			if err != nil || u.Host == "" {
				return nil, fmt.Sprintf("%s.remoteJWKS.uri %q is not an absolute URL", where, p.RemoteJWKS.URI)
			}
			if u.Scheme != "http" {
				return nil, fmt.Sprintf("%s.remoteJWKS.uri %q: only http:// is supported (gitxds Backends have no upstream TLS); serve the keys from a JWKS endpoint inside your network or use localJWKS", where, p.RemoteJWKS.URI)
			}
			c, msg := b.policyCluster(o, where+".remoteJWKS", p.RemoteJWKS.BackendRefs)
			if msg != "" {
				return nil, msg
			}
			ip.RemoteJWKS = &ir.RemoteJWKS{URI: p.RemoteJWKS.URI, Cluster: c}
		default:
			l := p.LocalJWKS
			if l.Type != nil && *l.Type != v1alpha1.LocalJWKSInline {
				return nil, fmt.Sprintf("%s.localJWKS.type %q: only Inline is supported", where, *l.Type)
			}
			if l.Inline == nil {
				return nil, where + ".localJWKS.inline is required"
			}
			if msg := publicJWKS(*l.Inline); msg != "" {
				return nil, where + ".localJWKS.inline: " + msg
			}
			ip.LocalJWKS = *l.Inline
		}
		for k, c := range p.ClaimToHeaders {
			h := strings.ToLower(c.Header)
			if msg := validHeaderName(h); msg != "" {
				return nil, fmt.Sprintf("%s.claimToHeaders[%d].header: %s", where, k, msg)
			}
			if c.Claim == "" {
				return nil, fmt.Sprintf("%s.claimToHeaders[%d].claim is empty", where, k)
			}
			ip.ClaimToHeaders = append(ip.ClaimToHeaders, ir.ClaimToHeader{Claim: c.Claim, Header: h})
			strip[h] = true
		}
		if e := p.ExtractFrom; e != nil {
			for k, h := range e.Headers {
				name := strings.ToLower(h.Name)
				if msg := validHeaderName(name); msg != "" {
					return nil, fmt.Sprintf("%s.extractFrom.headers[%d]: %s", where, k, msg)
				}
				jh := ir.JWTHeader{Name: name}
				if h.ValuePrefix != nil {
					jh.Prefix = *h.ValuePrefix
				}
				ip.Headers = append(ip.Headers, jh)
			}
			for k, v := range e.Params {
				if v == "" {
					return nil, fmt.Sprintf("%s.extractFrom.params[%d] is empty", where, k)
				}
			}
			for k, v := range e.Cookies {
				if v == "" {
					return nil, fmt.Sprintf("%s.extractFrom.cookies[%d] is empty", where, k)
				}
			}
			ip.Params = append(ip.Params, e.Params...)
			ip.Cookies = append(ip.Cookies, e.Cookies...)
			if len(ip.Headers)+len(ip.Params)+len(ip.Cookies) == 0 {
				return nil, where + ".extractFrom names no header, param or cookie"
			}
		}
		out.Providers = append(out.Providers, ip)
	}
	return out, ""
}

// publicJWKS checks that s is a JSON Web Key Set (RFC 7517) of public
// keys: no private or symmetric key may be in Git.
func publicJWKS(s string) string {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(s), &set); err != nil {
		return "not a JSON Web Key Set: " + err.Error()
	}
	if len(set.Keys) == 0 {
		return "the key set has no keys"
	}
	for i, k := range set.Keys {
		switch k["kty"] {
		case "RSA", "EC", "OKP":
		case "oct":
			return fmt.Sprintf("keys[%d] is a symmetric (oct) key, a secret; only public keys may be in Git", i)
		default:
			return fmt.Sprintf("keys[%d].kty %v is not RSA, EC or OKP", i, k["kty"])
		}
		// RFC 7518 §6.2.2 and §6.3.2: "d" (and the RSA CRT members) are
		// private key members.
		for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[priv]; ok {
				return fmt.Sprintf("keys[%d] has the private member %q; only public keys may be in Git", i, priv)
			}
		}
	}
	return ""
}

func (b *builder) newExtAuth(o *object, e *v1alpha1.ExtAuth, strip map[string]bool) (*ir.ExtAuth, string) {
	out := &ir.ExtAuth{FailOpen: e.FailOpen != nil && *e.FailOpen, Timeout: defaultExtAuthTimeout}
	var refs []v1alpha1.BackendObjectReference
	var toBackend []string
	switch {
	case (e.GRPC == nil) == (e.HTTP == nil):
		return nil, "extAuth: set exactly one of grpc and http"
	case e.GRPC != nil:
		out.GRPC = true
		refs, toBackend = e.GRPC.BackendRefs, e.GRPC.HeadersToBackend
	default:
		refs, toBackend = e.HTTP.BackendRefs, e.HTTP.HeadersToBackend
		if p := e.HTTP.Path; p != nil && *p != "" {
			if msg := validPath(*p); msg != "" {
				return nil, "extAuth.http.path " + msg
			}
			out.PathPrefix = strings.TrimSuffix(*p, "/")
		}
	}
	if len(e.HeadersToBackend) > 0 {
		if len(toBackend) > 0 {
			return nil, "extAuth: set headersToBackend once, on extAuth or on its grpc or http service"
		}
		toBackend = e.HeadersToBackend
	}
	c, msg := b.policyCluster(o, "extAuth", refs)
	if msg != "" {
		return nil, msg
	}
	out.Cluster = c
	for i, h := range toBackend {
		name := strings.ToLower(h)
		if msg := validHeaderName(name); msg != "" {
			return nil, fmt.Sprintf("extAuth headersToBackend[%d]: %s", i, msg)
		}
		out.HeadersToBackend = append(out.HeadersToBackend, name)
		strip[name] = true
	}
	for i, h := range e.HeadersToExtAuth {
		name := strings.ToLower(h)
		if msg := validHeaderName(name); msg != "" {
			return nil, fmt.Sprintf("extAuth.headersToExtAuth[%d]: %s", i, msg)
		}
		out.HeadersToExtAuth = append(out.HeadersToExtAuth, name)
	}
	if e.Timeout != nil {
		if e.Timeout.Duration <= 0 {
			return nil, "extAuth.timeout must be positive"
		}
		out.Timeout = e.Timeout.Duration
	}
	return out, ""
}

func newAuthorization(a *v1alpha1.Authorization, jwt *ir.JWT) (*ir.Authorization, string) {
	action := func(v v1alpha1.AuthorizationAction) (ir.AuthzAction, bool) {
		switch v {
		case v1alpha1.AuthorizationAllow:
			return ir.AuthzAllow, true
		case v1alpha1.AuthorizationDeny:
			return ir.AuthzDeny, true
		}
		return "", false
	}
	out := &ir.Authorization{DefaultAction: ir.AuthzDeny}
	if a.DefaultAction != nil {
		act, ok := action(*a.DefaultAction)
		if !ok {
			return nil, fmt.Sprintf("authorization.defaultAction %q is not Allow or Deny", *a.DefaultAction)
		}
		out.DefaultAction = act
	}
	providers := map[string]bool{}
	if jwt != nil {
		for _, p := range jwt.Providers {
			providers[p.Name] = true
		}
	}
	for i, r := range a.Rules {
		where := fmt.Sprintf("authorization.rules[%d]", i)
		act, ok := action(r.Action)
		if !ok {
			return nil, fmt.Sprintf("%s.action %q is not Allow or Deny", where, r.Action)
		}
		rule := ir.AuthzRule{Name: fmt.Sprintf("rule-%d", i), Action: act}
		if r.Name != nil {
			if msg := validName(*r.Name); msg != "" {
				return nil, where + ".name " + msg
			}
			rule.Name = *r.Name
		}
		pr := r.Principal
		if len(pr.ClientCIDRs) == 0 && pr.JWT == nil {
			return nil, where + ".principal needs clientCIDRs or jwt"
		}
		for k, c := range pr.ClientCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Sprintf("%s.principal.clientCIDRs[%d]: %q is not a CIDR", where, k, c)
			}
			if p.Masked() != p {
				return nil, fmt.Sprintf("%s.principal.clientCIDRs[%d]: %q has host bits set; write %s", where, k, c, p.Masked())
			}
			rule.ClientCIDRs = append(rule.ClientCIDRs, p.String())
		}
		if j := pr.JWT; j != nil {
			if !providers[j.Provider] {
				return nil, fmt.Sprintf("%s.principal.jwt.provider %q is not a provider of this policy's jwt", where, j.Provider)
			}
			if len(j.Claims) == 0 && len(j.Scopes) == 0 {
				return nil, where + ".principal.jwt needs claims or scopes"
			}
			jp := &ir.JWTPrincipal{Provider: j.Provider}
			for k, c := range j.Claims {
				if c.Name == "" || len(c.Values) == 0 {
					return nil, fmt.Sprintf("%s.principal.jwt.claims[%d] needs a name and values", where, k)
				}
				if strings.Contains("."+c.Name+".", "..") {
					return nil, fmt.Sprintf("%s.principal.jwt.claims[%d].name %q has an empty path element", where, k, c.Name)
				}
				jp.Claims = append(jp.Claims, ir.JWTClaim{Name: c.Name, Values: append([]string(nil), c.Values...)})
			}
			for k, sc := range j.Scopes {
				if sc == "" || strings.ContainsAny(sc, " \t") {
					return nil, fmt.Sprintf("%s.principal.jwt.scopes[%d] %q must be one non-empty word", where, k, sc)
				}
			}
			jp.Scopes = append(jp.Scopes, j.Scopes...)
			rule.JWT = jp
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, ""
}

// policyCluster resolves the one backendRef of a policy's service to a
// cluster: a Backend of the policy's namespace, or of one whose
// ReferenceGrant opens it to SecurityPolicies.
func (b *builder) policyCluster(o *object, where string, refs []v1alpha1.BackendObjectReference) (string, string) {
	if len(refs) != 1 {
		return "", where + ".backendRefs must have exactly one Backend"
	}
	ref := refs[0]
	if (ref.Group != nil && *ref.Group != v1alpha1.Group) || (ref.Kind != nil && *ref.Kind != v1alpha1.KindBackend) {
		return "", fmt.Sprintf("%s.backendRefs[0]: refer to a Backend (group %s, kind %s)", where, v1alpha1.Group, v1alpha1.KindBackend)
	}
	ns := o.src.Namespace
	if ref.Namespace != nil {
		ns = *ref.Namespace
	}
	if !b.permitted(v1alpha1.Group, v1alpha1.KindSecurityPolicy, o.src.Namespace, v1alpha1.Group, v1alpha1.KindBackend, ns, ref.Name) {
		return "", fmt.Sprintf("%s.backendRefs[0]: Backend %s/%s is in another namespace and no ReferenceGrant in namespace %s allows SecurityPolicies of namespace %s to use it", where, ns, ref.Name, ns, o.src.Namespace)
	}
	key := ns + "/" + ref.Name
	be, ok := b.backends[key]
	if !ok {
		if why, refused := b.refused[key]; refused {
			return "", fmt.Sprintf("%s.backendRefs[0]: Backend %s is refused by the backend address policy: %s", where, key, why)
		}
		return "", fmt.Sprintf("%s.backendRefs[0]: %s", where, b.noBackend(ns, ref.Name))
	}
	if ref.Port != nil && !validPort(*ref.Port) {
		return "", fmt.Sprintf("%s.backendRefs[0].port %d must be 1..65535", where, *ref.Port)
	}
	var port *int32
	if ref.Port != nil {
		port = ref.Port
	}
	return b.backendCluster(be, key, port), ""
}

// newAPIKeyAuth validates apiKeyAuth: its key files are in the proxies'
// credentials directory, named like basicAuth's users file.
func newAPIKeyAuth(o *object, k *v1alpha1.APIKeyAuth, certsDir string, strip map[string]bool) (*ir.APIKeyAuth, string) {
	if len(k.CredentialRefs) == 0 {
		return nil, "apiKeyAuth.credentialRefs is empty"
	}
	if len(k.ExtractFrom) == 0 {
		return nil, "apiKeyAuth.extractFrom is empty"
	}
	out := &ir.APIKeyAuth{Sanitize: k.Sanitize != nil && *k.Sanitize}
	for i, c := range k.CredentialRefs {
		if msg := validName(c.Name); msg != "" {
			return nil, fmt.Sprintf("apiKeyAuth.credentialRefs[%d].name %s", i, msg)
		}
		out.KeyFiles = append(out.KeyFiles, path.Join(certsDir, o.src.Namespace, c.Name, apiKeysFile))
	}
	for i, e := range k.ExtractFrom {
		where := fmt.Sprintf("apiKeyAuth.extractFrom[%d]", i)
		set := 0
		for _, l := range [][]string{e.Headers, e.Params, e.Cookies} {
			if len(l) > 0 {
				set++
			}
		}
		if set != 1 {
			return nil, where + ": set exactly one of headers, params and cookies"
		}
		for j, h := range e.Headers {
			name := strings.ToLower(h)
			if msg := validHeaderName(name); msg != "" {
				return nil, fmt.Sprintf("%s.headers[%d]: %s", where, j, msg)
			}
			out.Sources = append(out.Sources, ir.APIKeySource{Header: name})
		}
		for j, p := range e.Params {
			if p == "" {
				return nil, fmt.Sprintf("%s.params[%d] is empty", where, j)
			}
			out.Sources = append(out.Sources, ir.APIKeySource{Param: p})
		}
		for j, c := range e.Cookies {
			if c == "" || strings.ContainsAny(c, "=;, \t") {
				return nil, fmt.Sprintf("%s.cookies[%d] %q is not a cookie name", where, j, c)
			}
			out.Sources = append(out.Sources, ir.APIKeySource{Cookie: c})
		}
	}
	if h := k.ForwardClientIDHeader; h != nil {
		name := strings.ToLower(*h)
		if msg := validHeaderName(name); msg != "" {
			return nil, "apiKeyAuth.forwardClientIDHeader: " + msg
		}
		for _, s := range out.Sources {
			if s.Header == name {
				return nil, "apiKeyAuth.forwardClientIDHeader " + name + " is also a header the key is taken from"
			}
		}
		out.ForwardClientIDHeader = name
		strip[name] = true
	}
	return out, ""
}
