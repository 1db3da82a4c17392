// Command nullops-ingress is the NullOps subdomain reverse proxy: it routes
// <service>.<deployment>.<environment>.<base-domain> to the deployments'
// services, following the route table nullops-server publishes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/ingress/app"
	"github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/logging"
)

func main() {
	cfg := config.Defaults()
	root := confload.Command("nullops-ingress", "NullOps ingress: routes deployment hosts to their services, fed by nullops-server's route table.", cfg, nil,
		func(_ []string) error { return run(cfg) })
	if err := cli.Execute(root); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-ingress:", err)
		os.Exit(1)
	}
}

func run(cfg *config.Config) error {
	log := logging.New(cfg.Log, os.Stderr, "ingress")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	return a.Serve(ctx)
}
