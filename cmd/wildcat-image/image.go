package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch stamps every file and the image itself, so the same inputs give
// the same image digest (as ko does).
var epoch = time.Unix(0, 0).UTC()

// plan is what the Dockerfile says: the build stage (for its make step and
// its working directory), the runtime stage's COPYs and configuration.
type plan struct {
	build  stage
	copies []copyInstr
	config v1.Config
}

func readPlan(dockerfile string) (plan, error) {
	f, err := os.Open(dockerfile)
	if err != nil {
		return plan{}, err
	}
	defer f.Close()
	stages, err := parseDockerfile(f)
	if err != nil {
		return plan{}, err
	}
	if len(stages) != 2 || stages[0].name == "" {
		return plan{}, fmt.Errorf("%s: expected two stages, a named build stage and the runtime stage", dockerfile)
	}
	rt := stages[1]
	if rt.from != "scratch" {
		return plan{}, fmt.Errorf("%s: the runtime stage is FROM %s; cmd/wildcat-image builds FROM scratch", dockerfile, rt.from)
	}
	p := plan{build: stages[0]}
	if p.config, err = imageConfig(rt); err != nil {
		return plan{}, err
	}
	if p.copies, err = copies(rt); err != nil {
		return plan{}, err
	}
	for _, c := range p.copies {
		if c.from != "" && c.from != p.build.name {
			return plan{}, fmt.Errorf("Dockerfile:%d: COPY --from=%s: expected the build stage %q", c.line, c.from, p.build.name)
		}
	}
	return p, nil
}

// runMake runs the build stage's make step in the repository, as the
// build stage runs it in its copy of the repository.
func runMake(ctx context.Context, p plan, root, version string, stdout, stderr io.Writer) error {
	steps, err := makeSteps(p.build, map[string]string{"VERSION": version})
	if err != nil {
		return err
	}
	if len(steps) == 0 {
		return fmt.Errorf("Dockerfile: the build stage has no RUN make step")
	}
	for _, argv := range steps {
		fmt.Fprintf(stderr, "wildcat-image: %s\n", strings.Join(argv, " "))
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, stdout, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
	}
	return nil
}

// source is where one COPY source comes from outside a container.
type source struct {
	host string      // a file or directory on this machine, or
	dir  fs.FileMode // an empty directory with this mode (host == "")
}

// builderSource maps a path of the build stage to this machine: the build
// stage's working directory is the repository (it ran the same make step
// there); the other paths are what the build stage's other RUN lines and
// its base image provide.
func builderSource(p plan, root, caCerts, src string) (source, error) {
	src = path.Clean(src)
	if rel, ok := strings.CutPrefix(src, workdir(p.build)+"/"); ok {
		return source{host: filepath.Join(root, filepath.FromSlash(rel))}, nil
	}
	switch src {
	case "/etc/ssl/certs/ca-certificates.crt":
		return source{host: caCerts}, nil
	case "/rootfs/tmp":
		return source{dir: fs.ModeDir | fs.ModeSticky | 0o777}, nil
	case "/rootfs/data":
		return source{dir: fs.ModeDir | 0o755}, nil
	}
	return source{}, fmt.Errorf("the build stage's %s has no counterpart here: teach cmd/wildcat-image's builderSource what it is", src)
}

// entry is one file of the layer.
type entry struct {
	mode     fs.FileMode
	uid, gid int
	host     string // file contents, for regular files
	link     string // symlink target
}

// layout lays out the runtime stage's files as its COPYs do: a directory
// source copies its contents, a file source lands at DST or, when DST ends
// in /, under it; --chown owns what is copied, parents made on the way
// are root's. Modes are normalised (0755 for directories and executables,
// 0644 otherwise) so a checkout's umask does not change the image.
func layout(p plan, root, caCerts string) (map[string]entry, error) {
	files := map[string]entry{}
	mkdirs := func(dir string) {
		for d := dir; d != "/" && d != "."; d = path.Dir(d) {
			if _, ok := files[d]; !ok {
				files[d] = entry{mode: fs.ModeDir | 0o755}
			}
		}
	}
	for _, c := range p.copies {
		uid, gid := 0, 0
		if c.chown != "" {
			u, g, _ := strings.Cut(c.chown, ":")
			var err1, err2 error
			uid, err1 = strconv.Atoi(u)
			gid, err2 = strconv.Atoi(g)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("Dockerfile:%d: --chown=%s: expected numeric uid:gid", c.line, c.chown)
			}
		}
		for _, s := range c.srcs {
			var src source
			var err error
			if c.from == "" {
				src = source{host: filepath.Join(root, filepath.FromSlash(path.Clean(s)))}
			} else if src, err = builderSource(p, root, caCerts, s); err != nil {
				return nil, fmt.Errorf("Dockerfile:%d: %w", c.line, err)
			}
			dst := path.Clean(c.dst)
			if src.host == "" {
				mkdirs(path.Dir(dst))
				files[dst] = entry{mode: src.dir, uid: uid, gid: gid}
				continue
			}
			info, err := os.Stat(src.host)
			if err != nil {
				return nil, fmt.Errorf("Dockerfile:%d: %w", c.line, err)
			}
			if !info.IsDir() {
				if strings.HasSuffix(c.dst, "/") || len(c.srcs) > 1 {
					dst = path.Join(dst, path.Base(s))
				}
				mkdirs(path.Dir(dst))
				files[dst] = entry{mode: fileMode(info.Mode()), uid: uid, gid: gid, host: src.host}
				continue
			}
			mkdirs(path.Dir(dst))
			err = filepath.WalkDir(src.host, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(src.host, p)
				target := path.Join(dst, filepath.ToSlash(rel))
				if target == "/" {
					return nil // COPY dir/ / : the root itself is the base's
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				switch {
				case d.IsDir():
					files[target] = entry{mode: fs.ModeDir | 0o755, uid: uid, gid: gid}
				case d.Type()&fs.ModeSymlink != 0:
					to, err := os.Readlink(p)
					if err != nil {
						return err
					}
					files[target] = entry{mode: fs.ModeSymlink | 0o777, uid: uid, gid: gid, link: to}
				case d.Type().IsRegular():
					files[target] = entry{mode: fileMode(info.Mode()), uid: uid, gid: gid, host: p}
				default:
					return fmt.Errorf("%s: not a file, directory or symlink", p)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("Dockerfile:%d: %w", c.line, err)
			}
		}
	}
	return files, nil
}

func fileMode(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// layerTar writes the files as one tar, sorted by path so parents come
// first and the bytes do not depend on map order.
func layerTar(files map[string]entry) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := files[n]
		h := &tar.Header{
			Name: strings.TrimPrefix(n, "/"), Mode: int64(e.mode.Perm()), Uid: e.uid, Gid: e.gid,
			ModTime: epoch, Format: tar.FormatPAX,
		}
		if e.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		var body []byte
		switch {
		case e.mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case e.mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			b, err := os.ReadFile(e.host)
			if err != nil {
				return nil, err
			}
			h.Typeflag, h.Size, body = tar.TypeReg, int64(len(b)), b
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// assemble makes the image: one layer with the laid-out files on an empty
// base, and the Dockerfile's configuration.
func assemble(p plan, root, caCerts string) (v1.Image, error) {
	files, err := layout(p, root, caCerts)
	if err != nil {
		return nil, err
	}
	tb, err := layerTar(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tb)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	// The make step builds for this machine's architecture.
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = p.config
	cf.History = []v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "cmd/wildcat-image: the Dockerfile's runtime stage", Comment: "built without Docker"}}
	return mutate.ConfigFile(img, cf)
}

// defaultCACerts is the first CA bundle found where Go looks on Linux.
func defaultCACerts() string {
	for _, f := range []string{
		"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
		"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
		"/etc/ssl/ca-bundle.pem",             // openSUSE
		"/etc/ssl/cert.pem",                  // Alpine, macOS
	} {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}
