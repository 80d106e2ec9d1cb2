package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/caddy/demo"
	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// originShutdownGrace is how long requests sent straight to the origin
// may take to finish once Caddy has stopped.
const originShutdownGrace = 5 * time.Second

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "demo",
		Usage: "[--dir <path>] [--listen <addr>] [--origin <addr>] [--admin <addr>]",
		Short: "Runs the quickstart: the reference upload origin behind Caddy with Caddyfile.example",
		Long: `
Starts the reference upload origin on ` + demo.Origin + ` (storing into --dir,
or a new temporary directory) and Caddy with the Caddyfile.example embedded in
this binary in front of it, on ` + demo.Listen + `, tracking the uploads of every
progress API the module serves:

  shard   POST /fso?path=/big.bin&informProgress=true    GET /progress?path=/big.bin
          (header x-user-api-key; WebSocket /ws/progress?path=/big.bin)
  pcloud  POST /uploadfile?progresshash=<hash>&auth=<token>
          GET /uploadprogress?progresshash=<hash>&auth=<token>
  nginx   POST /upload?X-Progress-ID=<id>                 GET /progress?X-Progress-ID=<id>
  tus     POST /files/, then PATCH <upload URL>           GET /tus/progress?upload=<upload URL>
          (tus 1.0 as tusd serves it; WebSocket /tus/progress/ws?upload=<upload URL>)
  sandbox POST /v1/sandboxes/<id>/uploads, then PUT …/uploads/<upload_id>/parts/<n>
          GET /v1/sandboxes/<id>/uploads/<upload_id>: the origin's answer, overlaid
          (Authorization: Bearer <token>; WebSocket …/uploads/<upload_id>/ws)
  dstor   POST /v1/upload/get-token, then POST /v1/upload/ per chunk
          GET /v1/upload/get-status/ (headers Authorization and x-dstor-upload-token;
          WebSocket /v1/upload/get-status/ws)

It serves a web page at / (http://localhost:8080/ by default) that uploads
files through Caddy with shard, pcloud, tus (Uppy) or sandbox and shows
Caddy's count of each; /?watch=<protocol>:<key> watches an upload made
elsewhere. The origin accepts any API key or token (the sandbox wants one, as
a bearer token). At start the demo prints commands to try each of them. Ctrl-C (or
SIGTERM) stops it once the uploads in flight are through, and removes the
temporary directory (never a --dir); a second Ctrl-C quits at once and leaves
it.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("dir", "", "where the origin stores uploads (default: a new temporary directory, removed on exit)")
			cmd.Flags().String("listen", demo.Listen, "address Caddy serves the demo site on")
			cmd.Flags().String("origin", demo.Origin, "address of the reference origin behind Caddy")
			cmd.Flags().String("admin", demo.Admin, "address of Caddy's admin endpoint (with /metrics)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(runDemo)
		},
	})
}

func runDemo(fl caddycmd.Flags) (int, error) {
	listen, originAddr, admin := fl.String("listen"), fl.String("origin"), fl.String("admin")
	cfg, err := demo.Config(listen, originAddr, admin)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}

	dir, temp := fl.String("dir"), false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "upload-origin-"); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		temp = true
	}
	o, err := startOrigin(dir, temp, originAddr)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}

	// Caddy's signal handling stops its apps (waiting for the uploads in
	// flight) and then runs the exit callbacks: the origin stops after
	// Caddy, and its temporary store goes with it.
	caddy.TrapSignals()
	if err := caddy.Load(cfg, true); err != nil {
		o.stop(context.Background())
		return caddy.ExitCodeFailedStartup, err
	}
	caddy.OnExit(o.stop)

	fmt.Print(demoBanner(listen, originAddr, admin, dir, temp))
	select {}
}

// demoOriginServer is the reference origin the demo runs behind Caddy.
type demoOriginServer struct {
	srv  *http.Server
	h    *origin.Server
	dir  string
	temp bool // dir was made by the demo: remove it on exit
}

func startOrigin(dir string, temp bool, addr string) (*demoOriginServer, error) {
	removeTemp := func() {
		if temp {
			os.RemoveAll(dir)
		}
	}
	h, err := origin.New(origin.Config{Dir: dir})
	if err != nil {
		removeTemp()
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		h.Close()
		removeTemp()
		return nil, fmt.Errorf("starting the demo origin: %v", err)
	}
	// No ReadTimeout: large uploads may legitimately take long.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &demoOriginServer{srv: srv, h: h, dir: dir, temp: temp}, nil
}

// stop shuts the origin down and removes its store if the demo made it.
func (o *demoOriginServer) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, originShutdownGrace)
	defer cancel()
	if err := o.srv.Shutdown(ctx); err != nil {
		o.srv.Close()
	}
	o.h.Close()
	if !o.temp {
		return
	}
	if err := os.RemoveAll(o.dir); err != nil {
		fmt.Fprintf(os.Stderr, "upload-progress demo: removing %s: %v\n", o.dir, err)
		return
	}
	fmt.Fprintf(os.Stderr, "upload-progress demo: removed %s\n", o.dir)
}

// demoBanner is what the demo prints once it serves: where things are,
// and commands to paste into another shell, throttled so that an upload
// can be watched by hand.
func demoBanner(listen, originAddr, admin, dir string, temp bool) string {
	site, adminURL := baseURL(listen), baseURL(admin)
	store := dir + " (kept)"
	if temp {
		store = dir + " (removed when the demo stops)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `
upload-progress demo: the demo page is at %[4]s/
Caddy on %[1]s tracks uploads to the reference origin on %[2]s,
which stores them in %[3]s.
The origin accepts any API key or token (the sandbox's as a bearer token). Ctrl-C stops the demo. In another shell, try:

head -c 200000000 /dev/urandom > big.bin

# shard: upload in the background, then ask how far it is (again to see it completed)
curl -s -o /dev/null --limit-rate 20M -X POST -T big.bin -H 'x-user-api-key: demo' '%[4]s/fso?path=/big.bin&informProgress=true&overwrite=true' &
sleep 1; curl -H 'x-user-api-key: demo' '%[4]s/progress?path=/big.bin'

# pcloud: the same through pCloud's uploadfile and uploadprogress
curl -s -o /dev/null --limit-rate 20M -F 'file=@big.bin' '%[4]s/uploadfile?progresshash=demo-1&auth=demo' &
sleep 1; curl '%[4]s/uploadprogress?progresshash=demo-1&auth=demo'

# nginx: the same as nginx's upload progress module sees it
curl -s -o /dev/null --limit-rate 20M -X POST -T big.bin '%[4]s/upload?X-Progress-ID=demo-1' &
sleep 1; curl '%[4]s/progress?X-Progress-ID=demo-1'

# tus: create an upload (its URL goes to tus.url), send it in one PATCH, ask how far it is
curl -s -o /dev/null -w '%%header{location}' -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $(wc -c < big.bin)" -H 'Upload-Metadata: filename YmlnLmJpbg==' '%[4]s/files/' > tus.url
curl -s -o /dev/null --limit-rate 20M -X PATCH -T big.bin -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' "$(cat tus.url)" &
sleep 1; curl "%[4]s/tus/progress?upload=$(cat tus.url)"

# sandbox: create an upload session of big.bin in 64 MiB parts (its URL path goes to sandbox.path), send part 1, ask how the session stands (the origin's answer, the live view laid over it)
curl -s -o /dev/null -w '%%header{location}' -X POST -H 'Authorization: Bearer demo' -H 'Content-Type: application/json' -d "{\"target_path\":\"/sandbox/big.bin\",\"content_length\":$(wc -c < big.bin),\"part_size\":67108864,\"kind\":\"file\",\"conflict\":\"replace\"}" '%[4]s/v1/sandboxes/sb_demo/uploads' > sandbox.path
head -c 67108864 big.bin > part1.bin
curl -s -o /dev/null --limit-rate 20M -X PUT -T part1.bin -H 'Authorization: Bearer demo' "%[4]s$(cat sandbox.path)/parts/1" &
sleep 1; curl -H 'Authorization: Bearer demo' "%[4]s$(cat sandbox.path)"

# dstor: a token for a folder of one chunk (it goes to dstor.token), the chunk, then how it stands
curl -s -H 'Authorization: demo' -H 'Content-Type: application/json' -d '{"chunks_number":1,"folder_path":"/demo"}' '%[4]s/v1/upload/get-token' | sed 's/.*"token":"\([^"]*\)".*/\1/' > dstor.token
curl -s -o /dev/null --limit-rate 20M -H 'Authorization: demo' -H "x-dstor-upload-token: $(cat dstor.token)" -F 'file=@big.bin;filename=2024/big.bin' '%[4]s/v1/upload/' &
sleep 1; curl -H 'Authorization: demo' -H "x-dstor-upload-token: $(cat dstor.token)" '%[4]s/v1/upload/get-status/'

# the module's metrics
curl -s %[5]s/metrics | grep ^caddy_upload_progress_uploads

`, listen, originAddr, store, site, adminURL)
	return b.String()
}

// baseURL is the http URL of a listen address; an address on every
// interface is reached on localhost.
func baseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
