package dynconfig

import (
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/traefik/paerser/file"
)

func TestCompile(t *testing.T) {
	b := NewBuilder(nil, nil)
	b.Backend(RouterName(1, "web"), "web.a.qa.example.com", "http://10.0.0.5:32768")
	b.Unavailable(RouterName(2, "web"), "web.b.qa.example.com", ServiceOffline)
	b.Unavailable(RouterName(3, "api"), "api.c.qa.example.com", ServiceDeploying)
	cfg := b.Configuration()
	cfg.HTTP.Routers["broken"] = &Router{Rule: "PathPrefix(`/`)", Service: "x"}
	cfg.HTTP.Routers["dup"] = &Router{Rule: "Host(`web.a.qa.example.com`)", Service: RouterName(1, "web")}
	cfg.HTTP.Routers["nosvc"] = &Router{Rule: "Host(`n.example.com`)", Service: "missing"}

	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg2, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	routes, problems := Compile(cfg2)
	if len(routes) != 3 {
		t.Fatalf("routes: %+v", routes)
	}
	byRouter := map[string]Route{}
	for _, r := range routes {
		byRouter[r.Router] = r
	}
	r1 := byRouter["d1-web"]
	if r1.Kind != KindBackend || r1.DeploymentID != 1 || len(r1.Servers) != 1 || r1.Servers[0].Host != "10.0.0.5:32768" || !r1.PassHost {
		t.Errorf("d1-web: %+v", r1)
	}
	if byRouter["d2-web"].Kind != KindOffline || byRouter["d3-api"].Kind != KindDeploying || byRouter["d3-api"].DeploymentID != 3 {
		t.Errorf("unavailable routes: %+v", byRouter)
	}
	if len(problems) != 3 {
		t.Fatalf("problems: %v", problems)
	}
	msgs := ""
	for _, p := range problems {
		msgs += p.Error() + "\n"
	}
	for _, want := range []string{`router "broken": rule`, `router "dup": host web.a.qa.example.com is already routed by router "d1-web"`, `router "nosvc": service "missing" does not exist`} {
		if !strings.Contains(msgs, want) {
			t.Errorf("problems lack %q:\n%s", want, msgs)
		}
	}
}

func TestDecodeRejectsUnsupported(t *testing.T) {
	for doc, want := range map[string]string{
		``:                                     "empty",
		`{"http":{"routers":{},"nullops":{}}}`: `unknown object member name "nullops"`,
		`{"http":{}} {}`:                       "after top-level value",
		`{"http":{"routers":{},"routers":{}}}`: "duplicate object member",
		`{"http":{"routers":{"r":{"rule":"Host(` + "`a`" + `)","service":"s","middlewares":["auth"]}},"services":{"s":{"loadBalancer":{"servers":[{"url":"http://x"}]}}}}}`: "",
	} {
		cfg, err := Decode([]byte(doc))
		if want != "" {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Decode(%s): %v, want error containing %q", doc, err, want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Decode(%s): %v", doc, err)
		}
		routes, problems := Compile(cfg)
		if len(routes) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "middlewares auth") {
			t.Errorf("a router with middlewares must be refused, got %+v %v", routes, problems)
		}
	}
}

// TestTraefikDocumentExample decodes a configuration written the way Traefik's
// documentation writes them (YAML and TOML), with the paerser decoder Traefik
// itself uses, into these structs: field names and nesting match Traefik's.
func TestTraefikDocumentExample(t *testing.T) {
	for _, name := range []string{"testdata/traefik-example.yaml", "testdata/traefik-example.toml"} {
		var cfg Configuration
		if err := file.Decode(name, &cfg); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		routes, problems := Compile(&cfg)
		if len(problems) != 0 || len(routes) != 1 {
			t.Fatalf("%s: routes %+v problems %v", name, routes, problems)
		}
		r := routes[0]
		if r.Router != "my-router" || r.Hosts[0] != "example.com" || len(r.Servers) != 2 || r.Servers[1].String() != "http://private-ip-server-2/" || r.PassHost {
			t.Errorf("%s: %+v", name, r)
		}
	}
}

// TestTraefikIsStrictBelowRoot documents why NullOps carries its extra data
// in names: paerser (Traefik's decoder) refuses unknown keys inside "http".
func TestTraefikIsStrictBelowRoot(t *testing.T) {
	doc := `{"http":{"routers":{"r":{"rule":"Host(` + "`a`" + `)","service":"s","nullops":{"deployment":1}}}}}`
	var cfg Configuration
	if err := file.DecodeContent(doc, ".yaml", &cfg); err == nil {
		t.Fatal("paerser accepted an unknown router field; the naming convention may no longer be needed")
	}
}

func FuzzDecodeCompile(f *testing.F) {
	b := NewBuilder([]string{"web"}, &RouterTLSConfig{})
	b.Backend(RouterName(7, "api"), "api.x.qa.example.com", "http://127.0.0.1:8080")
	b.Unavailable(RouterName(8, "api"), "api.y.qa.example.com", ServiceDeploying)
	seed, _ := json.Marshal(b.Configuration())
	f.Add(seed)
	if example, err := os.ReadFile("testdata/traefik-example.yaml"); err == nil {
		f.Add(example) // not JSON: exercises the error path
	}
	f.Add([]byte(`{"http":{"routers":{"a":{"rule":"Host(` + "`a`" + `)","service":"s"}},"services":{"s":{"loadBalancer":{"servers":[{"url":"ftp://x"}]}}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode(data)
		if err != nil {
			return
		}
		routes, _ := Compile(cfg)
		seen := map[string]bool{}
		for _, r := range routes {
			if len(r.Hosts) == 0 {
				t.Fatalf("route %q without hosts", r.Router)
			}
			for _, h := range r.Hosts {
				if seen[h] {
					t.Fatalf("host %q routed twice", h)
				}
				seen[h] = true
				if err := CheckHostname(h); err != nil {
					t.Fatalf("invalid host %q: %v", h, err)
				}
			}
			if r.Kind == KindBackend {
				if len(r.Servers) == 0 {
					t.Fatalf("backend route %q without servers", r.Router)
				}
				for _, u := range r.Servers {
					if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
						t.Fatalf("route %q has bad server %v", r.Router, u)
					}
				}
			}
		}
	})
}

func FuzzParseServerURL(f *testing.F) {
	for _, s := range []string{"http://10.0.0.5:32768", "http://node-1.internal:80", "http://[fd00::1]:80", "https://x:1/p", "http://:80", "http://a:99999", "http://a:0", "http://A:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		fast, ok := parseSimpleURL(raw)
		if !ok {
			return
		}
		slow, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("fast path accepted %q, url.Parse refuses it: %v", raw, err)
		}
		if fast.String() != slow.String() || fast.Host != slow.Host || fast.Scheme != slow.Scheme || slow.Path != "" {
			t.Fatalf("fast path %q: %#v, url.Parse: %#v", raw, fast, slow)
		}
	})
}
