package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Exit codes of both commands.
const (
	exitCompleted   = 0   // the upload completed
	exitFailed      = 1   // the upload failed, or the server could not be asked
	exitUsage       = 2   // the command line, or a request it made, is wrong
	exitNotAppeared = 3   // the upload did not appear within --wait
	exitInterrupted = 130 // Ctrl-C or SIGTERM, as shells report SIGINT
)

// Defaults of the flags.
const (
	defaultWait        = 30 * time.Second
	defaultTusEndpoint = "/files/"
)

// flags are the command line's values, as pflag fills them.
type flags struct {
	server, protocol, key, apiKey string
	wait                          time.Duration
	json                          bool
	headers                       []string
	statusPath, wsPath            string
	tusEndpoint                   string // upload only
	overwrite                     bool   // upload only
}

// newFlagSet defines the flags of command (watch or upload) on a new
// set, and returns where it puts their values.
func newFlagSet(command string) (*pflag.FlagSet, *flags) {
	fs := pflag.NewFlagSet(command, pflag.ContinueOnError)
	f := &flags{}
	protocols := protocolNames()
	if command == "upload" {
		protocols = uploadProtocolNames
	}
	fs.StringVar(&f.server, "server", "", "base URL of the Caddy that tracks the upload, e.g. http://localhost:8080 (required)")
	fs.StringVar(&f.protocol, "protocol", "shard", "progress API to speak: "+protocols)
	if command == "upload" {
		fs.StringVar(&f.key, "key", "", "shard: the path to store the file at (required); pcloud: the progresshash (default: a random one); tus: not used")
	} else {
		fs.StringVar(&f.key, "key", "", "the protocol's name of the upload (required): shard the path, pcloud the progresshash, nginx the X-Progress-ID, tus the upload URL, sandbox the session URL, dstor the upload token")
	}
	fs.StringVar(&f.apiKey, "api-key", "", "the protocol's credential: shard's x-user-api-key, pcloud's auth, sandbox's bearer token, dstor's Authorization; tus and nginx: sent as x-user-api-key")
	fs.DurationVar(&f.wait, "wait", defaultWait, "how long to wait for an upload the server does not know yet")
	fs.BoolVar(&f.json, "json", false, "print each update as one JSON line")
	fs.StringArrayVarP(&f.headers, "header", "H", nil, `extra request header "Name: value" (repeatable)`)
	fs.StringVar(&f.statusPath, "status-path", "", "the REST status path, where the module's status_path option moved it")
	fs.StringVar(&f.wsPath, "ws-path", "", "the WebSocket status path, where the module's websocket_path option moved it (nginx: none unless given)")
	if command == "upload" {
		fs.StringVar(&f.tusEndpoint, "tus-endpoint", defaultTusEndpoint, "tus: the path creations are POSTed to")
		fs.BoolVar(&f.overwrite, "overwrite", false, "shard: replace a file already at the path")
	}
	return fs, f
}

// uploadProtocolNames are the protocols upload sends files with.
const uploadProtocolNames = "shard, pcloud, tus"

// usageError is a command line that cannot be run (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// options are the checked flags.
type options struct {
	target
	protocol    string
	wait        time.Duration
	json        bool
	file        string // upload only
	tusEndpoint string
	overwrite   bool
}

// parse parses args of command and checks them. pflag.ErrHelp asks for
// the usage.
func parse(command string, args []string) (*options, *pflag.FlagSet, error) {
	fs, f := newFlagSet(command)
	fs.SetOutput(io.Discard) // the command says what is wrong itself
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, fs, err
		}
		return nil, fs, &usageError{err.Error()}
	}
	o, err := f.check(command, fs.Args())
	return o, fs, err
}

// check turns the flags into options, or says what is wrong with them.
func (f *flags) check(command string, args []string) (*options, error) {
	o := &options{protocol: f.protocol, wait: f.wait, json: f.json, tusEndpoint: f.tusEndpoint, overwrite: f.overwrite}
	o.key, o.apiKey, o.statusPath, o.wsPath = f.key, f.apiKey, f.statusPath, f.wsPath
	switch {
	case command == "watch" && len(args) > 0:
		return nil, usagef("watch takes no arguments, got %q", args)
	case command == "upload" && len(args) != 1:
		return nil, usagef("upload takes one FILE, got %d arguments", len(args))
	case f.server == "":
		return nil, usagef("--server is required")
	case f.wait < 0:
		return nil, usagef("--wait must not be negative")
	}
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, usagef("--server must be an http or https URL without a query, e.g. http://localhost:8080; got %q", f.server)
	}
	o.server = u
	for _, p := range []string{f.statusPath, f.wsPath, f.tusEndpoint} {
		if p != "" && !strings.HasPrefix(p, "/") {
			return nil, usagef("paths must start with /: %q", p)
		}
	}
	o.headers = http.Header{}
	for _, h := range f.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t") {
			return nil, usagef(`--header must be "Name: value", got %q`, h)
		}
		o.headers.Add(name, strings.TrimSpace(value))
	}
	if command == "watch" {
		if _, ok := newAdapters[o.protocol]; !ok {
			return nil, usagef("--protocol %q: watch knows %s", o.protocol, protocolNames())
		}
		if o.key == "" {
			return nil, usagef("--key is required: the %s name of the upload", o.protocol)
		}
		return o, nil
	}
	o.file = args[0]
	switch o.protocol {
	case "shard":
		if !strings.HasPrefix(o.key, "/") {
			return nil, usagef("--key is required with shard: the path to store the file at, starting with /")
		}
	case "pcloud":
	case "tus":
		if o.key != "" {
			return nil, usagef("--key is not used with tus: the server names the upload (its upload URL)")
		}
	default:
		return nil, usagef("--protocol %q: upload sends files with %s", o.protocol, uploadProtocolNames)
	}
	if st, err := os.Stat(o.file); err != nil {
		return nil, usagef("%v", err)
	} else if !st.Mode().IsRegular() {
		return nil, usagef("%s is not a regular file", o.file)
	}
	return o, nil
}
