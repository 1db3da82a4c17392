package dynconfig

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// GoneDocument lists the hosts of recently deleted or expired deployments
// (GET /api/v1/ingress/gone). It travels next to the Traefik document, not
// inside it: Traefik never needs it, and nullops-ingress uses it only to
// answer such a host with "deleted at …, by …" instead of "unknown host".
type GoneDocument struct {
	Hosts []GoneHost `json:"hosts"`
}

// GoneHost is one host of a deployment that no longer exists.
type GoneHost struct {
	Host         string `json:"host"`
	DeploymentID int64  `json:"deployment_id"`
	Deployment   string `json:"deployment"`
	Environment  string `json:"environment"`
	Service      string `json:"service"`
	// Reason is "deleted", "cancelled" or "expired".
	Reason string    `json:"reason"`
	By     string    `json:"by"` // who deleted it ("system" for expiry)
	At     time.Time `json:"at"`
}

// MaxGoneBytes bounds a gone document.
const MaxGoneBytes = 16 << 20

// DecodeGone parses a gone document strictly and checks every host name.
func DecodeGone(data []byte) (*GoneDocument, error) {
	if len(data) > MaxGoneBytes {
		return nil, fmt.Errorf("gone document is %d bytes; the limit is %d", len(data), MaxGoneBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("gone document is empty")
	}
	var doc GoneDocument
	if err := jsonv2.Unmarshal(data, &doc, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("decode gone document: %w", err)
	}
	for i, h := range doc.Hosts {
		if err := CheckHostname(h.Host); err != nil {
			return nil, fmt.Errorf("gone document: hosts[%d]: %w", i, err)
		}
	}
	return &doc, nil
}
