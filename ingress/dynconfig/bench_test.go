package dynconfig

import (
	"encoding/json"
	"fmt"
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
