// Command nullops-server is the NullOps control plane.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/logging"
	"github.com/nullops/nullops/internal/version"
	"github.com/nullops/nullops/server/app"
	"github.com/nullops/nullops/server/config"
)

func main() {
	cfg := config.Defaults()
	root := confload.Command("nullops-server", "NullOps control plane: REST API, web UI, agent connections, ingress routes.", cfg, nil,
		func(_ []string) error { return run(cfg) })
	if err := root.AddCommand(adminCommand()); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-server:", err)
		os.Exit(1)
	}
	if err := root.AddCommand(version.Command("nullops-server")); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-server:", err)
		os.Exit(1)
	}
	if err := root.AddCommand(healthcheckCommand()); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-server:", err)
		os.Exit(1)
	}
	if err := root.AddCommand(secretsCommand()); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-server:", err)
		os.Exit(1)
	}
	if err := cli.Execute(root); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-server:", err)
		os.Exit(1)
	}
}

func run(cfg *config.Config) error {
	log := logging.New(cfg.Log, os.Stderr, "server")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Serve(ctx)
}
