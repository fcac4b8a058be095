package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// envPrefix: every flag of serve can also be set as GITXDS_<FLAG>, the
// flag's name upper-cased with dashes as underscores (--xds-address is
// GITXDS_XDS_ADDRESS). A flag on the command line beats the variable.
const envPrefix = "GITXDS_"

// valueEnv are GITXDS_ variables that hold a value rather than set a flag.
var valueEnv = map[string]bool{"GITXDS_HTTPS_TOKEN": true}

// envName is the variable of a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of fs not given on the command line from its
// GITXDS_ variable in environ (os.Environ's form). It returns the GITXDS_
// variables that match no flag (likely typos), leaving out those
// Kubernetes' service links create (GITXDS_*_SERVICE_*, GITXDS_*PORT*).
func applyEnv(fs *pflag.FlagSet, environ []string) (unknown []string, err error) {
	known := map[string]*pflag.Flag{}
	fs.VisitAll(func(f *pflag.Flag) { known[envName(f.Name)] = f })
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || valueEnv[name] {
			continue
		}
		f, ok := known[name]
		if !ok {
			if !strings.Contains(name, "_SERVICE_") && !strings.Contains(name, "PORT") {
				unknown = append(unknown, name)
			}
			continue
		}
		if f.Changed {
			continue // the command line wins
		}
		if err := fs.Set(f.Name, val); err != nil {
			// The value may be a secret by mistake: name the variable only.
			return nil, fmt.Errorf("%s: invalid value for --%s: %v", name, f.Name, errWithoutValue(err, val))
		}
	}
	sort.Strings(unknown)
	return unknown, nil
}

func errWithoutValue(err error, val string) string {
	if val == "" {
		return err.Error()
	}
	return strings.ReplaceAll(err.Error(), val, "<value>")
}

// envUsage is the note appended to serve's help.
func envUsage() string {
	return "\nEvery flag can also be set with a GITXDS_ environment variable: --xds-address as\n" +
		"GITXDS_XDS_ADDRESS, --insecure-skip-host-key-check as GITXDS_INSECURE_SKIP_HOST_KEY_CHECK=true.\n" +
		"A flag given on the command line wins over its variable. GITXDS_HTTPS_TOKEN holds an HTTPS\n" +
		"token itself (prefer --https-token-file)."
}
