package docker

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads compose.yaml as docker compose would with .env.example copied to .env, and
// the shell's variables replaced by shell.
func loadCompose(t *testing.T, shell map[string]string) *types.Project {
	t.Helper()
	env, err := dotenv.Read(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatalf(".env.example: %v", err)
	}
	maps.Copy(env, shell) // the shell wins over .env, as in docker compose
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, "compose.yaml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("conferencego", true) })
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return project
}

// envReads returns the names of the environment variables the Go package in dir reads: the
// string literals passed to a function named get or getenv (the services' loadConfig reads
// every variable through one of the two), so that the list cannot drift from the code.
func envReads(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			fn, ok := call.Fun.(*ast.Ident)
			if !ok || (fn.Name != "get" && fn.Name != "getenv") {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, err := strconv.Unquote(lit.Value)
				if err == nil {
					seen[name] = true
				}
			}
			return true
		})
	}
	if len(seen) == 0 {
		t.Fatalf("%s: found no get(…) or getenv(…) of a variable; has loadConfig changed shape?", dir)
	}
	return slices.Sorted(maps.Keys(seen))
}

// infraReads are the variables the infrastructure containers read: the official images' own,
// and those our scripts in docker/ name (${VAR…} in the Postgres init, #{VAR} in the ACL file).
// need are those without a default, which compose must set; may are all of them.
func infraReads(t *testing.T) (need, may map[string][]string) {
	t.Helper()
	scriptVars := func(path string, re *regexp.Regexp) []string {
		data, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			names = append(names, m[1])
		}
		return names
	}
	const initScript = "docker/postgres/10-conferencego.sh"
	image := []string{"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}
	acl := scriptVars("docker/redis/users.acl", regexp.MustCompile(`(?m)^user .*?#\{([A-Z_][A-Z0-9_]*)\}`))
	need = map[string][]string{
		"postgres": append(slices.Clone(image), scriptVars(initScript, regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*):\?`))...),
		"redis":    acl,
	}
	may = map[string][]string{
		"postgres": append(slices.Clone(image), scriptVars(initScript, regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`))...),
		"redis":    acl,
	}
	return need, may
}

func TestCompose(t *testing.T) {
	t.Parallel()
	project := loadCompose(t, nil)
	infraNeed, infraMay := infraReads(t)

	if got, want := slices.Sorted(maps.Keys(project.Services)), slices.Sorted(slices.Values(append(slices.Clone(services), "postgres", "redis"))); !slices.Equal(got, want) {
		t.Fatalf("services %v; want %v", got, want)
	}
	for name, svc := range project.Services {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hc := svc.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
				t.Errorf("no health check")
			}
			if svc.Restart != types.RestartPolicyUnlessStopped && svc.Restart != types.RestartPolicyAlways {
				t.Errorf("restart %q; want unless-stopped or always", svc.Restart)
			}
			for dep, d := range svc.DependsOn {
				if d.Condition != types.ServiceConditionHealthy {
					t.Errorf("depends_on %s with condition %q; want service_healthy", dep, d.Condition)
				}
			}
			for _, p := range svc.Ports {
				if p.HostIP != "127.0.0.1" {
					t.Errorf("port %d is published on %q; want 127.0.0.1 only", p.Target, p.HostIP)
				}
			}
			if svc.Build == nil {
				// An image of someone else's: pinned to a version, not a moving tag.
				_, tag, ok := strings.Cut(svc.Image, ":")
				if !ok || tag == "latest" || !regexp.MustCompile(`^v?\d+\.\d+`).MatchString(tag) {
					t.Errorf("image %q is not pinned to a release (at least major.minor)", svc.Image)
				}
			}

			var need, may []string
			if svc.Build != nil {
				if svc.Build.Dockerfile != "docker/Dockerfile" || svc.Build.Context != project.WorkingDir {
					t.Errorf("build %s with context %s; want docker/Dockerfile with the repository root as context", svc.Build.Dockerfile, svc.Build.Context)
				}
				if arg := svc.Build.Args["SERVICE"]; arg == nil || *arg != name {
					t.Errorf("build argument SERVICE %v; want %s", arg, name)
				}
				need = envReads(t, filepath.Join(root, name))
				may = need
				if !svc.ReadOnly || !slices.Contains(svc.CapDrop, "ALL") {
					t.Errorf("read_only %v, cap_drop %v; want a read-only file system and no capabilities", svc.ReadOnly, svc.CapDrop)
				}
				if !slices.Equal(hc.Test, []string{"CMD", "/healthcheck", "http://127.0.0.1" + portOf(t, svc) + "/readyz"}) {
					t.Errorf("health check %v; want the image's /healthcheck of /readyz on HTTP_ADDR's port", hc.Test)
				}
			} else {
				need, may = infraNeed[name], infraMay[name]
			}
			got := slices.Sorted(maps.Keys(svc.Environment))
			for _, v := range need {
				if !slices.Contains(got, v) {
					t.Errorf("environment lacks %s, which %s reads", v, name)
				}
			}
			for _, v := range got {
				if !slices.Contains(may, v) {
					t.Errorf("environment sets %s, which %s does not read", v, name)
				}
			}
			for k, v := range svc.Environment {
				if v == nil || *v == "" {
					t.Errorf("%s is empty", k)
				}
			}
		})
	}
}

func portOf(t *testing.T, svc types.ServiceConfig) string {
	t.Helper()
	addr := svc.Environment["HTTP_ADDR"]
	if addr == nil || !strings.HasPrefix(*addr, ":") {
		t.Fatalf("HTTP_ADDR %v; want :<port>", addr)
	}
	return *addr
}

// TestComposeSyncMode shows that SYNC_MODE from the shell (or .env) picks the mode of both
// services that read it.
func TestComposeSyncMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"push", "pull"} {
		project := loadCompose(t, map[string]string{"SYNC_MODE": mode})
		for _, name := range []string{"syncer", "api-attendee"} {
			if got := project.Services[name].Environment["SYNC_MODE"]; got == nil || *got != mode {
				t.Errorf("SYNC_MODE=%s: %s gets SYNC_MODE %v", mode, name, got)
			}
		}
	}
}

// TestComposeTransport shows that OUTBOX_TRANSPORT from the shell (or .env) picks the transport of
// api-conference, the syncer and the Postgres init alike (a writer and a relay on different
// transports would publish nothing), and that Postgres runs with the wal_level it needs.
func TestComposeTransport(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"table", "logical"} {
		project := loadCompose(t, map[string]string{"OUTBOX_TRANSPORT": transport})
		for svc, name := range map[string]string{"api-conference": "OUTBOX_TRANSPORT", "syncer": "SYNC_OUTBOX_TRANSPORT", "postgres": "OUTBOX_TRANSPORT"} {
			if got := project.Services[svc].Environment[name]; got == nil || *got != transport {
				t.Errorf("OUTBOX_TRANSPORT=%s: %s gets %s %v", transport, svc, name, got)
			}
		}
		slots := map[string]string{}
		for svc, name := range map[string]string{"api-conference": "OUTBOX_SLOT", "syncer": "SYNC_SLOT", "postgres": "OUTBOX_SLOT"} {
			if v := project.Services[svc].Environment[name]; v != nil {
				slots[svc] = *v
			}
		}
		if len(slots) != 3 || slots["syncer"] != slots["api-conference"] || slots["postgres"] != slots["api-conference"] {
			t.Errorf("slot names %v: want one name everywhere", slots)
		}
	}
	project := loadCompose(t, nil)
	if cmd := strings.Join(project.Services["postgres"].Command, " "); !strings.Contains(cmd, "wal_level=logical") {
		t.Errorf("postgres runs %q; want wal_level=logical, so that either transport runs without a restart", cmd)
	}
}

// TestComposeCredentials shows that every service connects as its own user, with the password
// the servers were given for that user, and the names the Postgres init and the ACL file use.
func TestComposeCredentials(t *testing.T) {
	t.Parallel()
	project := loadCompose(t, nil)
	env := func(svc, name string) string {
		t.Helper()
		v := project.Services[svc].Environment[name]
		if v == nil {
			t.Fatalf("%s: %s is not set", svc, name)
		}
		return *v
	}
	tests := []struct {
		svc, variable, user, passwordOn, passwordVar string
	}{
		{"api-conference", "DATABASE_URL", "conference", "postgres", "CONFERENCE_DB_PASSWORD"},
		{"api-attendee", "DATABASE_URL", "attendee", "postgres", "ATTENDEE_DB_PASSWORD"},
		{"syncer", "DATABASE_URL", "syncer", "postgres", "SYNCER_DB_PASSWORD"},
		{"api-attendee", "REDIS_URL", "attendee", "redis", "REDIS_ATTENDEE_PASSWORD"},
		{"syncer", "REDIS_URL", "syncer", "redis", "REDIS_SYNCER_PASSWORD"},
	}
	users := map[string]bool{}
	for _, tt := range tests {
		u, err := url.Parse(env(tt.svc, tt.variable))
		if err != nil {
			t.Fatalf("%s %s: %v", tt.svc, tt.variable, err)
		}
		pw, _ := u.User.Password()
		if u.User.Username() != tt.user || pw != env(tt.passwordOn, tt.passwordVar) || pw == "" {
			t.Errorf("%s %s connects as %q with another password than %s gives %s", tt.svc, tt.variable, u.User.Username(), tt.passwordOn, tt.passwordVar)
		}
		if users[u.Scheme+tt.user] {
			t.Errorf("%s user %s is shared", u.Scheme, tt.user)
		}
		users[u.Scheme+tt.user] = true
	}
	// The role names are the init script's defaults, and the ACL file's users.
	initScript, err := os.ReadFile(filepath.Join(root, "docker/postgres/10-conferencego.sh"))
	if err != nil {
		t.Fatal(err)
	}
	acl, err := os.ReadFile(filepath.Join(root, "docker/redis/users.acl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"conference", "attendee", "syncer"} {
		if !strings.Contains(string(initScript), "_DB_USER:-"+role+"}") {
			t.Errorf("the Postgres init does not name role %s by default", role)
		}
	}
	for _, user := range []string{"attendee", "syncer"} {
		if !regexp.MustCompile(`(?m)^user ` + user + ` on #\{REDIS_` + strings.ToUpper(user) + `_PASSWORD\} `).Match(acl) {
			t.Errorf("users.acl has no user %s with password REDIS_%s_PASSWORD", user, strings.ToUpper(user))
		}
	}
	// Passwords go into URLs unescaped.
	for k, v := range project.Environment {
		if strings.HasSuffix(k, "_PASSWORD") || k == "SYNC_TOKEN" {
			if url.PathEscape(v) != v || strings.ContainsAny(v, "@:/?#") {
				t.Errorf(".env.example: %s has characters a URL would need escaped", k)
			}
		}
	}
}

// TestEnvFiles shows that .env.example is committed and says what it is, and that .env, which
// holds the real passwords, cannot be committed.
func TestEnvFiles(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(string(data), "\n"); !strings.Contains(first, "DEVELOPMENT VALUES") {
		t.Errorf(".env.example begins %q; want it to say at once that its values are for development", first)
	}
	if _, err := exec.LookPath("git"); err != nil {
		unavailable(t, "git is not installed: cannot ask it what it ignores")
	}
	for file, wantIgnored := range map[string]bool{".env": true, ".env.example": false} {
		cmd := exec.Command("git", "check-ignore", "--quiet", "--no-index", file)
		cmd.Dir = root
		err := cmd.Run()
		if ignored := err == nil; ignored != wantIgnored {
			t.Errorf("git check-ignore %s: ignored %v (%v), want %v", file, ignored, err, wantIgnored)
		}
	}
}
