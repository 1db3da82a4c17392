package agents

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/nullops/nullops/protocol"
)

// Thumbprint is the hex SHA-256 of a DER certificate: what nodes pin.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// NormalizeThumbprint accepts a SHA-256 thumbprint in hex, upper or lower
// case, optionally with colons or spaces between bytes, and returns the
// canonical lower-case form.
func NormalizeThumbprint(s string) (string, error) {
	s = strings.ToLower(strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s)))
	if len(s) != 64 {
		return "", fmt.Errorf("must be the 64 hex digits of a SHA-256 (got %d)", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", errors.New("must be hexadecimal")
	}
	return s, nil
}

// errThumbprint aborts a TLS handshake with an agent whose certificate is
// not the pinned one (before the token is sent).
var errThumbprint = errors.New("agent certificate thumbprint does not match the pinned one")

// errUnauthorized is a dial the agent refused with 401.
var errUnauthorized = errors.New("the agent refused the token (HTTP 401)")

// errRefused is a dial the agent refused with 409: it holds a healthy
// control-plane connection already, or the epoch was stale.
type errRefused struct {
	Reason string
	Epoch  uint64 // the highest epoch the agent accepted
}

func (e *errRefused) Error() string {
	return "the agent refused the connection (HTTP 409): " + e.Reason
}

// stale reports whether the refusal was for a stale epoch.
func (e *errRefused) stale() bool { return strings.HasPrefix(e.Reason, "stale connection epoch") }

// dialResult carries what the TLS handshake saw.
type dialResult struct {
	conn *websocket.Conn
	seen string // thumbprint presented by the agent ("" when no handshake)
}

// agentURL is wss://host:port/v1/connect.
func agentURL(host string, port int) string {
	u := url.URL{Scheme: "wss", Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: protocol.PathConnect}
	return u.String()
}

// dial opens the channel to an agent: TLS 1.2+ with the certificate pinned
// by thumbprint (any certificate when expected is empty: trust on first
// use), then the WebSocket upgrade presenting the token and the connection
// epoch.
//
// slots bounds the TLS handshakes in progress (a token is held for the
// handshake only); nil: unbounded.
func dial(ctx context.Context, host string, port int, token, expected string, epoch int64, timeout time.Duration, slots chan struct{}) (dialResult, error) {
	var res dialResult
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Chain and host name verification are replaced by pinning: the
		// agent's certificate is self-signed by design.
		InsecureSkipVerify: true, //nolint:gosec // pinned in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("agent presented no certificate")
			}
			res.seen = Thumbprint(raw[0])
			if expected != "" && res.seen != expected {
				return errThumbprint
			}
			return nil
		},
		NextProtos: []string{"http/1.1"},
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if slots != nil {
				select {
				case slots <- struct{}{}:
					defer func() { <-slots }()
				case <-ctx.Done():
					raw.Close()
					return nil, ctx.Err()
				}
			}
			c := tls.Client(raw, tlsCfg)
			if err := c.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return c, nil
		},
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	defer tr.CloseIdleConnections()
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, agentURL(host, port), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: http.Header{"Authorization": []string{"Bearer " + token},
			protocol.HeaderEpoch: []string{strconv.FormatInt(epoch, 10)}},
		CompressionMode: websocket.CompressionDisabled,
	})
	var refused *errRefused
	if resp != nil && resp.Body != nil {
		if resp.StatusCode == protocol.RefusedBusy {
			var r protocol.Refused
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = json.Unmarshal(b, &r)
			if len(r.Error) > 300 {
				r.Error = r.Error[:300]
			}
			refused = &errRefused{Reason: r.Error, Epoch: r.Epoch}
		}
		resp.Body.Close()
	}
	if err != nil {
		switch {
		case refused != nil:
			return res, refused
		case errors.Is(err, errThumbprint) || (expected != "" && res.seen != "" && res.seen != expected):
			return res, errThumbprint
		case resp != nil && resp.StatusCode == http.StatusUnauthorized:
			return res, errUnauthorized
		case resp != nil:
			return res, fmt.Errorf("agent answered HTTP %d to the WebSocket upgrade", resp.StatusCode)
		}
		return res, simplifyDialError(err)
	}
	res.conn = conn
	return res, nil
}

// simplifyDialError drops coder/websocket's nested prefixes so the node's
// status reason reads well ("dial tcp 10.0.0.5:5000: connect: connection
// refused").
func simplifyDialError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out connecting to the agent")
	}
	return err
}
