package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nullops/nullops/internal/registryconf"
)

// Images scripts/demo.sh builds, and the repositories and tags they are
// pushed to in the local registry.
var pushes = []struct {
	local, repo string
	tags        []string
}{
	{"nullops-demo/web:latest", "demo/web", []string{"v1.0.0", "v1.1.0", "v1.2.0", "feature-login"}},
	{"nullops/plugin-http-wait:latest", "plugins/http-wait", []string{"1.0.0"}},
	{"nullops/plugin-exec:latest", "plugins/exec", []string{"1.0.0"}},
	{"nullops/plugin-postgres:latest", "plugins/postgres", []string{"1.0.0"}},
}

// startRegistry runs Debian's docker-registry on loopback with one
// htpasswd user, storing images in the run dir.
func (d *demo) startRegistry(ctx context.Context) error {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return fmt.Errorf("docker-registry is not installed (scripts/setup.sh installs it): %w", err)
	}
	dir, err := filepath.Abs(filepath.Join(d.o.runDir, "registry"))
	if err != nil {
		return err
	}
	cfgPath, err := registryconf.Write(dir, d.registryHost(), "nullops-demo", registryUser, d.creds.RegistryPassword, bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	p, err := d.start("registry", bin, []string{"serve", cfgPath})
	if err != nil {
		return err
	}
	return p.waitHTTP(ctx, "http://"+d.registryHost()+"/v2/", 20*time.Second)
}

// pushImages logs Docker in to the local registry (in a private
// DOCKER_CONFIG) and pushes every demo image with its tags.
func (d *demo) pushImages(ctx context.Context) error {
	cfgDir, err := filepath.Abs(filepath.Join(d.o.runDir, "docker"))
	if err != nil {
		return err
	}
	run := func(stdin string, args ...string) error {
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run(d.creds.RegistryPassword, "login", "-u", registryUser, "--password-stdin", d.registryHost()); err != nil {
		return err
	}
	for _, p := range pushes {
		for _, tag := range p.tags {
			ref := d.registryHost() + "/" + p.repo + ":" + tag
			if err := run("", "tag", p.local, ref); err != nil {
				return fmt.Errorf("%w (did scripts/demo.sh build %s?)", err, p.local)
			}
			if err := run("", "push", ref); err != nil {
				return err
			}
			_ = run("", "rmi", ref) // keep only the local name; the agent pulls
		}
	}
	return nil
}
