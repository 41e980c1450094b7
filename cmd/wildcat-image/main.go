// Command wildcat-image builds Wildcat's container image without Docker,
// as ko does: it runs the Dockerfile's make step (static binaries), lays
// out the files of the Dockerfile's runtime stage (FROM scratch) from this
// machine, and writes one image with the runtime stage's configuration
// (ENV, WORKDIR, USER, EXPOSE, VOLUME, HEALTHCHECK, ENTRYPOINT, CMD) with
// go-containerregistry, as a tarball that docker load and podman load read.
// `make image` runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line's.
type options struct {
	root, dockerfile, out, tag, version, caCerts string
	skipMake                                     bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wildcat-image", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.root, "root", ".", "the repository: the Dockerfile's build context")
	fs.StringVar(&o.dockerfile, "dockerfile", "", "the Dockerfile (default ROOT/Dockerfile)")
	fs.StringVar(&o.out, "out", "bin/wildcat-image.tar", "the image tarball to write (docker load -i / podman load -i)")
	fs.StringVar(&o.tag, "tag", "wildcat:dev", "the image's name in the tarball")
	fs.StringVar(&o.version, "version", "dev", "the build stage's VERSION argument (wildcatd version)")
	fs.StringVar(&o.caCerts, "ca-certs", defaultCACerts(), "CA bundle to ship as /etc/ssl/certs/ca-certificates.crt")
	fs.BoolVar(&o.skipMake, "skip-make", false, "use the binaries the make step left, without running it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wildcat-image: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.dockerfile == "" {
		o.dockerfile = filepath.Join(o.root, "Dockerfile")
	}
	if o.caCerts == "" {
		fmt.Fprintln(stderr, "wildcat-image: no CA bundle on this machine: install Debian's ca-certificates or give --ca-certs")
		return 2
	}
	digest, err := build(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wildcat-image: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s %s\n", o.out, o.tag, digest)
	return 0
}

// build runs the make step (unless skipped), assembles the image and
// writes its tarball; it answers the image's digest.
func build(ctx context.Context, o options, stdout, stderr io.Writer) (string, error) {
	tag, err := name.NewTag(o.tag)
	if err != nil {
		return "", fmt.Errorf("--tag: %w", err)
	}
	p, err := readPlan(o.dockerfile)
	if err != nil {
		return "", err
	}
	if !o.skipMake {
		if err := runMake(ctx, p, o.root, o.version, stdout, stderr); err != nil {
			return "", err
		}
	}
	img, err := assemble(p, o.root, o.caCerts)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return "", err
	}
	if err := tarball.WriteToFile(o.out, tag, img); err != nil {
		return "", fmt.Errorf("write %s: %w", o.out, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
