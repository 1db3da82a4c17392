// Package config is the typed configuration of nullops-server, loaded by
// internal/confload from a file, NULLOPS_* environment variables and flags.
package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"time"

	ptypes "github.com/traefik/paerser/types"

	"github.com/nullops/nullops/internal/logging"
)

// Config is the whole server configuration.
type Config struct {
	ConfigFile string         `description:"Configuration file (TOML or YAML); also NULLOPS_CONFIGFILE." export:"true"`
	Listen     string         `description:"Address of the HTTP API and web UI." export:"true"`
	PublicURL  string         `description:"URL users reach the UI at (used in links); defaults to http://<listen>." export:"true"`
	Log        logging.Config `description:"Logging." export:"true"`
	Database   Database       `description:"PostgreSQL." export:"true"`
	Secret     Secret         `description:"Encryption of secrets, registry credentials and agent tokens." export:"true"`
	Admin      Admin          `description:"First administrator, created at start when no user exists." export:"true"`
	TLS        TLS            `description:"TLS for the HTTP API and UI (optional)." export:"true"`
	HTTP       HTTP           `description:"Timeouts of the HTTP server's connections." export:"true"`
	Session    Session        `description:"Browser sessions." export:"true"`
	Agents     Agents         `description:"Connections to node agents." export:"true"`
	HA         HA             `description:"Several nullops-server replicas sharing one database (high availability)." export:"true"`
	Ingress    Ingress        `description:"Publishing the ingress route table." export:"true"`
	Cleanup    Cleanup        `description:"Auto-cleanup of expired deployments." export:"true"`

	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client (for login throttling and the audit log).
	TrustedProxies []string `description:"CIDRs of reverse proxies whose X-Forwarded-For header is trusted for the client address (e.g. 10.0.0.0/8); empty = use the connection's address." export:"true"`
}

// Database configures the pgx pool.
type Database struct {
	URL      string `description:"PostgreSQL connection URL, e.g. postgres://nullops@127.0.0.1:5432/nullops." export:"true"`
	MaxConns int32  `description:"Maximum pool connections." export:"true"`
}

// Secret holds the AES-256 key (NULLOPS_SECRET_KEY).
type Secret struct {
	Key     string   `description:"Base64 of 32 random bytes (AES-256-GCM key); generate with: head -c32 /dev/urandom | base64." loggable:"false"`
	OldKeys []string `description:"Previous keys, still accepted for decryption during key rotation." loggable:"false"`
}

// Admin bootstraps the first administrator (NULLOPS_ADMIN_USERNAME/PASSWORD).
type Admin struct {
	Username string `description:"Username of the first admin, created when no user exists." export:"true"`
	Password string `description:"Password of the first admin (at least 12 characters, not a common password)." loggable:"false"`
}

// TLS serves the API over HTTPS when both files are set.
type TLS struct {
	CertFile string `description:"PEM certificate file." export:"true"`
	KeyFile  string `description:"PEM private key file." export:"true"`
}

// HTTP bounds how long a client may take to send a request and how long
// an idle keep-alive connection is kept. Responses are not bounded (event
// streams and followed logs last as long as the client reads).
type HTTP struct {
	ReadHeaderTimeout ptypes.Duration `description:"Longest time to receive a request's headers." export:"true"`
	ReadTimeout       ptypes.Duration `description:"Longest time to receive a whole request, headers and body; a slower client is cut off." export:"true"`
	IdleTimeout       ptypes.Duration `description:"Keep-alive connections idle for this long are closed." export:"true"`
	DrainDelay        ptypes.Duration `description:"On shutdown, how long /readyz answers 503 while requests are still served, before the server stops accepting connections: a load balancer's health check takes the replica out first (set it above the check's interval times its fall count; 0 = stop at once)." export:"true"`
}

// Session configures cookie sessions.
type Session struct {
	IdleTimeout     ptypes.Duration `description:"Sessions unused for this long expire." export:"true"`
	AbsoluteTimeout ptypes.Duration `description:"Sessions expire this long after login regardless of use." export:"true"`
}

// Agents configures the connection manager.
type Agents struct {
	PingInterval ptypes.Duration `description:"WebSocket ping interval (at most a third of ha.leasettl is used, so an agent can tell a paused replica from a live one within a lease)." export:"true"`
	PingTimeout  ptypes.Duration `description:"A node without a pong for this long is offline." export:"true"`
	DialTimeout  ptypes.Duration `description:"Timeout of one dial attempt." export:"true"`
	BackoffMin   ptypes.Duration `description:"First redial delay." export:"true"`
	BackoffMax   ptypes.Duration `description:"Largest redial delay." export:"true"`
	OfflineGrace ptypes.Duration `description:"How long the deployments of a node whose agent stopped answering stay running and routed before they switch to the offline page (a short agent restart or network blip is no outage; 0 = at once)." export:"true"`
}

// HA configures this process as one of several replicas sharing the
// database (docs/architecture.md, "Replicas and node leases").
type HA struct {
	AdvertiseURL string          `description:"This replica's internal base URL, where the other replicas forward calls for the nodes it holds (e.g. http://10.0.0.5:8080); default http(s)://<host name>:<listen port>. Must reach this process directly, not through a load balancer." export:"true"`
	LeaseTTL     ptypes.Duration `description:"How long a replica's lease of a node lasts without renewal (renewed every third of it): a replica killed without a goodbye loses its nodes to the others within about this long." export:"true"`
}

// Ingress configures the route publisher.
type Ingress struct {
	Token string `description:"Bearer token nullops-ingress (or Traefik's HTTP provider) presents to read the route table." loggable:"false"`
	File  string `description:"Also write the Traefik dynamic configuration to this file (atomically), for Traefik's file provider: a .yml or .yaml name (Traefik ignores others)." export:"true"`
	// FileTempDir is where the next version of File is prepared.
	FileTempDir string `description:"Directory in which the next version of ingress.file is prepared before it replaces the file (default: the parent of the file's directory, so Traefik watching that directory sees one change per version). Must be on the same file system as the file, else the file's own directory is used." export:"true"`
	// LinkScheme and LinkPort shape the deployment links users see.
	LinkScheme string `description:"Scheme of deployment links shown to users: http, or https when the ingress terminates TLS." export:"true"`
	LinkPort   int    `description:"Port in deployment links when the ingress does not listen on the scheme's default port (0 = none, e.g. 8000 in make demo)." export:"true"`
	// Route withdrawal before a deployment's containers stop.
	WithdrawGrace  ptypes.Duration `description:"When deleting, how long to wait after withdrawing a deployment's routes before its containers stop, for ingresses that cannot confirm a new table (Traefik polling the HTTP provider or reading ingress.file)." export:"true"`
	ConfirmTimeout ptypes.Duration `description:"When deleting, how long at most to wait for every nullops-ingress to confirm it serves the table without the deployment's routes." export:"true"`
	// GoneRetention: hosts of removed deployments listed for nullops-ingress.
	GoneRetention ptypes.Duration `description:"How long nullops-ingress keeps answering the hosts of a deleted, cancelled or expired deployment with a page saying when, by whom and why (410) instead of 404 unknown host (0 = not at all)." export:"true"`
}

// Cleanup configures the expiry job.
type Cleanup struct {
	Schedule string `description:"Cron schedule of the auto-cleanup job (robfig/cron syntax with seconds optional, e.g. @every 30s)." export:"true"`
}

// Defaults returns the default configuration.
func Defaults() *Config {
	return &Config{
		Listen:   ":8080",
		Log:      logging.Defaults(),
		Database: Database{URL: "postgres://nullops@127.0.0.1:5432/nullops?sslmode=disable", MaxConns: 20},
		Session: Session{
			IdleTimeout:     ptypes.Duration(12 * time.Hour),
			AbsoluteTimeout: ptypes.Duration(7 * 24 * time.Hour),
		},
		Agents: Agents{
			PingInterval: ptypes.Duration(10 * time.Second),
			PingTimeout:  ptypes.Duration(30 * time.Second),
			DialTimeout:  ptypes.Duration(10 * time.Second),
			BackoffMin:   ptypes.Duration(500 * time.Millisecond),
			BackoffMax:   ptypes.Duration(30 * time.Second),
			OfflineGrace: ptypes.Duration(60 * time.Second),
		},
		HA:      HA{LeaseTTL: ptypes.Duration(10 * time.Second)},
		Cleanup: Cleanup{Schedule: "@every 30s"},
		Ingress: Ingress{LinkScheme: "http", WithdrawGrace: ptypes.Duration(3 * time.Second), ConfirmTimeout: ptypes.Duration(10 * time.Second),
			GoneRetention: ptypes.Duration(24 * time.Hour)},
		HTTP: HTTP{
			ReadHeaderTimeout: ptypes.Duration(10 * time.Second),
			ReadTimeout:       ptypes.Duration(60 * time.Second),
			IdleTimeout:       ptypes.Duration(120 * time.Second),
		},
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
	if c.Database.URL == "" {
		return fmt.Errorf("database.url: required")
	}
	if c.Ingress.LinkScheme != "http" && c.Ingress.LinkScheme != "https" {
		return fmt.Errorf("ingress.linkscheme: %q must be http or https", c.Ingress.LinkScheme)
	}
	if c.Ingress.LinkPort < 0 || c.Ingress.LinkPort > 65535 {
		return fmt.Errorf("ingress.linkport: %d is not a port (0 = none)", c.Ingress.LinkPort)
	}
	for _, t := range []struct {
		key string
		d   ptypes.Duration
	}{{"http.readheadertimeout", c.HTTP.ReadHeaderTimeout}, {"http.readtimeout", c.HTTP.ReadTimeout}, {"http.idletimeout", c.HTTP.IdleTimeout}} {
		if t.d <= 0 {
			return fmt.Errorf("%s: must be positive (requests without a deadline let slow clients hold connections)", t.key)
		}
	}
	if c.HTTP.DrainDelay < 0 {
		return fmt.Errorf("http.draindelay: must not be negative")
	}
	if c.Database.MaxConns < 1 {
		return fmt.Errorf("database.maxconns: must be at least 1")
	}
	if c.Secret.Key == "" {
		return fmt.Errorf("secret.key (NULLOPS_SECRET_KEY): required; generate one with: head -c32 /dev/urandom | base64")
	}
	if err := checkKey(c.Secret.Key); err != nil {
		return fmt.Errorf("secret.key: %w", err)
	}
	for i, k := range c.Secret.OldKeys {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("secret.oldkeys[%d]: %w", i, err)
		}
	}
	if (c.Admin.Username == "") != (c.Admin.Password == "") {
		return fmt.Errorf("admin.username and admin.password: set both or neither")
	}
	if c.Admin.Password != "" && len(c.Admin.Password) < 12 {
		return fmt.Errorf("admin.password: must be at least 12 characters")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("tls.certfile and tls.keyfile: set both or neither")
	}
	for i, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("trustedproxies[%d]: %q is not a CIDR such as 10.0.0.0/8", i, p)
		}
	}
	if c.Session.IdleTimeout <= 0 || c.Session.AbsoluteTimeout <= 0 {
		return fmt.Errorf("session.idletimeout and session.absolutetimeout: must be positive")
	}
	if c.Agents.PingInterval <= 0 || c.Agents.PingTimeout <= c.Agents.PingInterval {
		return fmt.Errorf("agents.pingtimeout: must be longer than agents.pinginterval")
	}
	if c.Agents.BackoffMin <= 0 || c.Agents.BackoffMax < c.Agents.BackoffMin {
		return fmt.Errorf("agents.backoffmax: must be at least agents.backoffmin (> 0)")
	}
	if c.HA.LeaseTTL < ptypes.Duration(time.Second) {
		return fmt.Errorf("ha.leasettl: must be at least 1s")
	}
	if c.HA.AdvertiseURL != "" {
		if u, err := url.Parse(c.HA.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("ha.advertiseurl: %q is not an http(s) URL", c.HA.AdvertiseURL)
		}
	}
	if c.Agents.OfflineGrace < 0 {
		return fmt.Errorf("agents.offlinegrace: must not be negative")
	}
	if c.Ingress.WithdrawGrace < 0 || c.Ingress.ConfirmTimeout < 0 {
		return fmt.Errorf("ingress.withdrawgrace and ingress.confirmtimeout: must not be negative")
	}
	if c.Ingress.GoneRetention < 0 {
		return fmt.Errorf("ingress.goneretention: must not be negative (0 = not at all)")
	}
	if c.Cleanup.Schedule == "" {
		return fmt.Errorf("cleanup.schedule: required")
	}
	return nil
}

func checkKey(k string) error {
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return fmt.Errorf("not valid base64: %v", err)
	}
	if len(b) != 32 {
		return fmt.Errorf("decodes to %d bytes, want 32", len(b))
	}
	return nil
}
