package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/chromedp/chromedp"

	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/caddy/demo"
	"github.com/caddy-upload-progress/caddy-upload-progress/cmd/upload-origin/origin"
)

// The demo page (`caddy demo`, at /) in headless Chromium: a raw shard
// upload and a tus upload with Uppy, sent from the page through a client
// link paced to demoPageRate, while a second tab watches the shard upload
// by its watch URL. Each bar moves through values between 0 and 100 and
// ends at 100, completed, and the origin holds both files byte for byte.
// The first tab's screenshot, taken mid-upload, goes to
// test/artifacts/demo.png (and with -update to docs/img/demo.png, which
// the README shows).
func TestDemoPage(t *testing.T) {
	p := openDemoPage(t)
	shard := pageUpload{protocol: "shard", name: "holiday video.mp4", src: pattern(12 << 20)}
	tus := pageUpload{protocol: "tus", name: "backup.tar", src: pattern(10 << 20)[1:]}
	first := p.tab(t, p.browser, "/")
	p.upload(t, first, shard)
	shardKey := p.key(t, first, "shard")
	if shardKey != "shard:/demo/holiday video.mp4" {
		t.Fatalf("the shard upload's key is %q", shardKey)
	}
	p.upload(t, first, tus)
	// The second tab watches the shard upload by its watch URL.
	second := p.tab(t, first, "/?watch="+url.QueryEscape(shardKey))

	var shot []byte
	seen := follow(t, map[string]context.Context{"first tab": first, "second tab": second}, 3, func(seen map[string]*barTrace) {
		if shot == nil && seen["first tab shard"].midway() && seen["first tab tus"].midway() {
			shot = tabRun(t, first, "screenshot", chromedp.FullScreenshot(100))
		}
	})
	if shot == nil {
		t.Error("no moment with both bars midway: the uploads were not observable while they ran")
		shot = tabRun(t, first, "screenshot", chromedp.FullScreenshot(100))
	}
	writeScreenshot(t, shot)
	checkEnds(t, seen)
	if last := seen["first tab tus"].last(); last.Client != 100 {
		t.Errorf("Uppy's own count ended at %v%%", last.Client)
	}
	p.checkStored(t, shard, seen["first tab shard"].last().Key)
	p.checkStored(t, tus, seen["first tab tus"].last().Key)
}

// The page's other two ways, at once: a multipart upload to pCloud's
// uploadfile and a sandbox session sent in parts.
func TestDemoPageMultipartAndSessions(t *testing.T) {
	p := openDemoPage(t)
	pcloud := pageUpload{protocol: "pcloud", name: "photos.zip", src: pattern(9 << 20)}
	sandbox := pageUpload{protocol: "sandbox", name: "dataset.csv", src: pattern(11 << 20)[3:]}
	tab := p.tab(t, p.browser, "/")
	p.upload(t, tab, pcloud)
	p.upload(t, tab, sandbox)
	seen := follow(t, map[string]context.Context{"tab": tab}, 2, nil)
	checkEnds(t, seen)
	p.checkStored(t, pcloud, seen["tab pcloud"].last().Key)
	p.checkStored(t, sandbox, seen["tab sandbox"].last().Key)
}

// A card says why it failed: with no credential, Caddy refuses to tell the
// page how a shard upload goes (its owner is the x-user-api-key), and the
// card ends failed, naming the header.
func TestDemoPageShowsErrors(t *testing.T) {
	p := openDemoPage(t)
	tab := p.tab(t, p.browser, "/")
	tabRun(t, tab, "clear the credential", chromedp.Evaluate[string](`document.getElementById('credential').value = ''`))
	p.upload(t, tab, pageUpload{protocol: "shard", name: "notes.txt", src: pattern(1 << 20)})
	seen := follow(t, map[string]context.Context{"tab": tab}, 1, nil)
	if last := seen["tab shard"].last(); last.Status != "failed" || !strings.Contains(last.Error, "x-user-api-key") {
		t.Errorf("the card ended %+v, want failed, naming the missing x-user-api-key", last)
	}
}

// demoPage is the demo's Caddy and origin, a paced link to them, and a
// browser.
type demoPage struct {
	link      string // the paced link's base URL
	originDir string
	files     string // where the files to upload are written
	browser   context.Context
}

// openDemoPage starts the demo's Caddy and origin, a link to them paced
// to demoPageRate (a slow uplink, so that each upload lasts seconds), and
// headless Chromium; all stop when the test ends.
func openDemoPage(t *testing.T) *demoPage {
	t.Helper()
	chromium := requireChromium(t)
	site, originDir := startDemoConfig(t)
	p := &demoPage{link: startPacedLink(t, site, demoPageRate), originDir: originDir, files: t.TempDir()}
	ctx, cancel := context.WithTimeout(startBrowser(t, chromium), demoPageTimeout)
	t.Cleanup(cancel)
	p.browser = ctx
	return p
}

// tab opens a new tab of parent's browser at the page's path.
func (p *demoPage) tab(t *testing.T, parent context.Context, path string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	tabDo(t, tab, "open "+path, chromedp.Navigate(p.link+path), chromedp.WaitVisible(chromedp.ID("files")))
	return tab
}

// pageUpload is a file the page uploads.
type pageUpload struct {
	protocol, name string
	src            []byte
}

// upload picks u's protocol and u's file on the page, which uploads it.
func (p *demoPage) upload(t *testing.T, tab context.Context, u pageUpload) {
	t.Helper()
	file := filepath.Join(p.files, u.name)
	if err := os.WriteFile(file, u.src, 0o600); err != nil {
		t.Fatal(err)
	}
	tabDo(t, tab, "upload "+u.name+" with "+u.protocol,
		chromedp.Click(chromedp.CSS(`input[name="protocol"][value="`+u.protocol+`"]`)),
		chromedp.SetUploadFiles(chromedp.ID("files"), []string{file}))
}

// key waits for the watch key of the tab's upload with protocol.
func (p *demoPage) key(t *testing.T, tab context.Context, protocol string) string {
	t.Helper()
	return tabRun(t, tab, "wait for the "+protocol+" upload's key",
		chromedp.Poll[string](`document.querySelector('li.card[data-protocol="`+protocol+`"]')?.dataset.key`,
			chromedp.WithPollingTimeout(30*time.Second)))
}

// checkStored checks that the origin holds u byte for byte, under the key
// its card showed.
func (p *demoPage) checkStored(t *testing.T, u pageUpload, key string) {
	t.Helper()
	var stored string
	switch u.protocol {
	case "shard":
		stored = filepath.Join(p.originDir, "demo", u.name)
	case "pcloud":
		stored = filepath.Join(p.originDir, u.name)
	case "sandbox":
		stored = filepath.Join(p.originDir, "sandbox", "demo", u.name)
	case "tus":
		stored = filepath.Join(p.originDir, origin.TusDir, path.Base(strings.TrimPrefix(key, "tus:")))
	}
	got, err := os.ReadFile(stored)
	if err != nil || sha256Hex(got) != sha256Hex(u.src) {
		t.Errorf("the origin's copy of the %s upload %s (%s): %d bytes, %v; not the file sent", u.protocol, u.name, key, len(got), err)
	}
}

// follow reads the cards of the tabs until n cards have ended, and
// returns what each showed, by "<tab> <protocol>". onTick, if set, sees
// the traces after each reading.
func follow(t *testing.T, tabs map[string]context.Context, n int, onTick func(map[string]*barTrace)) map[string]*barTrace {
	t.Helper()
	seen := map[string]*barTrace{}
	deadline := time.Now().Add(demoPageTimeout / 2)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ended := 0
		for tab, ctx := range tabs {
			for _, c := range tabRun(t, ctx, "read the bars", chromedp.Evaluate[[]cardState](readCards)) {
				tr := seen[tab+" "+c.Protocol]
				if tr == nil {
					tr = &barTrace{}
					seen[tab+" "+c.Protocol] = tr
				}
				tr.add(t, tab, c)
				if c.Status == "completed" || c.Status == "failed" {
					ended++
				}
			}
		}
		if onTick != nil {
			onTick(seen)
		}
		if ended == n && len(seen) == n {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("the uploads did not end within %v: %v", demoPageTimeout/2, seen)
		}
		<-tick.C
	}
}

// checkEnds checks that every card moved through values between 0 and
// 100, showed a rate and a time left, and ended completed at 100%.
func checkEnds(t *testing.T, seen map[string]*barTrace) {
	t.Helper()
	for name, tr := range seen {
		last := tr.last()
		if last.Status != "completed" || last.Server != 100 || last.Error != "" {
			t.Errorf("%s ended %+v, want completed at 100%%", name, last)
		}
		// A tab that uploads sees its uploads from their start; one that
		// watches joins a running upload.
		want := 2
		if strings.HasPrefix(name, "second") {
			want = 1
		}
		if n := len(tr.between); n < want {
			t.Errorf("%s: the bar showed %d values between 0 and 100 (%v), want at least %d", name, n, tr.between, want)
		}
		if !tr.rated {
			t.Errorf("%s: never showed a rate and a time left while uploading: %+v", name, tr.states)
		}
	}
}

// demoPageRate is how fast the paced link passes what the browser sends,
// per connection: 12 MiB take 6 s.
const demoPageRate = 2 << 20

// demoPageTimeout bounds the whole browser session.
const demoPageTimeout = 3 * time.Minute

// readCards reads every upload card of a tab, as a user sees it.
const readCards = `[...document.querySelectorAll('li.card')].map((c) => ({
	key: c.dataset.key || '',
	protocol: c.dataset.protocol,
	status: c.dataset.status,
	server: c.querySelector('.server progress').value,
	client: c.querySelector('.client progress').value,
	numbers: c.querySelector('.numbers').textContent,
	error: c.querySelector('.error').textContent,
}))`

// cardState is one card as readCards reads it.
type cardState struct {
	Key      string  `json:"key"`
	Protocol string  `json:"protocol"`
	Status   string  `json:"status"`
	Numbers  string  `json:"numbers"`
	Error    string  `json:"error"`
	Server   float64 `json:"server"`
	Client   float64 `json:"client"`
}

// barTrace is what one card showed over time.
type barTrace struct {
	states  []cardState
	between []float64 // the distinct values of its bar between 0 and 100
	rated   bool      // it showed a rate and a time left
}

// add notes the card's state; the bar never goes back.
func (b *barTrace) add(t *testing.T, tab string, c cardState) {
	t.Helper()
	if n := len(b.states); n > 0 && c.Server < b.states[n-1].Server {
		t.Errorf("%s: %s bar went back from %v to %v", tab, c.Protocol, b.states[n-1].Server, c.Server)
	}
	if n := len(b.between); c.Server > 0 && c.Server < 100 && (n == 0 || b.between[n-1] != c.Server) {
		b.between = append(b.between, c.Server)
	}
	b.rated = b.rated || strings.Contains(c.Numbers, "MiB/s") && strings.Contains(c.Numbers, "left")
	b.states = append(b.states, c)
}

// midway reports whether the bar is now between a quarter and 90%.
func (b *barTrace) midway() bool {
	if b == nil || len(b.states) == 0 {
		return false
	}
	v := b.states[len(b.states)-1].Server
	return v >= 25 && v <= 90
}

// last is the card's latest state.
func (b *barTrace) last() cardState { return b.states[len(b.states)-1] }

func (b *barTrace) String() string {
	last := b.last()
	return fmt.Sprintf("{%s %s %v%% %q %q}", last.Key, last.Status, last.Server, last.Numbers, last.Error)
}

// startDemoConfig runs the origin as `caddy demo` does (any credential) and
// Caddy in this process with the demo's config, and returns the site's URL
// and the origin's store.
func startDemoConfig(t *testing.T) (site, originDir string) {
	t.Helper()
	originDir = t.TempDir()
	o, err := origin.New(origin.Config{Dir: originDir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: o}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		o.Close()
	})
	listen := "127.0.0.1:" + freePort(t)
	cfg, err := demo.Config(listen, ln.Addr().String(), "127.0.0.1:"+freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	// The tests' own storage, and no autosave: the user's stay untouched.
	var c map[string]any
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	c["storage"] = map[string]any{"module": "file_system", "root": storageDir}
	c["admin"].(map[string]any)["config"] = map[string]any{"persist": false}
	if cfg, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping caddy: %v", err)
		}
	})
	return "http://" + listen, originDir
}

// writeScreenshot writes the page's screenshot to test/artifacts/demo.png,
// and with -update to docs/img/demo.png too.
func writeScreenshot(t *testing.T, png []byte) {
	t.Helper()
	targets := []string{filepath.Join("artifacts", "demo.png")}
	if *updateGolden {
		targets = append(targets, filepath.Join("..", "docs", "img", "demo.png"))
	}
	for _, f := range targets {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", f)
	}
}
