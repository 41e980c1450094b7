// Command protogen generates the Go code of the plugin protocol
// (sdk/proto/wildcat/plugin/v1/*.proto) with nothing but Go: the .proto files
// are compiled in-process by github.com/bufbuild/protocompile, and the code is
// written by protoc-gen-go and protoc-gen-go-grpc, run as `go tool NAME` at
// the versions the tool directives of go.mod pin. No protoc, no system
// package, no binary outside the module cache.
//
// Run it from anywhere inside the repository (`make proto` does):
//
//	go run ./sdk/proto/protogen [-out DIR]
//
// DIR defaults to the repository root, where the generated files are
// committed; the generated-code freshness test passes a temporary DIR and
// compares.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// goModule is the module path the generators strip from go_package to place
// files relative to the output directory (protoc's --go_opt=module=…).
const goModule = "github.com/wildcathub/wildcat"

// protoSubdir is the import root of the .proto files, relative to the
// repository root; the files to generate are protoPackageDir/*.proto below it.
const (
	protoSubdir     = "sdk/proto"
	protoPackageDir = "wildcat/plugin/v1"
)

// generators are run in this order, each with the same request.
var generators = []string{"protoc-gen-go", "protoc-gen-go-grpc"}

func main() {
	out := flag.String("out", "", "directory the generated files are written under (default: the repository root)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if out == "" {
		out = root
	}
	req, err := request(filepath.Join(root, protoSubdir))
	if err != nil {
		return err
	}
	for _, gen := range generators {
		files, err := generate(root, gen, req)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := write(out, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// moduleRoot is the directory of the go.mod of the module being built in: the
// repository root when run from inside it.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// request compiles every .proto file of the package below importRoot and
// returns the CodeGeneratorRequest protoc would send: the files to generate,
// every file they need in dependency order (with source info, so comments
// reach the generated code), and the generators' parameter.
func request(importRoot string) (*pluginpb.CodeGeneratorRequest, error) {
	paths, err := filepath.Glob(filepath.Join(importRoot, protoPackageDir, "*.proto"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .proto files in %s", filepath.Join(importRoot, protoPackageDir))
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = protoPackageDir + "/" + filepath.Base(p)
	}
	sort.Strings(names)

	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{importRoot}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(context.Background(), names...)
	if err != nil {
		return nil, err
	}

	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: names,
		Parameter:      proto.String("module=" + goModule),
	}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, fileProto(f))
	}
	for _, f := range files {
		add(f)
	}
	return req, nil
}

// fileProto is f as a descriptor proto: the compiler's own when it parsed the
// file (source info included), otherwise (the standard imports) rebuilt from
// the linked descriptor.
func fileProto(f protoreflect.FileDescriptor) *descriptorpb.FileDescriptorProto {
	if r, ok := f.(linker.Result); ok {
		return r.FileDescriptorProto()
	}
	return protodesc.ToFileDescriptorProto(f)
}

// generate runs one generator, pinned by go.mod's tool directives, with req on
// its standard input, and returns the files it answers.
func generate(root, gen string, req *pluginpb.CodeGeneratorRequest) ([]*pluginpb.CodeGeneratorResponse_File, error) {
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "tool", gen)
	cmd.Dir = root
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool %s: %w\n%s", gen, err, stderr.Bytes())
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("go tool %s: reading its answer: %w", gen, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("go tool %s: %s", gen, resp.GetError())
	}
	for _, f := range resp.File {
		if f.GetInsertionPoint() != "" || f.GetName() == "" {
			return nil, fmt.Errorf("go tool %s: unsupported output file %q (insertion point %q)", gen, f.GetName(), f.GetInsertionPoint())
		}
	}
	return resp.File, nil
}

// write stores f below out, refusing names that would leave it.
func write(out string, f *pluginpb.CodeGeneratorResponse_File) error {
	name := filepath.FromSlash(f.GetName())
	if !filepath.IsLocal(name) {
		return fmt.Errorf("generator wrote outside the output directory: %q", f.GetName())
	}
	path := filepath.Join(out, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(f.GetContent()), 0o644)
}
