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
	"github.com/nullops/nullops/agent/kube"
	"github.com/nullops/nullops/agent/runtime"
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

// uninstallOptions configure `nullops-agent uninstall`. Runtime, Docker
// and Kubernetes are the agent's own option types, so the environment an
// agent runs with (e.g. `docker-compose run --rm agent uninstall`, or the
// agent pod's NULLOPS_RUNTIME and NULLOPS_KUBERNETES_* variables) is valid
// for uninstall too and points it at the same Docker host or cluster.
type uninstallOptions struct {
	Runtime    string            `description:"What the agent ran the deployments on: docker (the Docker Engine of docker.host) or kubernetes (the cluster of kubernetes.kubeconfig, in-cluster by default)." export:"true"`
	Docker     config.Docker     `description:"Docker Engine access (runtime docker; only docker.host is used)." export:"true"`
	Kubernetes config.Kubernetes `description:"Kubernetes API access (runtime kubernetes; only kubernetes.kubeconfig and kubernetes.context are used)." export:"true"`
	NodeUID    string            `description:"Only the objects of this node (its uid, shown in the node's page and API); default: every object NullOps created on this Docker host or cluster." export:"true"`
}

// uninstaller is what uninstall needs of a runtime.
type uninstaller interface {
	Ping(ctx context.Context) error
	Uninstall(ctx context.Context, uid string) ([]string, error)
	Close() error
}

// uninstallCommand is `nullops-agent uninstall`: removes every container,
// network and volume labelled nullops.managed=true on the Docker host, or
// every namespace labelled so on the cluster (runtime kubernetes).
func uninstallCommand() *cli.Command {
	opts := &uninstallOptions{Runtime: runtime.Docker}
	return confload.Command("uninstall",
		"Remove every container (running or not), network and volume NullOps created on this Docker host (label nullops.managed=true) — with --runtime=kubernetes every namespace labelled so on the cluster, with everything in it. Stop the agent first, or it re-creates what the control plane still wants.",
		opts, nil, func(_ []string) error { return uninstall(opts, os.Stdout) })
}

func uninstall(opts *uninstallOptions, out io.Writer) error {
	if opts.NodeUID != "" && !protocol.ValidNodeUID(opts.NodeUID) {
		return fmt.Errorf("nodeuid %q: a node uid is 1-64 letters, digits, '-' or '_'", opts.NodeUID)
	}
	var (
		rt    uninstaller
		err   error
		where string
	)
	switch opts.Runtime {
	case runtime.Docker, "":
		rt, err = docker.New(docker.Config{Node: "uninstall", Host: opts.Docker.Host})
		where = "on the Docker host"
	case runtime.Kubernetes:
		rt, err = kube.New(kube.Config{Node: "uninstall", Kubeconfig: opts.Kubernetes.Kubeconfig, Context: opts.Kubernetes.Context})
		where = "on the cluster (namespaces)"
	default:
		return fmt.Errorf("runtime: %q is not a runtime (docker or kubernetes)", opts.Runtime)
	}
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
	fmt.Fprintf(out, "uninstall: %d objects removed; nothing labelled %s is left %s\n", len(removed), what, where)
	return nil
}
