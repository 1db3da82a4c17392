package agents

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nullops/nullops/internal/version"
)

// SameRelease is the default version policy: mixed versions are not
// supported, so an agent must run the server's release. Release numbers
// (major.minor.patch) are compared with pre-release and build suffixes
// ignored; other build versions (a commit id from git describe) must be
// equal. A development build ("dev", e.g. tests and go run) on either side
// accepts any: only the protocol version, checked separately, decides.
func SameRelease(server string) func(agent string) error {
	return func(agent string) error {
		if version.IsDev(server) || version.IsDev(agent) {
			return nil
		}
		sv, ok1 := release(server)
		av, ok2 := release(agent)
		switch {
		case ok1 && ok2 && sv == av:
			return nil
		case !ok1 && !ok2 && strings.TrimPrefix(server, "v") == strings.TrimPrefix(agent, "v"):
			return nil
		}
		want := sv
		if !ok1 {
			want = server
		}
		return fmt.Errorf("agent version %s is not supported by server %s: mixed versions are not supported, run nullops-agent %s", agent, server, want)
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
