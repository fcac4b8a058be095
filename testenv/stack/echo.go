package stack

import (
	"strings"

	"gitxds.dev/gitxds/testenv/echorepo"
)

// EchoHost is the hostname of the echo repository's route.
const EchoHost = echorepo.Host

// EchoRepo is the echo repository (package echorepo) with Backends a and b
// at the given addresses and the route to a.
func EchoRepo(backendA, backendB string) map[string]string {
	return echorepo.Files(echorepo.Backend("a", port(backendA))+"---\n"+echorepo.Backend("b", port(backendB)), "a")
}

func port(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// EchoRoute is team echo's HTTPRoute, sending everything to backend.
func EchoRoute(backend string) string { return echorepo.Route(backend) }
