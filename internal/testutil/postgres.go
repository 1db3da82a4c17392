package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// Postgres is a private PostgreSQL instance of one test, for tests that stop
// and start the database (never stop the shared one other tests use).
type Postgres struct {
	URL  string
	dir  string
	bin  string
	port int
}

// StartPostgres initialises and starts a private PostgreSQL cluster on a
// free loopback port (as the postgres user when running as root); it is
// stopped and removed in t.Cleanup.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(bins)
	if len(bins) == 0 {
		t.Fatal("PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/setup.sh (it installs postgresql)")
	}
	p := &Postgres{bin: bins[len(bins)-1], port: FreePort(t)}
	dir, err := os.MkdirTemp("", "nullops-test-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		_, _ = p.ctl("stop", "-m", "immediate", "-w")
		_ = os.RemoveAll(dir)
	})
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user for PostgreSQL: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.run(filepath.Join(p.bin, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 50\n", p.port, dir)
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	p.Start(t)
	return p
}

// Start starts the instance and waits until it accepts connections.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	if out, err := p.ctl("start", "-w", "-t", "120", "-l", filepath.Join(p.dir, "server.log")); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
		t.Fatalf("start PostgreSQL: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the instance at once (immediate shutdown: connections drop).
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	if out, err := p.ctl("stop", "-m", "immediate", "-w"); err != nil {
		t.Fatalf("stop PostgreSQL: %v\n%s", err, out)
	}
}

func (p *Postgres) ctl(args ...string) ([]byte, error) {
	return p.run(filepath.Join(p.bin, "pg_ctl"), append([]string{"-D", p.dir}, args...)...)
}

func (p *Postgres) run(bin string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if os.Getuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	return cmd.CombinedOutput()
}
