package dynconfig

import "maps"

// Builder assembles a configuration the way NullOps publishes it. The
// zero value is not usable; call NewBuilder.
type Builder struct {
	cfg         *Configuration
	entryPoints []string
	tls         *RouterTLSConfig
}

// NewBuilder starts an empty configuration whose routers listen on the given
// Traefik entry points (none = all entry points) and, when tls is non-nil,
// are served over TLS. The two sentinel services are always present.
func NewBuilder(entryPoints []string, tls *RouterTLSConfig) *Builder {
	b := &Builder{
		cfg: &Configuration{HTTP: &HTTPConfiguration{
			Routers:  map[string]*Router{},
			Services: map[string]*Service{},
		}},
		entryPoints: entryPoints,
		tls:         tls,
	}
	for _, s := range []string{ServiceOffline, ServiceDeploying} {
		b.cfg.HTTP.Services[s] = &Service{LoadBalancer: &ServersLoadBalancer{PassHostHeader: ptrTrue()}}
	}
	return b
}

// Grow makes room for n more routers and services.
func (b *Builder) Grow(n int) {
	r := make(map[string]*Router, len(b.cfg.HTTP.Routers)+n)
	s := make(map[string]*Service, len(b.cfg.HTTP.Services)+n)
	maps.Copy(r, b.cfg.HTTP.Routers)
	maps.Copy(s, b.cfg.HTTP.Services)
	b.cfg.HTTP.Routers, b.cfg.HTTP.Services = r, s
}

// Backend adds router and service name routing host to serverURL.
func (b *Builder) Backend(name, host, serverURL string) {
	b.cfg.HTTP.Routers[name] = b.router(name, host)
	b.cfg.HTTP.Services[name] = BackendService(serverURL)
}

// BackendService is the service Backend adds for serverURL.
func BackendService(serverURL string) *Service {
	return &Service{LoadBalancer: &ServersLoadBalancer{
		Servers:        []Server{{URL: serverURL}},
		PassHostHeader: ptrTrue(),
	}}
}

// Add adds a router and, when service is not nil, its service, both made
// by an equivalent Builder earlier (see Router and BackendService).
func (b *Builder) Add(name string, r *Router, service *Service) {
	b.cfg.HTTP.Routers[name] = r
	if service != nil {
		b.cfg.HTTP.Services[name] = service
	}
}

// Router is the router this builder adds for host, sending requests to
// service (a router name for Backend, a sentinel for Unavailable).
func (b *Builder) Router(service, host string) *Router { return b.router(service, host) }

// Unavailable adds router name sending host to a sentinel service
// (ServiceOffline or ServiceDeploying).
func (b *Builder) Unavailable(name, host, sentinel string) {
	b.cfg.HTTP.Routers[name] = b.router(sentinel, host)
}

// Configuration returns the assembled configuration.
func (b *Builder) Configuration() *Configuration { return b.cfg }

func (b *Builder) router(service, host string) *Router {
	r := &Router{Service: service, Rule: HostRule(host), EntryPoints: b.entryPoints}
	if b.tls != nil {
		t := *b.tls
		r.TLS = &t
	}
	return r
}

func ptrTrue() *bool { t := true; return &t }
