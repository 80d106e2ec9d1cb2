// Package cli is `caddy upload-progress`: the terminal client of the
// progress APIs the upload_progress module serves. `watch` follows an
// upload on the server, `upload` sends a file and follows it; both show
// the server's count of the upload's bytes (not what left this machine),
// as a live bar on a terminal, a line per update otherwise, or JSON
// lines.
//
// The module's root package imports this one, so that every Caddy built
// with the module (xcaddy included) has the command.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "upload-progress",
		Usage: "watch|upload",
		Short: "Watches an upload's progress on a Caddy with upload_progress, or uploads a file and watches it",
		Long: `
Follows an upload as the Caddy in front of its origin counts it, through the
progress API of one of the module's protocols (shard, pcloud, nginx, tus,
sandbox, dstor): over the protocol's WebSocket, or by polling its REST status
where the WebSocket is refused.

  caddy upload-progress watch --server http://localhost:8080 --protocol shard --key /big.bin --api-key K
  caddy upload-progress upload big.bin --server http://localhost:8080 --protocol tus

On a terminal it draws a bar (bytes, percentage, rate, time left); otherwise
it prints a line per update; --json prints each update as a JSON line.

Exit codes: 0 the upload completed, 1 it failed (or the server could not be
asked), 2 a usage error, 3 the upload did not appear within --wait.`,
		CobraFunc: func(cmd *cobra.Command) {
			for _, name := range []string{"watch", "upload"} {
				cmd.AddCommand(subcommand(name))
			}
		},
	})
}

// subcommand is the cobra command of watch or upload. It parses its own
// flags (the same set, shown in its help), so that a usage error exits
// with 2 as documented: Caddy's command wrapper exits 1 on cobra's flag
// errors.
func subcommand(name string) *cobra.Command {
	use, short := "watch --server URL --key KEY [flags]", "Watches an upload until it ends"
	if name == "upload" {
		use, short = "upload FILE --server URL [--key KEY] [flags]", "Uploads FILE and watches the server's count of it until it ends"
	}
	c := &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(c *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stdio := Stdio{Out: os.Stdout, Err: os.Stderr, TTY: term.IsTerminal(int(os.Stdout.Fd()))}
			if stdio.TTY {
				stdio.Columns, _, _ = term.GetSize(int(os.Stdout.Fd()))
			}
			code := Run(ctx, append([]string{name}, args...), stdio)
			if code != exitCompleted {
				stop()
				os.Exit(code)
			}
			return nil
		},
	}
	fs, _ := newFlagSet(name)
	c.Flags().AddFlagSet(fs)
	return c
}

// Stdio is where a run writes, and whether its output is a terminal
// (the bar) or not (lines).
type Stdio struct {
	Out, Err io.Writer
	TTY      bool
	// Columns is the terminal's width, which the bar fits; 0 if unknown.
	Columns int
}

// Run runs `caddy upload-progress` with args (watch or upload, then its
// arguments) and returns the exit code. ctx's end interrupts it.
func Run(ctx context.Context, args []string, stdio Stdio) int {
	if len(args) == 0 || args[0] != "watch" && args[0] != "upload" {
		fmt.Fprintln(stdio.Err, "usage: caddy upload-progress watch|upload [flags]")
		return exitUsage
	}
	command := args[0]
	o, fs, err := parse(command, args[1:])
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintf(stdio.Out, "usage: caddy upload-progress %s\n\n%s", usageLine(command), fs.FlagUsages())
		return exitCompleted
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "upload-progress %s: %v\nusage: caddy upload-progress %s (--help for the flags)\n", command, err, usageLine(command))
		return exitUsage
	}
	r := &run{o: o, stdio: stdio, client: &http.Client{Timeout: requestTimeout}}
	var last Update
	if command == "watch" {
		last, err = r.watch(ctx)
	} else {
		last, err = r.upload(ctx)
	}
	return r.report(ctx, last, err)
}

// requestTimeout bounds each status request (not an upload, nor a
// WebSocket once open).
const requestTimeout = 15 * time.Second

func usageLine(command string) string {
	if command == "upload" {
		return "upload FILE --server URL [--protocol shard|pcloud|tus] [--key KEY] [--api-key K] [--wait 30s] [--json]"
	}
	return "watch --server URL [--protocol P] --key KEY [--api-key K] [--wait 30s] [--json]"
}
