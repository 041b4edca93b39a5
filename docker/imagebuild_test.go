package docker

import (
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// The images cannot be built here (no Docker engine), so the tests replay docker/Dockerfile on
// this machine instead and test what that produces: the build context filtered by the
// Dockerfile's ignore file, the build stage's COPY lines and go commands run in a directory
// standing for the stage's file system, and the final stage's COPY --from lines. What the
// replay leaves out: `go mod download` (it only fills the module cache, which here is the
// machine's) and RUN lines that are not go commands (guards such as checking SERVICE).

var (
	contextOnce sync.Once
	contextDir  string
	contextErr  error

	imagesMu sync.Mutex
	images   = map[string]*imageBuild{}
)

type imageBuild struct {
	once sync.Once
	root string // the final image's file system
	err  error
}

// buildContext returns a copy of the build context docker build would send: the repository
// root less what docker/Dockerfile.dockerignore excludes.
func buildContext(t *testing.T) string {
	t.Helper()
	contextOnce.Do(func() {
		contextDir = filepath.Join(binDir, "context")
		contextErr = copyContext(root, contextDir, filepath.Join(root, "docker", "Dockerfile.dockerignore"))
	})
	if contextErr != nil {
		t.Fatalf("build context: %v", contextErr)
	}
	return contextDir
}

func copyContext(src, dst, ignoreFile string) error {
	f, err := os.Open(ignoreFile)
	if err != nil {
		return err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return err
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if d.IsDir() {
			// An excluded directory is still walked while an exception could bring back
			// something inside it, as docker does.
			if excluded && !exceptionBelow(pm, filepath.ToSlash(rel)) {
				return filepath.SkipDir
			}
			return nil
		}
		if excluded || !d.Type().IsRegular() {
			return nil
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
}

func exceptionBelow(pm *patternmatcher.PatternMatcher, dir string) bool {
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", dir+"/") {
			return true
		}
	}
	return false
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyPath copies src (a file, or a directory's contents) to dst, as COPY does.
func copyPath(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		if strings.HasSuffix(dst, "/") {
			dst = filepath.Join(dst, filepath.Base(src))
		}
		return copyFile(src, dst)
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
}

// image returns the file system of the final image of service (a directory), built once per
// test binary by replaying docker/Dockerfile with SERVICE=service.
func image(t *testing.T, service string) string {
	t.Helper()
	imagesMu.Lock()
	b, ok := images[service]
	if !ok {
		b = &imageBuild{}
		images[service] = b
	}
	imagesMu.Unlock()
	b.once.Do(func() {
		ctx := buildContext(t)
		b.root, b.err = replayDockerfile(t, ctx, service)
	})
	if b.err != nil {
		t.Fatalf("replay docker/Dockerfile with SERVICE=%s: %v", service, b.err)
	}
	return b.root
}

func replayDockerfile(t *testing.T, contextDir, service string) (string, error) {
	stages := parseDockerfile(t, filepath.Join(root, "docker", "Dockerfile"))
	dir := filepath.Join(binDir, "image-"+service)
	fsys := map[string]string{} // stage name -> directory standing for its file system
	lex := shell.NewLex('\\')
	for i, st := range stages {
		stageRoot := filepath.Join(dir, fmt.Sprintf("stage%d", i))
		if err := os.MkdirAll(stageRoot, 0o755); err != nil {
			return "", err
		}
		fsys[st.Name] = stageRoot
		in := func(p string) string { return filepath.Join(stageRoot, p) }
		wd := "/"
		env := []string{}
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.WorkdirCommand:
				wd = filepath.Join(wd, c.Path)
				if err := os.MkdirAll(in(wd), 0o755); err != nil {
					return "", err
				}
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					env = append(env, kv.Key+"="+kv.Value)
				}
			case *instructions.ArgCommand:
				for _, a := range c.Args {
					if a.Key == "SERVICE" {
						env = append(env, "SERVICE="+service)
					}
				}
			case *instructions.CopyCommand:
				// A destination ending in / is a directory to copy into: keep the slash.
				dest := in(c.DestPath)
				if !filepath.IsAbs(c.DestPath) {
					dest = in(filepath.Join(wd, c.DestPath))
				}
				if strings.HasSuffix(c.DestPath, "/") {
					dest += "/"
				}
				from := contextDir
				if c.From != "" {
					from = fsys[c.From]
				}
				for _, src := range c.SourcePaths {
					err := copyPath(filepath.Join(from, src), dest)
					if c.From != "" && os.IsNotExist(err) {
						// Not made by the build stage: it comes from the stage's base image
						// (CA certificates), which the replay does not have.
						continue
					}
					if err != nil {
						return "", fmt.Errorf("COPY %s %s: %w", src, c.DestPath, err)
					}
				}
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				for _, part := range strings.Split(line, "&&") {
					words, err := lex.ProcessWords(strings.TrimSpace(part), shell.EnvsFromSlice(env))
					if err != nil {
						return "", fmt.Errorf("RUN %s: %w", line, err)
					}
					var cmdEnv []string
					for len(words) > 0 && strings.Contains(words[0], "=") {
						cmdEnv, words = append(cmdEnv, words[0]), words[1:]
					}
					if len(words) < 2 || words[0] != "go" || (words[1] == "mod" && slices.Contains(words, "download")) {
						continue
					}
					for j, w := range words {
						if filepath.IsAbs(w) {
							words[j] = in(w)
						}
					}
					run := exec.Command("go", words[1:]...)
					run.Dir = in(wd)
					run.Env = slices.Concat(os.Environ(), env, cmdEnv)
					if out, err := run.CombinedOutput(); err != nil {
						return "", fmt.Errorf("RUN %s: %v\n%s", strings.Join(words, " "), err, out)
					}
				}
			}
		}
	}
	return fsys[stages[len(stages)-1].Name], nil
}

// TestImages replays the Dockerfile for each service and checks the final image: its
// ENTRYPOINT is there, and it and the health check are static executables.
func TestImages(t *testing.T) {
	t.Parallel()
	entrypoint := entrypoint(t)
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			t.Parallel()
			img := image(t, svc)
			for _, bin := range []string{entrypoint, "/healthcheck"} {
				f, err := elf.Open(filepath.Join(img, bin))
				if err != nil {
					t.Fatalf("%s in the image: %v", bin, err)
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
						t.Errorf("%s is dynamically linked; the final image has no libc", bin)
					}
				}
				f.Close()
			}
			if _, err := os.Stat(filepath.Join(img, ".env")); err == nil {
				t.Errorf(".env reached the image")
			}
		})
	}
	// The context holds no secret and no local state.
	ctx := buildContext(t)
	for _, p := range []string{".env", ".git", "bin", "out", "tools"} {
		if _, err := os.Stat(filepath.Join(ctx, p)); err == nil {
			t.Errorf("the build context holds %s", p)
		}
	}
}
