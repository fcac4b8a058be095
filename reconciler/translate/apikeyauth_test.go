package translate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	lua "github.com/yuin/gopher-lua"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"gitxds.dev/gitxds/reconciler/ir"
	"gitxds.dev/gitxds/reconciler/snapshot"
)

// luaEnvoy runs a generated apiKeyAuth script in a Lua 5.1 state with a
// fake of the part of Envoy's Lua handle API it uses (handle:headers()
// with get, replace and remove; handle:respond; handle:logErr) and a
// clock the test sets (os.time).
type luaEnvoy struct {
	t   *testing.T
	L   *lua.LState
	now int64
}

func newLuaEnvoy(t *testing.T, script string) *luaEnvoy {
	t.Helper()
	e := &luaEnvoy{t: t, L: lua.NewState(), now: 1000}
	t.Cleanup(e.L.Close)
	os := e.L.GetGlobal("os").(*lua.LTable)
	os.RawSetString("time", e.L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(e.now))
		return 1
	}))
	if err := e.L.DoString(script); err != nil {
		t.Fatalf("script does not load: %v\n%s", err, script)
	}
	return e
}

// result of one request.
type luaResult struct {
	status  string // "" when the request went on
	body    string
	headers map[string]string
	logged  []string
}

func (e *luaEnvoy) request(headers map[string]string) luaResult {
	e.t.Helper()
	L := e.L
	res := luaResult{headers: map[string]string{}}
	for k, v := range headers {
		res.headers[k] = v
	}
	hm := L.NewTable()
	hm.RawSetString("get", L.NewFunction(func(L *lua.LState) int {
		if v, ok := res.headers[L.CheckString(2)]; ok {
			L.Push(lua.LString(v))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	}))
	hm.RawSetString("replace", L.NewFunction(func(L *lua.LState) int {
		res.headers[L.CheckString(2)] = L.CheckString(3)
		return 0
	}))
	hm.RawSetString("remove", L.NewFunction(func(L *lua.LState) int {
		delete(res.headers, L.CheckString(2))
		return 0
	}))
	h := L.NewTable()
	h.RawSetString("headers", L.NewFunction(func(L *lua.LState) int { L.Push(hm); return 1 }))
	h.RawSetString("respond", L.NewFunction(func(L *lua.LState) int {
		res.status = L.CheckTable(2).RawGetString(":status").String()
		res.body = L.CheckString(3)
		return 0
	}))
	h.RawSetString("logErr", L.NewFunction(func(L *lua.LState) int {
		res.logged = append(res.logged, L.CheckString(2))
		return 0
	}))
	if err := L.CallByParam(lua.P{Fn: L.GetGlobal("envoy_on_request"), Protect: true}, h); err != nil {
		e.t.Fatalf("envoy_on_request: %v", err)
	}
	return res
}

func writeKeys(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAPIKeyAuthScript(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "api-keys")
	more := filepath.Join(dir, "more-keys")
	writeKeys(t, keys, "# clients\nalice: key-a\n\nbob:key:with:colons\r\nalice:second\n")
	writeKeys(t, more, "carol:key-c\nmallory:key-a\n")
	k := &ir.APIKeyAuth{
		KeyFiles: []string{keys, more},
		Sources: []ir.APIKeySource{
			{Header: "x-api-key"}, {Header: "authorization"}, {Param: "api_key"}, {Cookie: "key"},
		},
		ForwardClientIDHeader: "x-client-id",
		Sanitize:              true,
	}
	e := newLuaEnvoy(t, apiKeyAuthScript(k))

	for _, c := range []struct {
		name    string
		in      map[string]string
		status  string
		client  string
		headers map[string]string // expected values; "" means removed
	}{
		{name: "missing", in: map[string]string{":path": "/"}, status: "401"},
		{name: "unknown", in: map[string]string{":path": "/", "x-api-key": "nope"}, status: "401"},
		{name: "header", in: map[string]string{":path": "/", "x-api-key": "key-a"}, client: "alice",
			headers: map[string]string{"x-api-key": ""}},
		{name: "colons in the key", in: map[string]string{":path": "/", "x-api-key": "key:with:colons"}, client: "bob"},
		{name: "a client's second key is ignored", in: map[string]string{":path": "/", "x-api-key": "second"}, status: "401"},
		{name: "second file", in: map[string]string{":path": "/", "x-api-key": "key-c"}, client: "carol"},
		{name: "bearer", in: map[string]string{":path": "/", "authorization": "Bearer key-c"}, client: "carol",
			headers: map[string]string{"authorization": ""}},
		{name: "first source wins", in: map[string]string{":path": "/", "x-api-key": "nope", "authorization": "Bearer key-c"}, status: "401"},
		{name: "param", in: map[string]string{":path": "/p?a=1&api_key=key%2Dc&b=2"}, client: "carol",
			headers: map[string]string{":path": "/p?a=1&b=2"}},
		{name: "param only", in: map[string]string{":path": "/p?api_key=key-c"}, client: "carol",
			headers: map[string]string{":path": "/p"}},
		{name: "cookie", in: map[string]string{":path": "/", "cookie": "a=1; key=key-a; b=2"}, client: "alice",
			headers: map[string]string{"cookie": "a=1; b=2"}},
		{name: "forged client id replaced", in: map[string]string{":path": "/", "x-api-key": "key-a", "x-client-id": "root"}, client: "alice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := e.request(c.in)
			if got.status != c.status {
				t.Fatalf("status %q, want %q (headers %v)", got.status, c.status, got.headers)
			}
			if c.status != "" {
				if got.body != apiKeyDeniedBody {
					t.Errorf("body %q", got.body)
				}
				return
			}
			if got.headers["x-client-id"] != c.client {
				t.Errorf("x-client-id %q, want %q", got.headers["x-client-id"], c.client)
			}
			for h, want := range c.headers {
				v, ok := got.headers[h]
				if want == "" && ok {
					t.Errorf("%s not removed: %q", h, v)
				}
				if want != "" && v != want {
					t.Errorf("%s %q, want %q", h, v, want)
				}
			}
		})
	}

	t.Run("rotation", func(t *testing.T) {
		writeKeys(t, keys, "dave:key-d\n")
		if got := e.request(map[string]string{":path": "/", "x-api-key": "key-d"}); got.status != "401" {
			t.Fatalf("a new key is valid before the reload period: %+v", got)
		}
		e.now += apiKeyReloadSeconds
		if got := e.request(map[string]string{":path": "/", "x-api-key": "key-d"}); got.status != "" || got.headers["x-client-id"] != "dave" {
			t.Fatalf("the rotated key is not valid after the reload period: %+v", got)
		}
		if got := e.request(map[string]string{":path": "/", "x-api-key": "key:with:colons"}); got.status != "401" {
			t.Fatalf("the removed key is still valid: %+v", got)
		}
	})
	t.Run("unreadable file fails closed", func(t *testing.T) {
		if err := os.Remove(more); err != nil {
			t.Fatal(err)
		}
		e.now += apiKeyReloadSeconds
		got := e.request(map[string]string{":path": "/", "x-api-key": "key-d"})
		if got.status != "401" || len(got.logged) == 0 || !strings.Contains(got.logged[0], more) {
			t.Fatalf("a missing key file does not fail closed with a log line: %+v", got)
		}
		writeKeys(t, more, "carol:key-c\n")
		e.now += apiKeyReloadSeconds
		if got := e.request(map[string]string{":path": "/", "x-api-key": "key-d"}); got.status != "" {
			t.Fatalf("the key is not valid once the file is back: %+v", got)
		}
	})
}

func TestAPIKeyAuthScriptKeepsKeyWithoutSanitize(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "api-keys")
	writeKeys(t, keys, "alice:key-a\n")
	e := newLuaEnvoy(t, apiKeyAuthScript(&ir.APIKeyAuth{KeyFiles: []string{keys}, Sources: []ir.APIKeySource{{Header: "x-api-key"}}}))
	got := e.request(map[string]string{":path": "/", "x-api-key": "key-a"})
	if got.status != "" || got.headers["x-api-key"] != "key-a" {
		t.Fatalf("%+v", got)
	}
	if _, ok := got.headers[""]; ok {
		t.Fatal("an empty forwardClientIDHeader set a header")
	}
}

// TestLuaString: a policy string cannot end the literal or inject code.
func TestLuaString(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	for _, s := range []string{`plain`, `a"b`, `a\b`, "x\"; os.exit(1) --", "line\nbreak]]", "\x00\xff", "[[", ""} {
		lit := luaString(s)
		if err := L.DoString("got = " + lit); err != nil {
			t.Fatalf("%q -> %s: %v", s, lit, err)
		}
		if got := L.GetGlobal("got").String(); got != s {
			t.Errorf("%q -> %s -> %q", s, lit, got)
		}
	}
}

func mustUnpack(t *testing.T, a *anypb.Any) proto.Message {
	t.Helper()
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatalf("unpack %v: %v", a, err)
	}
	return m
}

// TestAPIKeyAuthFilterLoads: the Lua filter the security case emits
// loads (Envoy refuses a listener whose script does not: "script load
// error", ThreadLocalState::ThreadLocalState) and defines
// envoy_on_request; it is disabled in the chain and its code is the
// default_source_code only.
func TestAPIKeyAuthFilterLoads(t *testing.T) {
	set := securityCase(t)
	found := 0
	for l, fs := range chainFilters(t, set, snapshot.Envoy) {
		for _, f := range fs {
			if !strings.HasPrefix(f.GetName(), filterAPIKeyAuthPrefix) {
				continue
			}
			found++
			cfg, ok := mustUnpack(t, f.GetTypedConfig()).(*luav3.Lua)
			if !ok || !f.GetDisabled() || cfg.GetInlineCode() != "" || len(cfg.GetSourceCodes()) > 0 {
				t.Fatalf("%s: filter %s: %v", l, f.GetName(), cfg)
			}
			L := lua.NewState()
			if err := L.DoString(cfg.GetDefaultSourceCode().GetInlineString()); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			if L.GetGlobal("envoy_on_request").Type() != lua.LTFunction {
				t.Errorf("%s: no envoy_on_request", l)
			}
			L.Close()
		}
	}
	if found == 0 {
		t.Fatal("the security case has no apiKeyAuth filter")
	}
}
