package dynconfig

import (
	"strconv"
	"strings"
)

// Sentinel services: routers of hosts that exist but cannot be reached point
// at them. They have no servers, so Traefik answers 503 for them;
// nullops-ingress answers 503 with a page saying why.
const (
	// ServiceOffline serves hosts of deployments whose node is offline.
	ServiceOffline = "nullops-offline"
	// ServiceDeploying serves hosts of deployments still being deployed.
	ServiceDeploying = "nullops-deploying"
)

// RouterName names the router (and service) of one exposed service of a
// deployment: "d<deploymentID>-<service>", lower case, with every character
// other than a-z, 0-9 and '-' replaced by '-'. Traefik accepts such names in
// every provider.
func RouterName(deploymentID int64, service string) string {
	var b strings.Builder
	b.Grow(len(service) + 24)
	b.WriteByte('d')
	b.WriteString(strconv.FormatInt(deploymentID, 10))
	b.WriteByte('-')
	for i := 0; i < len(service); i++ {
		c := service[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// ParseRouterName returns the deployment id in a name made by RouterName;
// ok is false for other names (hand-written routers have no deployment).
func ParseRouterName(name string) (deploymentID int64, ok bool) {
	if len(name) < 3 || name[0] != 'd' {
		return 0, false
	}
	digits, _, found := strings.Cut(name[1:], "-")
	if !found || digits == "" || len(digits) > 18 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}
