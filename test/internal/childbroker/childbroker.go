package childbroker

import (
	"context"
	"os"

	"github.com/stromhq/strom/cmd/strom/servecmd"
	"github.com/stromhq/strom/internal/cli"
)

// ServeIfChild runs the strom command line with the arguments after "--"
// and exits with its status when the environment variable env is "1";
// otherwise it returns at once.
func ServeIfChild(env string) {
	if os.Getenv(env) != "1" {
		return
	}
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(cli.Main(context.Background(), args, os.Stdout, os.Stderr, servecmd.Commands()...))
}
