package dynconfig

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
)

func bigConfig(n int) *Configuration {
	b := NewBuilder(nil, nil)
	for i := range n {
		name := RouterName(int64(i+1), "web")
		host := fmt.Sprintf("web.deployment-%d.qa.example.com", i+1)
		if i%10 == 0 {
			b.Unavailable(name, host, ServiceDeploying)
			continue
		}
		b.Backend(name, host, fmt.Sprintf("http://10.0.%d.%d:%d", i/250, i%250, 30000+i%20000))
	}
	return b.Configuration()
}

// BenchmarkMarshal10k is the server's rendering of a 10,000-route table.
func BenchmarkMarshal10k(b *testing.B) {
	cfg := bigConfig(10000)
	for b.Loop() {
		if _, err := json.Marshal(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCompile10k is the ingress's decoding and checking of a
// 10,000-route table.
func BenchmarkDecodeCompile10k(b *testing.B) {
	data, _ := json.Marshal(bigConfig(10000))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		cfg, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if routes, problems := Compile(cfg); len(routes) != 10000 || len(problems) != 0 {
			b.Fatal(len(routes), problems)
		}
	}
}

// BenchmarkDiff10k is the server's comparison of a new 10,000-route table
// with the current one (one route changed), with the hashing of the change.
// As in the publisher, unchanged entries are the same values (it keeps them
// between recomputes), so they compare by pointer.
func BenchmarkDiff10k(b *testing.B) {
	cfg := bigConfig(10000)
	shallow := func() *Configuration {
		return &Configuration{HTTP: &HTTPConfiguration{Routers: maps.Clone(cfg.HTTP.Routers), Services: maps.Clone(cfg.HTTP.Services)}}
	}
	st := NewState(shallow())
	next := shallow()
	(&Builder{cfg: next}).Backend(RouterName(1, "web"), "web.deployment-1.qa.example.com", "http://10.9.9.9:31000")
	for b.Loop() {
		if d := st.Diff(next); d.Changes() != 2 {
			b.Fatal(d.Changes())
		}
	}
}

// BenchmarkDecodeApplyDelta10k is the ingress's decoding and applying of a
// one-route delta to a 10,000-route table (the route alternates between
// deploying and routed).
func BenchmarkDecodeApplyDelta10k(b *testing.B) {
	cfg := bigConfig(10000)
	c, _ := NewCompiled(NewState(clone(cfg)))
	next := clone(cfg)
	(&Builder{cfg: next}).Backend(RouterName(1, "web"), "web.deployment-1.qa.example.com", "http://10.9.9.9:31000")
	server := NewState(clone(cfg))
	there := server.Diff(next)
	_ = server.Apply(there)
	back := server.Diff(cfg)
	bodies := [2][]byte{}
	bodies[0], _ = json.Marshal(there)
	bodies[1], _ = json.Marshal(back)
	b.SetBytes(int64(len(bodies[0])))
	i := 0
	for b.Loop() {
		d, err := DecodeDelta(bodies[i%2])
		if err != nil {
			b.Fatal(err)
		}
		if u, err := c.Apply(d); err != nil || u.Full {
			b.Fatal(err, u.Full)
		}
		i++
	}
}
