// Package config is the typed configuration of nullops-ingress, loaded by
// internal/confload from a file, NULLOPS_* environment variables and flags
// (e.g. NULLOPS_SERVER_URL, NULLOPS_TOKEN, NULLOPS_LISTEN, NULLOPS_STATEDIR).
package config

import (
	"fmt"
	"net"
	"net/url"
	"time"

	ptypes "github.com/traefik/paerser/types"

	"github.com/nullops/nullops/internal/logging"
)

// Config is the whole ingress configuration.
type Config struct {
	ConfigFile string         `description:"Configuration file (TOML or YAML); also NULLOPS_CONFIGFILE." export:"true"`
	Listen     string         `description:"HTTP address the ingress serves deployments on." export:"true"`
	Server     Server         `description:"The NullOps control plane the route table comes from." export:"true"`
	Token      string         `description:"Ingress token (the server's ingress.token), sent as Authorization: Bearer." loggable:"false"`
	StateDir   string         `description:"Directory keeping the last good route table across restarts." export:"true"`
	TLS        TLS            `description:"HTTPS with a (wildcard) certificate, in addition to HTTP." export:"true"`
	Metrics    Metrics        `description:"Prometheus /metrics and /healthz." export:"true"`
	AccessLog  bool           `description:"Log one line per proxied request (JSON, on stdout)." export:"true"`
	Activity   Activity       `description:"Reporting traffic to the server as deployment activity." export:"true"`
	UI         UI             `description:"The NullOps web UI the ingress's own pages link to." export:"true"`
	Drain      Drain          `description:"Stopping, and handing the listening sockets to a new nullops-ingress, without dropping a request." export:"true"`
	Log        logging.Config `description:"Logging." export:"true"`
}

// Server locates the control plane.
type Server struct {
	URL    string          `description:"Base URL of nullops-server, e.g. http://nullops-server:8080." export:"true"`
	Wait   ptypes.Duration `description:"How long one long-poll for route changes may wait (at most 60s)." export:"true"`
	Deltas bool            `description:"Ask for incremental route updates (only the changed routes); false fetches the whole table on every change." export:"true"`
}

// TLS serves HTTPS when CertFile and KeyFile are set.
type TLS struct {
	Listen   string `description:"HTTPS address." export:"true"`
	CertFile string `description:"PEM certificate (e.g. *.qa.example.com)." export:"true"`
	KeyFile  string `description:"PEM private key." export:"true"`
}

// Metrics configures the separate metrics listener.
type Metrics struct {
	Listen string `description:"Address of /metrics and /healthz; empty disables them." export:"true"`
}

// Activity configures traffic reporting.
type Activity struct {
	Interval ptypes.Duration `description:"How often the last request time per deployment is reported." export:"true"`
}

// UI locates the NullOps web UI for people.
type UI struct {
	URL string `description:"Public URL of the NullOps web UI (e.g. https://nullops.example.com): the deploying, offline, deleted and unknown-host pages link to the deployment there. Empty: no links." export:"true"`
}

// Drain configures how a stopping ingress finishes its connections.
type Drain struct {
	Timeout ptypes.Duration `description:"How long a stopping (or handed-over) ingress waits for its in-flight requests and open WebSockets before it closes them." export:"true"`
	Idle    ptypes.Duration `description:"How long a keep-alive connection may stay idle while the ingress drains before it is closed (a request arriving sooner is answered, with Connection: close)." export:"true"`
}

// Defaults returns the default configuration.
func Defaults() *Config {
	return &Config{
		Listen:    ":80",
		Server:    Server{Wait: ptypes.Duration(30 * time.Second), Deltas: true},
		StateDir:  "/var/lib/nullops-ingress",
		TLS:       TLS{Listen: ":443"},
		Metrics:   Metrics{Listen: ":8082"},
		AccessLog: true,
		Activity:  Activity{Interval: ptypes.Duration(30 * time.Second)},
		Drain:     Drain{Timeout: ptypes.Duration(30 * time.Second), Idle: ptypes.Duration(5 * time.Second)},
		Log:       logging.Defaults(),
	}
}

// Validate checks every value and names the bad key.
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port: %v", c.Listen, err)
	}
	if c.Server.URL == "" {
		return fmt.Errorf("server.url (NULLOPS_SERVER_URL): required, e.g. http://nullops-server:8080")
	}
	u, err := url.Parse(c.Server.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("server.url: %q is not an http(s) URL", c.Server.URL)
	}
	if c.Token == "" {
		return fmt.Errorf("token (NULLOPS_TOKEN): required; it is the server's ingress.token")
	}
	if c.StateDir == "" {
		return fmt.Errorf("statedir: required (the last good route table is kept there)")
	}
	if c.Server.Wait <= 0 || time.Duration(c.Server.Wait) > 60*time.Second {
		return fmt.Errorf("server.wait: must be between 0 and 60s")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("tls.certfile and tls.keyfile: set both or neither")
	}
	if c.TLS.CertFile != "" {
		if _, _, err := net.SplitHostPort(c.TLS.Listen); err != nil {
			return fmt.Errorf("tls.listen: %q is not host:port: %v", c.TLS.Listen, err)
		}
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %q is not host:port: %v", c.Metrics.Listen, err)
		}
	}
	if c.UI.URL != "" {
		u, err := url.Parse(c.UI.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("ui.url: %q is not an http(s) URL without query or fragment", c.UI.URL)
		}
	}
	if c.Drain.Timeout <= 0 || c.Drain.Idle <= 0 {
		return fmt.Errorf("drain.timeout and drain.idle: must be positive")
	}
	if c.Activity.Interval <= 0 {
		return fmt.Errorf("activity.interval: must be positive")
	}
	return nil
}
