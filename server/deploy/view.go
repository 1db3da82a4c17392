package deploy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nullops/nullops/protocol"

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
	// Degraded: the deployment is running but a service of it is not
	// (restarting, exited, killed by the OOM killer) or crashed within
	// RecentCrash; DegradedReason says which and how.
	Degraded       bool   `json:"degraded"`
	DegradedReason string `json:"degraded_reason,omitempty"`
}

// RecentCrash is how long a service that crashed and runs again keeps its
// deployment degraded.
const RecentCrash = 10 * time.Minute

// degraded tells whether a running deployment's services are not all
// well, and why (one clause per service, in service order).
func degraded(status string, svcs []store.DeploymentService, now time.Time) (bool, string) {
	if status != store.DeploymentRunning {
		return false, ""
	}
	var why []string
	for _, s := range svcs {
		exit := ""
		if s.ExitCode != nil {
			exit = fmt.Sprintf("exit code %d", *s.ExitCode)
			if s.LastExitOOM {
				exit = fmt.Sprintf("killed by the OOM killer (exit code %d, over its memory limit)", *s.ExitCode)
			}
		}
		restarts := ""
		if s.RestartCount > 0 {
			restarts = fmt.Sprintf("restarted %d time(s)", s.RestartCount)
		}
		switch {
		case s.State == protocol.ServiceRestarting || s.State == protocol.ServiceExited || s.State == protocol.ServiceOOMKilled:
			why = append(why, "service "+s.NodeKey+" is "+s.State+joinNonEmpty(exit, restarts))
		case s.RestartCount > 0 && s.LastExitAt != nil && now.Sub(*s.LastExitAt) < RecentCrash:
			why = append(why, "service "+s.NodeKey+" crashed "+now.Sub(*s.LastExitAt).Round(time.Second).String()+" ago"+joinNonEmpty(exit, restarts))
		}
	}
	if len(why) == 0 {
		return false, ""
	}
	return true, strings.Join(why, "; ")
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
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
	v.Degraded, v.DegradedReason = degraded(d.Status, svcs, s.now())
	return v, nil
}

// Get loads a deployment (ErrNotFound when it does not exist).
func (s *Service) Get(ctx context.Context, id int64) (store.Deployment, error) { return s.get(ctx, id) }

// URLsFor returns the ingress URL of each exposed service of a list row
// (the View's URLs) from the node ids of those services
// (store.DeploymentListItem.IngressKeys), without a query.
func (s *Service) URLsFor(d store.Deployment, ingressKeys []string) map[string]string {
	urls := make(map[string]string, len(ingressKeys))
	if len(ingressKeys) == 0 {
		return urls
	}
	hosts := ingresspub.HostNames{Environment: d.EnvironmentName, BaseDomain: d.BaseDomain, Template: d.HostTemplate}
	for _, k := range ingressKeys {
		if h, err := hosts.Host(d.Name, k); err == nil {
			urls[k] = s.Links.URL(h)
		}
	}
	return urls
}

// Degradation says whether a deployment is degraded and why.
type Degradation struct {
	Degraded bool
	Reason   string
}

// DegradationOf tells whether a list row is degraded (as View does) and
// why, from its services that reported a crash
// (store.DeploymentListItem.Crashed), without a query.
func (s *Service) DegradationOf(d store.Deployment, crashed []store.DeploymentService) Degradation {
	if len(crashed) == 0 {
		return Degradation{}
	}
	ok, why := degraded(d.Status, crashed, s.now())
	return Degradation{Degraded: ok, Reason: why}
}
