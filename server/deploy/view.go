package deploy

import (
	"context"
	"net"
	"strconv"

	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/store"
)

// View is the API representation of a deployment: the row plus its steps
// (with timestamps), services (health, CPU, memory, published port) and
// the ingress URL of each exposed service.
type View struct {
	store.Deployment
	Steps    []store.DeploymentStep `json:"steps"`
	Services []ServiceView          `json:"services"`
	// URLs maps each exposed service (pipeline node id) to its address.
	URLs map[string]string `json:"urls"`
}

// Links shapes the ingress links shown to users: the ingress may terminate
// TLS or listen on another port than the scheme's default.
type Links struct {
	Scheme string // "http" (default) or "https"
	Port   int    // 0 = the scheme's default port
}

// URL is the link of an ingress host name.
func (l Links) URL(host string) string {
	scheme := l.Scheme
	if scheme == "" {
		scheme = "http"
	}
	if l.Port == 0 || scheme == "http" && l.Port == 80 || scheme == "https" && l.Port == 443 {
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(l.Port))
}

// ServiceView is a service with its ingress URL.
type ServiceView struct {
	store.DeploymentService
	URL string `json:"url,omitempty"`
}

// View loads the full representation of a deployment.
func (s *Service) View(ctx context.Context, d store.Deployment) (View, error) {
	v := View{Deployment: d, URLs: map[string]string{}}
	var err error
	if v.Steps, err = s.Store.DeploymentSteps(ctx, d.ID); err != nil {
		return v, err
	}
	svcs, err := s.Store.DeploymentServices(ctx, d.ID)
	if err != nil {
		return v, err
	}
	hosts := ingresspub.HostNames{Environment: d.EnvironmentName, BaseDomain: d.BaseDomain, Template: d.HostTemplate}
	v.Services = make([]ServiceView, 0, len(svcs))
	for _, sv := range svcs {
		out := ServiceView{DeploymentService: sv}
		if sv.Ingress {
			if h, err := hosts.Host(d.Name, sv.NodeKey); err == nil {
				out.URL = s.Links.URL(h)
				v.URLs[sv.NodeKey] = out.URL
			}
		}
		v.Services = append(v.Services, out)
	}
	return v, nil
}

// Get loads a deployment (ErrNotFound when it does not exist).
func (s *Service) Get(ctx context.Context, id int64) (store.Deployment, error) { return s.get(ctx, id) }

// URLsOf returns the ingress URL of each exposed service of each of the
// given deployments (the View's URLs, for a whole list page), with one
// query whatever the number of deployments.
func (s *Service) URLsOf(ctx context.Context, deps []store.Deployment) (map[int64]map[string]string, error) {
	ids := make([]int64, len(deps))
	for i, d := range deps {
		ids[i] = d.ID
	}
	keys, err := s.Store.IngressServicesOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]map[string]string, len(deps))
	for _, d := range deps {
		urls := map[string]string{}
		hosts := ingresspub.HostNames{Environment: d.EnvironmentName, BaseDomain: d.BaseDomain, Template: d.HostTemplate}
		for _, k := range keys[d.ID] {
			if h, err := hosts.Host(d.Name, k); err == nil {
				urls[k] = s.Links.URL(h)
			}
		}
		out[d.ID] = urls
	}
	return out, nil
}
