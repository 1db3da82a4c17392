package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/agent/config"
	"github.com/nullops/nullops/agent/docker"
	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/healthcheck"
	"github.com/nullops/nullops/protocol"
)

// healthcheckCommand is `nullops-agent healthcheck`: GET /healthz on the
// agent's own TLS listener (the image has no curl); exit 0 when it answers.
func healthcheckCommand() *cli.Command {
	cfg := config.Defaults()
	return confload.Command("healthcheck",
		"Exit 0 when this machine's agent answers GET /healthz on its listen address (for container health checks).",
		cfg, config.Aliases, func(_ []string) error {
			if err := healthcheck.HTTP(context.Background(), "https", cfg.Listen, "/healthz"); err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			return nil
		})
}

// uninstallOptions configure `nullops-agent uninstall`.
type uninstallOptions struct {
	Docker struct {
		Host string `description:"Docker Engine address (default: DOCKER_HOST or the local socket)." export:"true"`
	} `description:"Docker Engine access." export:"true"`
	NodeUID string `description:"Only the objects of this node (its uid, shown in the node's page and API); default: every object NullOps created on this Docker host." export:"true"`
}

// uninstallCommand is `nullops-agent uninstall`: removes every container,
// network and volume labelled nullops.managed=true on the Docker host.
func uninstallCommand() *cli.Command {
	opts := &uninstallOptions{}
	return confload.Command("uninstall",
		"Remove every container (running or not), network and volume NullOps created on this Docker host (label nullops.managed=true). Stop the agent first, or it re-creates what the control plane still wants.",
		opts, nil, func(_ []string) error { return uninstall(opts, os.Stdout) })
}

func uninstall(opts *uninstallOptions, out io.Writer) error {
	if opts.NodeUID != "" && !protocol.ValidNodeUID(opts.NodeUID) {
		return fmt.Errorf("nodeuid %q: a node uid is 1-64 letters, digits, '-' or '_'", opts.NodeUID)
	}
	rt, err := docker.New(docker.Config{Node: "uninstall", Host: opts.Docker.Host})
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := rt.Ping(ctx); err != nil {
		return err
	}
	removed, err := rt.Uninstall(ctx, opts.NodeUID)
	for _, name := range removed {
		fmt.Fprintln(out, "removed", name)
	}
	if err != nil {
		return err
	}
	what := "nullops.managed=true"
	if opts.NodeUID != "" {
		what += " and nullops.node_uid=" + opts.NodeUID
	}
	fmt.Fprintf(out, "uninstall: %d objects removed; nothing labelled %s is left\n", len(removed), what)
	return nil
}
