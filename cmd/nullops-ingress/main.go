// Command nullops-ingress is the NullOps subdomain reverse proxy: it routes
// <service>.<deployment>.<environment>.<base-domain> to the deployments'
// services, following the route table nullops-server publishes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/ingress/app"
	"github.com/nullops/nullops/ingress/config"
	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/healthcheck"
	"github.com/nullops/nullops/internal/logging"
	"github.com/nullops/nullops/internal/version"
)

func main() {
	cfg := config.Defaults()
	root := confload.Command("nullops-ingress", "NullOps ingress: routes deployment hosts to their services, fed by nullops-server's route table.", cfg, nil,
		func(_ []string) error { return run(cfg) })
	if err := root.AddCommand(version.Command("nullops-ingress")); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-ingress:", err)
		os.Exit(1)
	}
	if err := root.AddCommand(healthcheckCommand()); err != nil {
		fmt.Fprintln(os.Stderr, "nullops-ingress:", err)
		os.Exit(1)
	}
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

// healthcheckCommand is `nullops-ingress healthcheck`: GET /healthz on the
// metrics listener, or — when metrics.listen is empty — a connection to the
// HTTP listener (the image has no curl); exit 0 when it answers.
func healthcheckCommand() *cli.Command {
	cfg := config.Defaults()
	return confload.Command("healthcheck",
		"Exit 0 when this machine's ingress answers GET /healthz on metrics.listen (or accepts connections on listen when metrics are off); for container health checks.",
		cfg, nil, func(_ []string) error {
			var err error
			if cfg.Metrics.Listen != "" {
				err = healthcheck.HTTP(context.Background(), "http", cfg.Metrics.Listen, "/healthz")
			} else {
				err = healthcheck.TCP(context.Background(), cfg.Listen)
			}
			if err != nil {
				return errors.New("unhealthy: " + err.Error())
			}
			return nil
		})
}
