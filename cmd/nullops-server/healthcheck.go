package main

import (
	"context"
	"fmt"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/internal/healthcheck"
	"github.com/nullops/nullops/server/config"
)

// healthcheckCommand is `nullops-server healthcheck`: GET /healthz on the
// server's own listener (the image has no curl); exit 0 when it answers.
func healthcheckCommand() *cli.Command {
	cfg := config.Defaults()
	return confload.Command("healthcheck",
		"Exit 0 when this machine's server answers GET /healthz on its listen address (for container health checks).",
		cfg, nil, func(_ []string) error {
			scheme := "http"
			if cfg.TLS.CertFile != "" {
				scheme = "https"
			}
			if err := healthcheck.HTTP(context.Background(), scheme, cfg.Listen, "/healthz"); err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			return nil
		})
}
