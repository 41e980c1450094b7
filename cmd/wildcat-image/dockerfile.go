package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line  int               // where it starts, for errors
	cmd   string            // upper case: COPY, ENV, …
	flags map[string]string // leading --name=value options
	rest  string            // what follows the flags
}

func (in instruction) errorf(format string, args ...any) error {
	return fmt.Errorf("Dockerfile:%d: %s: %s", in.line, in.cmd, fmt.Sprintf(format, args...))
}

// stage is one FROM and the instructions under it.
type stage struct {
	from, name string
	instrs     []instruction
}

// parseDockerfile splits a Dockerfile into stages. It reads the forms this
// repository's Dockerfile uses (what BuildKit reads too): comments, blank
// lines, backslash continuations, --flag=value options.
func parseDockerfile(r io.Reader) ([]stage, error) {
	var (
		stages []stage
		buf    strings.Builder
		start  int
	)
	flush := func() error {
		text := strings.TrimSpace(buf.String())
		buf.Reset()
		if text == "" {
			return nil
		}
		word, rest, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(word), flags: map[string]string{}}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var opt string
			opt, rest, _ = strings.Cut(rest, " ")
			rest = strings.TrimSpace(rest)
			k, v, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
			in.flags[k] = v
		}
		in.rest = rest
		if in.cmd == "FROM" {
			f := strings.Fields(rest)
			st := stage{}
			switch {
			case len(f) == 1:
				st.from = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.from, st.name = f[0], f[2]
			default:
				return in.errorf("expected IMAGE [AS NAME], got %q", rest)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil // a global ARG before the first FROM
			}
			return in.errorf("before the first FROM")
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
		return nil
	}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue // a comment, also between continued lines
		}
		if buf.Len() == 0 {
			if line == "" {
				continue
			}
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if buf.Len() > 0 {
		return nil, fmt.Errorf("Dockerfile:%d: continued past the end of the file", start)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("Dockerfile: no FROM")
	}
	return stages, nil
}

// execForm reads a JSON array of strings; a shell form is refused, since
// a scratch image has no shell to run it.
func execForm(in instruction, s string) ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil || len(args) == 0 {
		return nil, in.errorf("expected a JSON array of strings (exec form: the image has no shell), got %q", s)
	}
	return args, nil
}

// keyValues reads ENV and LABEL arguments: KEY=value pairs, values
// optionally double-quoted; no variable expansion.
func keyValues(in instruction) ([][2]string, error) {
	var out [][2]string
	s := in.rest
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"") {
			return nil, in.errorf("expected KEY=value pairs, got %q", in.rest)
		}
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				return nil, in.errorf("unterminated quote in %q", in.rest)
			}
			out = append(out, [2]string{k, v[1 : end+1]})
			s = v[end+2:]
			continue
		}
		val, tail, _ := strings.Cut(v, " ")
		out = append(out, [2]string{k, val})
		s = tail
	}
	for _, kv := range out {
		if strings.Contains(kv[1], "$") {
			return nil, in.errorf("%s: variables are not expanded here; write the value", kv[0])
		}
	}
	return out, nil
}

// imageConfig is what the runtime stage's instructions set in the image's
// configuration, as docker build sets it. COPY is left to layout; any
// instruction that would change the image in another way is refused, so
// the two builds cannot silently differ.
func imageConfig(st stage) (v1.Config, error) {
	cfg := v1.Config{WorkingDir: "/"}
	var env [][2]string
	for _, in := range st.instrs {
		switch in.cmd {
		case "COPY", "ARG":
		case "ENV":
			kvs, err := keyValues(in)
			if err != nil {
				return cfg, err
			}
		next:
			for _, kv := range kvs {
				for i := range env {
					if env[i][0] == kv[0] {
						env[i] = kv
						continue next
					}
				}
				env = append(env, kv)
			}
		case "LABEL":
			kvs, err := keyValues(in)
			if err != nil {
				return cfg, err
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, kv := range kvs {
				cfg.Labels[kv[0]] = kv[1]
			}
		case "WORKDIR":
			dir := in.rest
			if !path.IsAbs(dir) {
				dir = path.Join(cfg.WorkingDir, dir)
			}
			cfg.WorkingDir = path.Clean(dir)
		case "USER":
			if in.rest == "" || strings.ContainsAny(in.rest, " $") {
				return cfg, in.errorf("expected USER uid[:gid], got %q", in.rest)
			}
			cfg.User = in.rest
		case "EXPOSE":
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range strings.Fields(in.rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				cfg.ExposedPorts[p] = struct{}{}
			}
		case "VOLUME":
			vols := strings.Fields(in.rest)
			if strings.HasPrefix(in.rest, "[") {
				var err error
				if vols, err = execForm(in, in.rest); err != nil {
					return cfg, err
				}
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				cfg.Volumes[v] = struct{}{}
			}
		case "STOPSIGNAL":
			cfg.StopSignal = in.rest
		case "ENTRYPOINT":
			args, err := execForm(in, in.rest)
			if err != nil {
				return cfg, err
			}
			// As docker build: a new ENTRYPOINT clears an inherited CMD.
			cfg.Entrypoint, cfg.Cmd = args, nil
		case "CMD":
			args, err := execForm(in, in.rest)
			if err != nil {
				return cfg, err
			}
			cfg.Cmd = args
		case "HEALTHCHECK":
			hc, err := healthcheck(in)
			if err != nil {
				return cfg, err
			}
			cfg.Healthcheck = hc
		default:
			return cfg, in.errorf("not supported in the runtime stage by cmd/wildcat-image (it builds without running anything in the image)")
		}
	}
	for _, kv := range env {
		cfg.Env = append(cfg.Env, kv[0]+"="+kv[1])
	}
	return cfg, nil
}

func healthcheck(in instruction) (*v1.HealthConfig, error) {
	if strings.EqualFold(in.rest, "NONE") {
		return &v1.HealthConfig{Test: []string{"NONE"}}, nil
	}
	word, rest, _ := strings.Cut(in.rest, " ")
	if !strings.EqualFold(word, "CMD") {
		return nil, in.errorf("expected [options] CMD [\"command\", …] or NONE, got %q", in.rest)
	}
	args, err := execForm(in, strings.TrimSpace(rest))
	if err != nil {
		return nil, err
	}
	hc := &v1.HealthConfig{Test: append([]string{"CMD"}, args...)}
	for k, v := range in.flags {
		var d time.Duration
		var n int
		switch k {
		case "interval", "timeout", "start-period", "start-interval":
			if d, err = time.ParseDuration(v); err != nil || d < 0 {
				return nil, in.errorf("--%s: %q is not a duration", k, v)
			}
		case "retries":
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != v {
				return nil, in.errorf("--retries: %q is not a count", v)
			}
		default:
			return nil, in.errorf("unknown option --%s", k)
		}
		switch k {
		case "interval":
			hc.Interval = d
		case "timeout":
			hc.Timeout = d
		case "start-period":
			hc.StartPeriod = d
		case "start-interval":
			return nil, in.errorf("--start-interval is not in the image configuration go-containerregistry writes")
		case "retries":
			hc.Retries = n
		}
	}
	return hc, nil
}

// copyInstr is one COPY of the runtime stage.
type copyInstr struct {
	line  int
	from  string // a stage name, or "" for the build context
	chown string // uid:gid, or ""
	srcs  []string
	dst   string
}

func copies(st stage) ([]copyInstr, error) {
	var out []copyInstr
	for _, in := range st.instrs {
		if in.cmd != "COPY" {
			continue
		}
		c := copyInstr{line: in.line, from: in.flags["from"], chown: in.flags["chown"]}
		for k := range in.flags {
			if k != "from" && k != "chown" {
				return nil, in.errorf("option --%s is not supported by cmd/wildcat-image", k)
			}
		}
		f := strings.Fields(in.rest)
		if strings.HasPrefix(in.rest, "[") {
			var err error
			if f, err = execForm(in, in.rest); err != nil {
				return nil, err
			}
		}
		if len(f) < 2 {
			return nil, in.errorf("expected SRC… DST, got %q", in.rest)
		}
		c.srcs, c.dst = f[:len(f)-1], f[len(f)-1]
		out = append(out, c)
	}
	return out, nil
}

// makeSteps are the build stage's RUN lines that run make: the build
// itself, which cmd/wildcat-image runs outside a container. ${NAME} and
// $NAME are the stage's ARGs (defaults, or args). Other RUN lines prepare
// the container (module download, empty directories) and are left out.
func makeSteps(st stage, args map[string]string) ([][]string, error) {
	vars := map[string]string{}
	var steps [][]string
	for _, in := range st.instrs {
		switch in.cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.rest, "=")
			if a, ok := args[k]; ok {
				v = a
			}
			vars[k] = v
		case "RUN":
			f := strings.Fields(in.rest)
			if len(f) == 0 || f[0] != "make" {
				continue
			}
			if strings.ContainsAny(in.rest, "&|;<>`'\"") {
				return nil, in.errorf("a make step must be one plain command, got %q", in.rest)
			}
			for i := range f {
				f[i] = expand(f[i], vars)
			}
			steps = append(steps, f)
		}
	}
	return steps, nil
}

func expand(s string, vars map[string]string) string {
	// Longest names first: $VERSION is not $V followed by ERSION.
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, k := range names {
		s = strings.ReplaceAll(s, "${"+k+"}", vars[k])
		s = strings.ReplaceAll(s, "$"+k, vars[k])
	}
	return s
}

// workdir is the stage's last WORKDIR ("/" when none).
func workdir(st stage) string {
	dir := "/"
	for _, in := range st.instrs {
		if in.cmd == "WORKDIR" {
			if path.IsAbs(in.rest) {
				dir = path.Clean(in.rest)
			} else {
				dir = path.Join(dir, in.rest)
			}
		}
	}
	return dir
}
