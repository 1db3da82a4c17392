// Package dynconfig is the route table NullOps publishes, in Traefik's
// dynamic-configuration format: the structs mirror the field names and
// json/yaml/toml tags of Traefik's pkg/config/dynamic (the subset NullOps
// uses), so the same document feeds Traefik's HTTP or file provider and
// nullops-ingress.
//
// Traefik's decoder is strict below the root (an unknown key inside "http" is
// an error), so NullOps carries its extra information in names Traefik accepts
// instead of an extension block:
//
//   - a router is named RouterName(deploymentID, service), e.g. "d42-web"; the
//     ingress reads the deployment id back with ParseRouterName to report
//     traffic as deployment activity;
//   - a host whose deployment cannot be reached points at one of two sentinel
//     services, ServiceOffline or ServiceDeploying. They are load balancers
//     without servers, for which Traefik answers 503; nullops-ingress answers
//     503 with a page saying why.
package dynconfig

// Configuration is the root of a dynamic configuration (Traefik's
// dynamic.Configuration; NullOps only publishes the HTTP part).
type Configuration struct {
	HTTP *HTTPConfiguration `json:"http,omitempty" toml:"http,omitempty" yaml:"http,omitempty" export:"true"`
}

// HTTPConfiguration holds routers and services (Traefik's
// dynamic.HTTPConfiguration).
type HTTPConfiguration struct {
	Routers  map[string]*Router  `json:"routers,omitempty" toml:"routers,omitempty" yaml:"routers,omitempty" export:"true"`
	Services map[string]*Service `json:"services,omitempty" toml:"services,omitempty" yaml:"services,omitempty" export:"true"`
}

// Router matches requests by Rule and sends them to Service (Traefik's
// dynamic.Router).
type Router struct {
	EntryPoints []string         `json:"entryPoints,omitempty" toml:"entryPoints,omitempty" yaml:"entryPoints,omitempty" export:"true"`
	Middlewares []string         `json:"middlewares,omitempty" toml:"middlewares,omitempty" yaml:"middlewares,omitempty" export:"true"`
	Service     string           `json:"service,omitempty" toml:"service,omitempty" yaml:"service,omitempty" export:"true"`
	Rule        string           `json:"rule,omitempty" toml:"rule,omitempty" yaml:"rule,omitempty"`
	Priority    int              `json:"priority,omitempty" toml:"priority,omitempty,omitzero" yaml:"priority,omitempty" export:"true"`
	TLS         *RouterTLSConfig `json:"tls,omitempty" toml:"tls,omitempty" yaml:"tls,omitempty" label:"allowEmpty" file:"allowEmpty" kv:"allowEmpty" export:"true"`
}

// RouterTLSConfig makes a router answer on TLS entry points (Traefik's
// dynamic.RouterTLSConfig). An empty value means "TLS with the default
// certificate".
type RouterTLSConfig struct {
	Options      string `json:"options,omitempty" toml:"options,omitempty" yaml:"options,omitempty" export:"true"`
	CertResolver string `json:"certResolver,omitempty" toml:"certResolver,omitempty" yaml:"certResolver,omitempty" export:"true"`
}

// Service is where a router sends requests (Traefik's dynamic.Service; only
// the load-balancer kind is used).
type Service struct {
	LoadBalancer *ServersLoadBalancer `json:"loadBalancer,omitempty" toml:"loadBalancer,omitempty" yaml:"loadBalancer,omitempty" export:"true"`
}

// ServersLoadBalancer balances over Servers (Traefik's
// dynamic.ServersLoadBalancer). PassHostHeader has no omitempty, as in
// Traefik; NullOps always sets it.
type ServersLoadBalancer struct {
	Servers            []Server            `json:"servers,omitempty" toml:"servers,omitempty" yaml:"servers,omitempty" label-slice-as-struct:"server" export:"true"`
	PassHostHeader     *bool               `json:"passHostHeader" toml:"passHostHeader" yaml:"passHostHeader" export:"true"`
	ResponseForwarding *ResponseForwarding `json:"responseForwarding,omitempty" toml:"responseForwarding,omitempty" yaml:"responseForwarding,omitempty" export:"true"`
}

// ResponseForwarding tunes how responses are copied (Traefik's
// dynamic.ResponseForwarding). FlushInterval is a Go duration string; a
// negative value flushes after every write.
type ResponseForwarding struct {
	FlushInterval string `json:"flushInterval,omitempty" toml:"flushInterval,omitempty" yaml:"flushInterval,omitempty" export:"true"`
}

// Server is one backend URL (Traefik's dynamic.Server).
type Server struct {
	URL string `json:"url,omitempty" toml:"url,omitempty" yaml:"url,omitempty" label:"-"`
}
