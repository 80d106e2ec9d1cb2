package test

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The tests here run the JavaScript client in headless Chromium, as a page
// does: the module imported from the handler's client_path, a Blob
// uploaded with uploadWithProgress, no header on a WebSocket or an
// EventSource.

// browserUpload is what the page reports of one upload.
type browserUpload struct {
	Events []struct {
		Uploaded float64 `json:"uploaded"`
		Total    float64 `json:"total"`
		Status   string  `json:"status"`
	} `json:"events"`
	Transports []string `json:"transports"`
	Tried      []string `json:"tried"`
	Error      string   `json:"error"`
	Status     int      `json:"status"`
	Key        string   `json:"key"`
	SHA256     string   `json:"sha256"`
}

// browserScript imports the client and uploads 4 MiB of each case, one
// after the other, returning what it saw as JSON. Each case is
// [protocol, options]; a name given in the options is the stored file's.
const browserScript = `(async (cases) => {
  const { uploadWithProgress } = await import('/upload-progress.js')
  const out = []
  let seed = 1
  for (const [protocol, opts] of cases) {
    const bytes = new Uint8Array(4 << 20)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed * 7) & 0xff
    seed++
    const hex = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')
    const r = { events: [], transports: [], tried: [], error: '', status: 0, key: '', sha256: hex }
    try {
      const res = await uploadWithProgress(new Blob([bytes]), {
        protocol, pollInterval: 50, ...opts,
        onProgress: (ev, reply, via) => { r.events.push(ev); r.transports.push(via) },
        onTransport: (t) => r.tried.push(t),
        onEnd: (ev, err) => { if (err) r.error = String(err) },
      })
      r.status = res.response.status
      r.key = res.key
    } catch (err) {
      r.error = String(err)
    }
    out.push(r)
  }
  return JSON.stringify(out)
})`

// runInBrowser opens Caddy's client_path in headless Chromium, runs
// browserScript on cases (JSON) and returns what the page reported.
func runInBrowser(t *testing.T, e *env, cases string) []browserUpload {
	t.Helper()
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Fatalf("chromium is not on PATH (%v): apt-get install -y chromium", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.WSURLReadTimeout(60*time.Second))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if _, err := chromedp.Run(bctx, chromedp.Navigate(e.proxy+"/upload-progress.js")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	out, err := chromedp.Run(bctx, chromedp.Evaluate[string](browserScript+"("+cases+")", chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	var ups []browserUpload
	if err := json.Unmarshal([]byte(out), &ups); err != nil {
		t.Fatalf("the page's report %q: %v", out, err)
	}
	return ups
}

// checkBrowserUpload fails t unless the page saw up completed, whole,
// and the origin holds what the page sent at stored.
func checkBrowserUpload(t *testing.T, e *env, name string, up browserUpload, stored string) {
	t.Helper()
	const size = 4 << 20
	if up.Error != "" || len(up.Events) == 0 {
		t.Fatalf("%s: the page saw %d events, error %q", name, len(up.Events), up.Error)
	}
	last := up.Events[len(up.Events)-1]
	if last.Status != "completed" || last.Uploaded != size || last.Total != size {
		t.Fatalf("%s: last event %+v, want completed with %d of %d", name, last, size, size)
	}
	if got := e.storedSHA256(stored); got != up.SHA256 {
		t.Fatalf("%s: the origin holds %s with sha256 %s, the page sent %s", name, stored, got, up.SHA256)
	}
}

// TestJSClientInABrowser: pcloud's credential is a parameter, so the
// page's WebSocket carries it; nginx is polled; shard's credential is a
// header, which the page's fetch sends, whichever transport it ends on.
func TestJSClientInABrowser(t *testing.T) {
	e := newJSClientEnvFor(t, "")
	ups := runInBrowser(t, e, `[
  ["pcloud", {"key": "browser-hash", "credential": "test-key", "name": "browser-pcloud.bin"}],
  ["nginx", {"key": "browser-id", "name": "browser-nginx.bin", "headers": {"x-user-api-key": "test-key"}}],
  ["shard", {"key": "/browser/shard.bin", "credential": "test-key", "query": {"overwrite": "true"}}]
]`)
	if len(ups) != 3 {
		t.Fatalf("the page reported %d uploads, want 3", len(ups))
	}
	checkBrowserUpload(t, e, "pcloud", ups[0], "/browser-pcloud.bin")
	if ups[0].Tried[0] != "websocket" || !onlyOver(ups[0].Transports, "websocket") {
		t.Errorf("pcloud: tried %v, events over %v; want the WebSocket", ups[0].Tried, ups[0].Transports)
	}
	checkBrowserUpload(t, e, "nginx", ups[1], "/browser-nginx.bin")
	if !onlyOver(ups[1].Transports, "poll") {
		t.Errorf("nginx: events over %v, want polling", ups[1].Transports)
	}
	checkBrowserUpload(t, e, "shard", ups[2], "/browser/shard.bin")
	if ups[2].Status != 201 {
		t.Errorf("shard: the upload was answered %d, want 201", ups[2].Status)
	}
}

// TestJSClientInABrowserWithWatchToken: shard's credential is a header,
// which a page's WebSocket cannot send: the page gets a watch token over
// REST and watches over the WebSocket with it.
func TestJSClientInABrowserWithWatchToken(t *testing.T) {
	e := newJSClientEnvFor(t, "")
	ups := runInBrowser(t, e, `[
  ["shard", {"key": "/browser/token.bin", "credential": "test-key", "query": {"overwrite": "true"}}],
  ["sandbox", {"sandbox": "sb1", "credential": "test-key", "targetPath": "/browser/sandbox.bin", "partSize": 1048576, "transports": ["sse"]}]
]`)
	if len(ups) != 2 {
		t.Fatalf("the page reported %d uploads, want 2", len(ups))
	}
	checkBrowserUpload(t, e, "shard", ups[0], "/browser/token.bin")
	if !onlyOver(ups[0].Transports[1:], "websocket") {
		t.Errorf("shard: tried %v, events over %v; want the token's reply, then the WebSocket", ups[0].Tried, ups[0].Transports)
	}
	checkBrowserUpload(t, e, "sandbox", ups[1], "/browser/sandbox.bin")
	if !onlyOver(ups[1].Transports, "sse") {
		t.Errorf("sandbox: events over %v, want Server-Sent Events read through fetch", ups[1].Transports)
	}
}

// onlyOver reports whether every event came over transport.
func onlyOver(transports []string, transport string) bool {
	for _, tr := range transports {
		if tr != transport {
			return false
		}
	}
	return len(transports) > 0
}
