package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	uploadprogress "github.com/caddy-upload-progress/caddy-upload-progress"
	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// demoOriginAddr is where Caddyfile.example expects the origin.
const demoOriginAddr = "127.0.0.1:9000"

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "demo",
		Usage: "[--dir <path>]",
		Short: "Runs the quickstart: the reference upload origin behind Caddy with Caddyfile.example",
		Long: `
Starts the reference upload origin on ` + demoOriginAddr + ` (storing into --dir,
or a new temporary directory) and Caddy with the Caddyfile.example embedded in
this binary in front of it, on :8080. Then, for example:

  curl -X POST -T big.bin -H 'x-user-api-key: demo' 'http://localhost:8080/fso?path=/big.bin&informProgress=true'
  curl -H 'x-user-api-key: demo' 'http://localhost:8080/progress?path=/big.bin'

Stop it with Ctrl-C.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("dir", "", "where the origin stores uploads (default: a new temporary directory)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(runDemo)
		},
	})
}

func runDemo(fl caddycmd.Flags) (int, error) {
	dir := fl.String("dir")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "upload-origin-"); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
	}
	o, err := origin.New(origin.Config{Dir: dir})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	ln, err := net.Listen("tcp", demoOriginAddr)
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("starting the demo origin: %v", err)
	}
	go http.Serve(ln, o)

	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(uploadprogress.ExampleCaddyfile,
		map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, w.String())
	}
	caddy.TrapSignals()
	if err := caddy.Load(cfg, true); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Fprintf(os.Stderr, `
upload-progress demo: Caddy on :8080, origin on %s storing into %s

  curl -X POST -T big.bin -H 'x-user-api-key: demo' 'http://localhost:8080/fso?path=/big.bin&informProgress=true'
  curl -H 'x-user-api-key: demo' 'http://localhost:8080/progress?path=/big.bin'
  curl http://localhost:2019/metrics | grep caddy_upload_progress

`, demoOriginAddr, dir)
	select {}
}
