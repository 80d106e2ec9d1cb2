package testkit

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFreePortCanBeListenedOn(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d", port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("listening on the free port %d: %v", port, err)
	}
	ln.Close()
}

func TestWebSocketURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":         "ws://127.0.0.1:8080",
		"https://127.0.0.1:8443/ws?x=1": "wss://127.0.0.1:8443/ws?x=1",
	} {
		if got := WebSocketURL(in); got != want {
			t.Errorf("WebSocketURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10, 1, 1000, 10}, 10},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %v, want NaN", got)
	}
	in := []float64{3, 1, 2}
	Median(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("Median modified its input: %v", in)
	}
}

func TestSinkReadsTheWholeBodyAndAnswers201(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(Sink))
	defer srv.Close()
	const size = 1<<20 + 7 // more than one read buffer
	resp, err := http.Post(srv.URL, "application/octet-stream", strings.NewReader(strings.Repeat("x", size)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ok":true,"bytes":1048583}` + "\n"; resp.StatusCode != http.StatusCreated || string(body) != want {
		t.Errorf("sink answered %d %q, want 201 %q", resp.StatusCode, body, want)
	}
}

// fatalTB records RequireNode's failure and stops it there, as t.Fatalf
// would, without failing the test that checks it.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalStop struct{}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

// requireNodeFailure is RequireNode's failure message for dir, "" when it
// passes.
func requireNodeFailure(t *testing.T, dir string) (msg string) {
	f := &fatalTB{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalStop); !ok {
				panic(r)
			}
			msg = f.msg
		}
	}()
	RequireNode(f, dir)
	return ""
}

func TestRequireNode(t *testing.T) {
	// A stand-in node on a PATH of its own: what is checked is that one is
	// found, not the machine's.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "node"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	js := t.TempDir()
	t.Setenv("PATH", bin)
	if msg := requireNodeFailure(t, js); !strings.Contains(msg, "tus-js-client is not installed") || !strings.Contains(msg, "npm ci --prefix test/js") {
		t.Errorf("without node_modules: %q", msg)
	}
	pkg := filepath.Join(js, "node_modules", "tus-js-client")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "package.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := requireNodeFailure(t, js); msg != "" {
		t.Errorf("with node and tus-js-client: %q", msg)
	}
	t.Setenv("PATH", t.TempDir())
	if msg := requireNodeFailure(t, js); !strings.Contains(msg, "node is not on PATH") || !strings.Contains(msg, "npm ci --prefix test/js") {
		t.Errorf("without node: %q", msg)
	}
}
