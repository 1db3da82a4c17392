// Command nullops-agent runs on every node: a TLS WebSocket server the
// NullOps control plane dials, executing deployments through Docker.
//
//	docker run -d -p 5000:5000 -e AGENT_TOKEN=<token> \
//	  -v /var/run/docker.sock:/var/run/docker.sock \
//	  -v /var/lib/nullops-agent:/data nullops/agent:latest
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/agent/app"
	"github.com/nullops/nullops/agent/config"
	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/logging"
	"github.com/nullops/nullops/internal/version"
)

func main() {
	cfg := config.Defaults()
	root := confload.Command("nullops-agent", "NullOps node agent: TLS WebSocket endpoint for the control plane, runs deployments through Docker.",
		cfg, config.Aliases, func(_ []string) error { return run(cfg) })
	for _, c := range []*cli.Command{healthcheckCommand(), uninstallCommand(), version.Command("nullops-agent")} {
		if err := root.AddCommand(c); err != nil {
			fmt.Fprintln(os.Stderr, "nullops-agent:", err)
			os.Exit(1)
		}
	}
	if err := cli.Execute(root); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-agent:", err)
		os.Exit(1)
	}
}

func run(cfg *config.Config) error {
	log := logging.New(cfg.Log, os.Stderr, "agent")
	if cfg.NodeName != "" {
		log = log.With().Str("node", cfg.NodeName).Logger()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	return a.Serve(ctx)
}
