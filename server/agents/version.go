package agents

import (
	"fmt"
	"strconv"
	"strings"
)

// SameRelease is the default version policy: mixed versions are not
// supported, so an agent must run the server's release (major.minor.patch;
// pre-release and build suffixes are ignored). When either version is not a
// release number (a development build such as a bare commit id), only the
// protocol version, checked separately, decides.
func SameRelease(server string) func(agent string) error {
	return func(agent string) error {
		sv, ok1 := release(server)
		av, ok2 := release(agent)
		if !ok1 || !ok2 || sv == av {
			return nil
		}
		return fmt.Errorf("agent version %s is not supported by server %s: mixed versions are not supported, run nullops-agent %s", agent, server, sv)
	}
}

// release extracts "X.Y.Z" from "vX.Y.Z-suffix+build".
func release(v string) (string, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return "", false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return "", false
		}
	}
	return v, true
}
