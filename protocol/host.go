package protocol

import (
	"net"
	"regexp"
	"strings"
)

var hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// ValidHost reports whether h is a host name or an IP address (no scheme,
// no port): a node's host, or the route host an agent reports for its
// published ports (ServiceState.RouteHost).
func ValidHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}
