// Command strom is Strom's single binary: the broker (strom serve) and the
// command line tools.
package main

import (
	"context"
	"os"

	"github.com/stromhq/strom/cmd/strom/servecmd"
	"github.com/stromhq/strom/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr, servecmd.Commands()...))
}
