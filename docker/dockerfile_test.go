package docker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/mod/modfile"
)

// dockerfiles lists every Dockerfile of the repository (docker/Dockerfile and any
// docker/*.Dockerfile or docker/Dockerfile.* added later, ignore files aside).
func dockerfiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"Dockerfile", "Dockerfile.*", "*.Dockerfile"} {
		m, err := filepath.Glob(filepath.Join(root, "docker", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if !strings.HasSuffix(f, ".dockerignore") {
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		t.Fatal("no Dockerfile under docker/")
	}
	return files
}

// parseDockerfile parses path with BuildKit's parser into its stages, failing t on any error or
// lint warning the parser reports.
func parseDockerfile(t *testing.T, path string) []instructions.Stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning: %s", path, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("%s:%v: lint %s: %s", path, loc, rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return stages
}

// goWorkVersion is the Go version go.work names.
func goWorkVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := modfile.ParseWork("go.work", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wf.Go == nil {
		t.Fatal("go.work names no go version")
	}
	return wf.Go.Version
}

func TestDockerfiles(t *testing.T) {
	t.Parallel()
	goVersion := goWorkVersion(t)
	for _, path := range dockerfiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			stages := parseDockerfile(t, path)
			if len(stages) < 2 {
				t.Fatalf("%d stage(s); want a build stage and a final stage", len(stages))
			}
			build, final := stages[0], stages[len(stages)-1]

			// The build stage's Go is go.work's: golang:<version> or golang:<version>-<variant>.
			image, tag, _ := strings.Cut(build.BaseName, ":")
			if image != "golang" || (tag != goVersion && !strings.HasPrefix(tag, goVersion+"-")) {
				t.Errorf("build stage FROM %s; want golang:%s (go.work's version), or a variant of it", build.BaseName, goVersion)
			}
			if final.BaseName != "scratch" && !strings.Contains(final.BaseName, "distroless") {
				t.Errorf("final stage FROM %s; want scratch or distroless: no shell, no package manager", final.BaseName)
			}
			for _, st := range stages {
				if _, tag, ok := strings.Cut(st.BaseName, ":"); st.BaseName != "scratch" && !isStage(stages, st.BaseName) && (!ok || tag == "latest") {
					t.Errorf("FROM %s is not pinned to a version", st.BaseName)
				}
			}

			var user string
			var entrypoint []string
			copied := map[string]string{} // destination in the final image -> source in the build stage
			for _, cmd := range final.Commands {
				switch c := cmd.(type) {
				case *instructions.UserCommand:
					user = c.User
				case *instructions.EntrypointCommand:
					if c.PrependShell {
						t.Errorf("ENTRYPOINT %v is in shell form; the final image has no shell", c.CmdLine)
					}
					entrypoint = c.CmdLine
				case *instructions.CopyCommand:
					if c.From == build.Name {
						for _, src := range c.SourcePaths {
							copied[c.DestPath] = src
						}
					}
				case *instructions.RunCommand:
					t.Errorf("RUN %v in the final stage: it has no shell, and should need none", c.CmdLine)
				}
			}
			uid, _, _ := strings.Cut(user, ":")
			if uid == "" || uid == "0" || uid == "root" || strings.Trim(uid, "0123456789") != "" {
				t.Errorf("final stage USER %q; want a numeric non-root user (scratch has no /etc/passwd)", user)
			}
			if len(entrypoint) != 1 {
				t.Fatalf("ENTRYPOINT %v; want the binary alone", entrypoint)
			}
			src, ok := copied[entrypoint[0]]
			if !ok {
				t.Fatalf("ENTRYPOINT %s is not copied from the build stage", entrypoint[0])
			}
			if out := goBuildOutputs(t, build); !slices.Contains(out, src) {
				t.Errorf("ENTRYPOINT %s is %s of the build stage, which no go build -o writes (those write %v)", entrypoint[0], src, out)
			}
		})
	}
}

func isStage(stages []instructions.Stage, name string) bool {
	return slices.ContainsFunc(stages, func(s instructions.Stage) bool { return s.Name == name })
}

// goBuildOutputs returns the -o paths of the build stage's go build commands.
func goBuildOutputs(t *testing.T, build instructions.Stage) []string {
	t.Helper()
	var outs []string
	for _, words := range goBuildCommands(t, build, nil) {
		if i := slices.Index(words, "-o"); i >= 0 && i+1 < len(words) {
			outs = append(outs, words[i+1])
		}
	}
	return outs
}

// goBuildCommands returns the words of each go build command that the build stage's RUN lines
// hold, with variables expanded from env (unknown ones become empty).
func goBuildCommands(t *testing.T, build instructions.Stage, env []string) [][]string {
	t.Helper()
	lex := shell.NewLex('\\')
	var cmds [][]string
	for _, cmd := range build.Commands {
		run, ok := cmd.(*instructions.RunCommand)
		if !ok {
			continue
		}
		line := strings.Join(run.CmdLine, " ")
		for _, part := range strings.Split(line, "&&") {
			words, err := lex.ProcessWords(strings.TrimSpace(part), shell.EnvsFromSlice(env))
			if err != nil {
				t.Fatalf("RUN %s: %v", line, err)
			}
			// Leading NAME=value words set the command's environment.
			for len(words) > 0 && strings.Contains(words[0], "=") {
				words = words[1:]
			}
			if len(words) >= 2 && words[0] == "go" && words[1] == "build" {
				cmds = append(cmds, words)
			}
		}
	}
	return cmds
}

// entrypoint is the program the final stage of docker/Dockerfile runs.
func entrypoint(t *testing.T) string {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join(root, "docker", "Dockerfile"))
	for _, cmd := range slices.Backward(stages[len(stages)-1].Commands) {
		if e, ok := cmd.(*instructions.EntrypointCommand); ok && len(e.CmdLine) > 0 {
			return e.CmdLine[0]
		}
	}
	t.Fatal("docker/Dockerfile: the final stage has no ENTRYPOINT")
	return ""
}
