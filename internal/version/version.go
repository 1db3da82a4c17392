// Package version is the release version every NullOps binary carries. It
// is set at build time for all of them at once:
//
//	go build -ldflags "-X github.com/nullops/nullops/internal/version.Version=v1.2.3" ./cmd/...
//
// (`make build` does). Builds without it — tests, `go run` — are "dev".
package version

import (
	"fmt"
	"os"
	"runtime"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/protocol"
)

// Version is the release version ("dev" for development builds).
var Version = "dev"

// Dev is the version of development builds.
const Dev = "dev"

// IsDev reports whether v is a development build's version: "dev" or
// empty. The server accepts agents of any version when either side is one.
func IsDev(v string) bool { return v == "" || v == Dev }

// Line is what `<binary> version` prints.
func Line(binary string) string {
	return fmt.Sprintf("%s %s (agent protocol %d, %s %s/%s)", binary, Version, protocol.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Command is the `version` subcommand of a paerser command line.
func Command(binary string) *cli.Command {
	return &cli.Command{
		Name:        "version",
		Description: "Print the release version of " + binary + ".",
		Run: func(_ []string) error {
			_, err := fmt.Fprintln(os.Stdout, Line(binary))
			return err
		},
	}
}
