// Command ocimage builds and checks the gitxds container image without a
// container engine: an OCI image layout (as a tarball) of one layer holding
// the static gitxds binary, CA certificates and an /etc/passwd with the
// non-root user it runs as. Every timestamp is fixed, so the same inputs
// give the same image digest.
//
//	ocimage build --binary bin/gitxds --version V --revision R --out bin/gitxds-image.tar
//	ocimage check --version V --revision R bin/gitxds-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = runBuild(os.Args[2:])
	case "check":
		err = runCheck(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocimage:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ocimage build|check [flags]")
	os.Exit(2)
}

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	var o BuildOptions
	var out string
	fs.StringVar(&o.Binary, "binary", "bin/gitxds", "the static gitxds binary (CGO_ENABLED=0)")
	fs.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA certificate bundle to install")
	fs.StringVar(&o.Version, "version", "dev", "org.opencontainers.image.version")
	fs.StringVar(&o.Revision, "revision", "unknown", "org.opencontainers.image.revision")
	fs.StringVar(&o.Source, "source", "https://gitxds.dev/gitxds", "org.opencontainers.image.source")
	fs.StringVar(&o.Arch, "arch", "amd64", "architecture of the binary")
	fs.Int64Var(&o.Epoch, "epoch", 0, "timestamp of every file and of the image, in seconds since 1970 (e.g. the commit time)")
	fs.StringVar(&out, "out", "bin/gitxds-image.tar", "OCI layout tarball to write")
	_ = fs.Parse(args)
	digest, err := Build(o, out)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", out, digest)
	return nil
}

func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	var want CheckOptions
	fs.StringVar(&want.Version, "version", "", "expected org.opencontainers.image.version (and `gitxds version` output)")
	fs.StringVar(&want.Revision, "revision", "", "expected org.opencontainers.image.revision")
	fs.BoolVar(&want.Run, "run", true, "run the image's binary (`gitxds version`) when it is for this machine")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("check needs one OCI layout tarball")
	}
	rep, err := Check(fs.Arg(0), want)
	if err != nil {
		return err
	}
	fmt.Print(rep)
	return nil
}
