package protocol

import "testing"

func TestServiceStateRouteHost(t *testing.T) {
	for host, ok := range map[string]bool{
		"":                  true, // the node's host
		"10.0.0.7":          true,
		"fd00::7":           true,
		"lb.example.test":   true,
		"lb.example.test.":  true,
		"10.0.0.7:30080":    false,
		"http://lb.example": false,
		"lb example":        false,
		"-lb.example":       false,
	} {
		s := ServiceState{DeploymentID: 1, Service: "web", HostPort: 30080, RouteHost: host}
		if err := s.Validate(); (err == nil) != ok {
			t.Errorf("route_host %q: Validate() = %v, want ok=%v", host, err, ok)
		}
	}
}
