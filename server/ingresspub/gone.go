package ingresspub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nullops/nullops/ingress/dynconfig"
)

// DefaultGoneRetention is how long hosts of removed deployments are listed
// when Options.GoneRetention is not set.
const DefaultGoneRetention = 24 * time.Hour

// Gone returns the hosts of deployments deleted, cancelled or expired within
// the retention (Options.GoneRetention; negative = none), rendered as a
// dynconfig.GoneDocument, with its ETag. nullops-ingress answers such a
// host with a page saying when, by whom and why, instead of "unknown host".
// A host that a live deployment uses again is left out. The Traefik
// document never carries these hosts: Traefik answers them 404 as before.
func (p *Publisher) Gone(ctx context.Context) ([]byte, string, error) {
	doc := dynconfig.GoneDocument{Hosts: []dynconfig.GoneHost{}}
	if p.opts.GoneRetention > 0 {
		rows, err := p.st.GoneRouteRows(ctx, time.Now().Add(-p.opts.GoneRetention))
		if err != nil {
			return nil, "", err
		}
		live := map[string]bool{}
		if s := p.Current(); s != nil {
			for _, r := range s.Configuration().HTTP.Routers {
				if hosts, err := dynconfig.ParseHostRule(r.Rule); err == nil {
					for _, h := range hosts {
						live[h] = true
					}
				}
			}
		}
		at := make(map[string]int, len(rows))
		for _, r := range rows {
			host, err := HostNames{Environment: r.EnvironmentName, BaseDomain: r.BaseDomain, Template: r.HostTemplate}.Host(r.DeploymentName, r.Service)
			if err != nil || live[host] {
				continue
			}
			g := dynconfig.GoneHost{Host: host, DeploymentID: r.DeploymentID, Deployment: r.DeploymentName,
				Environment: r.EnvironmentName, Service: r.Service, Reason: r.Action, By: r.ActorName, At: r.At.UTC()}
			if i, dup := at[host]; dup {
				doc.Hosts[i] = g // rows come oldest first: the latest removal wins
				continue
			}
			at[host] = len(doc.Hosts)
			doc.Hosts = append(doc.Hosts, g)
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, "", fmt.Errorf("render gone hosts: %w", err)
	}
	sum := sha256.Sum256(body)
	return body, `"` + hex.EncodeToString(sum[:16]) + `"`, nil
}
