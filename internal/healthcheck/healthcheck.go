// Package healthcheck is the `healthcheck` subcommand of every NullOps
// binary: it probes the process's own listener from inside its container
// (the images are FROM scratch: no curl, no shell), so docker-compose and
// any orchestrator can use `<binary> healthcheck` as the health command.
package healthcheck

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Timeout bounds one probe.
const Timeout = 5 * time.Second

// Target turns a listen address (":8080", "0.0.0.0:80", "[::]:5000",
// "10.0.0.5:8080") into the address a probe on the same machine dials: the
// loopback address when the listener is on every address, else its host.
func Target(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

// HTTP GETs scheme://<Target(listen)><path> and succeeds on a 2xx answer.
// With https the certificate is not verified: the probe only asks the
// process on this machine whether it serves, and sends nothing secret.
func HTTP(ctx context.Context, scheme, listen, path string) error {
	addr, err := Target(listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	url := scheme + "://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec // loopback self-probe
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// TCP succeeds when Target(listen) accepts a connection.
func TCP(ctx context.Context, listen string) error {
	addr, err := Target(listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	return c.Close()
}
