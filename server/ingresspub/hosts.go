package ingresspub

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nullops/nullops/ingress/dynconfig"
)

// Host template placeholders. An environment's host_template combines them;
// the empty template means DefaultHostTemplate.
const (
	PlaceholderService     = "<service>"
	PlaceholderDeployment  = "<deployment>"
	PlaceholderEnvironment = "<environment>"
	PlaceholderBaseDomain  = "<base-domain>"
)

// DefaultHostTemplate is the product's host form: two levels below the
// environment's domain, so a wildcard certificate cannot cover it.
const DefaultHostTemplate = "<service>.<deployment>.<environment>.<base-domain>"

// FlatHostTemplate puts every host one level below
// <environment>.<base-domain>, so one wildcard certificate
// (*.<environment>.<base-domain>) covers all of them.
const FlatHostTemplate = "<service>--<deployment>.<environment>.<base-domain>"

// HostNames names the hosts of one environment.
type HostNames struct {
	Environment string // environment name
	BaseDomain  string
	Template    string // "" = DefaultHostTemplate
}

// Host returns the host name of a deployment's service, lower-cased, or an
// error saying which part is too long or not allowed in a DNS name.
func (h HostNames) Host(deployment, service string) (string, error) {
	tpl := h.Template
	if tpl == "" {
		tpl = DefaultHostTemplate
	}
	host := expand(tpl, service, deployment, h.Environment, strings.TrimSuffix(h.BaseDomain, "."))
	if err := dynconfig.CheckHostname(host); err != nil {
		return "", err
	}
	return host, nil
}

// expand substitutes the placeholders of tpl, lower-casing the values (one
// pass, no allocation besides the result: it runs for every route on every
// recompute).
func expand(tpl, service, deployment, environment, baseDomain string) string {
	var b strings.Builder
	b.Grow(len(tpl) + len(service) + len(deployment) + len(environment) + len(baseDomain))
	for i := 0; i < len(tpl); {
		if tpl[i] == '<' {
			rest := tpl[i:]
			var v string
			var n int
			switch {
			case strings.HasPrefix(rest, PlaceholderService):
				v, n = service, len(PlaceholderService)
			case strings.HasPrefix(rest, PlaceholderDeployment):
				v, n = deployment, len(PlaceholderDeployment)
			case strings.HasPrefix(rest, PlaceholderEnvironment):
				v, n = environment, len(PlaceholderEnvironment)
			case strings.HasPrefix(rest, PlaceholderBaseDomain):
				v, n = baseDomain, len(PlaceholderBaseDomain)
			}
			if n > 0 {
				for j := 0; j < len(v); j++ {
					c := v[j]
					if c >= 'A' && c <= 'Z' {
						c += 'a' - 'A'
					}
					b.WriteByte(c)
				}
				i += n
				continue
			}
		}
		c := tpl[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

// ValidateHostTemplate checks an environment's host template: only the four
// placeholders, <service> and <deployment> both present (otherwise hosts of
// different services or deployments would collide), and the result a valid
// DNS name for short sample values.
func ValidateHostTemplate(tpl string) error {
	if tpl == "" {
		return nil
	}
	rest := tpl
	for _, p := range []string{PlaceholderService, PlaceholderDeployment, PlaceholderEnvironment, PlaceholderBaseDomain} {
		rest = strings.ReplaceAll(rest, p, "x")
	}
	if i := strings.IndexAny(rest, "<>"); i >= 0 {
		return fmt.Errorf("host template %q: unknown placeholder; use %s, %s, %s and %s",
			tpl, PlaceholderService, PlaceholderDeployment, PlaceholderEnvironment, PlaceholderBaseDomain)
	}
	if !strings.Contains(tpl, PlaceholderService) || !strings.Contains(tpl, PlaceholderDeployment) {
		return fmt.Errorf("host template %q must contain both %s and %s", tpl, PlaceholderService, PlaceholderDeployment)
	}
	if _, err := (HostNames{Environment: "env", BaseDomain: "example.com", Template: tpl}).Host("dep", "svc"); err != nil {
		return fmt.Errorf("host template %q does not give a valid host name: %w", tpl, err)
	}
	return nil
}

// CheckDeploymentHosts is what deployment creation calls before accepting a
// deployment name: every exposed service's host must be a valid DNS name
// (labels of at most 63 characters, 253 in all). The error names the
// offending host and says what to shorten.
func CheckDeploymentHosts(env HostNames, deployment string, services []string) error {
	var errs []error
	for _, svc := range services {
		if _, err := env.Host(deployment, svc); err != nil {
			errs = append(errs, fmt.Errorf("service %q of deployment %q would be reached at an invalid host name (%v); choose a shorter or simpler deployment name", svc, deployment, err))
		}
	}
	return errors.Join(errs...)
}
