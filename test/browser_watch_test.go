package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// watchPage is a page as a site would write it: the API key goes with
// fetch, once, for a watch token; the EventSource carries the token only.
const watchPage = `<!doctype html>
<script>
window.seen = [];
let wake = () => {};
// until resolves with what was seen once an event f accepts has come.
window.until = (f) => new Promise((resolve) => {
  const check = () => { if (window.seen.some(f)) resolve(window.seen); else wake = check; };
  check();
});
const see = (e) => { window.seen.push(e); wake(); };
(async () => {
  const q = 'path=' + encodeURIComponent('/browser.bin');
  const r = await fetch('/progress?' + q + '&watch_token=1', { headers: { 'x-user-api-key': '` + apiKey + `' } });
  const token = (await r.json()).watch_token;
  const es = new EventSource('/ws/progress?' + q + '&watch_token=' + token);
  es.addEventListener('progress', (e) => see({ event: 'progress', id: e.lastEventId, data: JSON.parse(e.data) }));
  es.addEventListener('end', (e) => { es.close(); see({ event: 'end', id: e.lastEventId, data: JSON.parse(e.data) }); });
})();
</script>`

// A real browser (headless Chromium) follows an upload by EventSource
// with a watch token: the bytes so far, then the end event with the
// completed upload, no credential in any URL.
func TestBrowserEventSourceWithWatchToken(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (%v): apt-get install chromium (.ci/run does it)", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "watch.html"), []byte(watchPage), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, "", fmt.Sprintf("handle /watch.html {\n\t\troot * %s\n\t\tfile_server\n\t}", dir), false)
	const size, first = 2 << 20, 1 << 20
	up := e.holdUpload("/browser.bin", size, first)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WSURLReadTimeout(60*time.Second))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	type seen struct {
		Event string
		ID    string
		Data  progressReply
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(e.proxy+"/watch.html")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	until := func(what, pred string) []seen {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]seen]("until((e) => "+pred+")", chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("waiting for the page to see %s: %v", what, err)
		}
		return got
	}
	if got := until("the bytes sent so far", fmt.Sprintf("e.data.uploaded === %d", first)); got[0].Data.Uploaded > first {
		t.Fatalf("the page saw %+v before the upload went on", got)
	}
	up.finish()
	got := until("the end event", "e.event === 'end'")
	last := got[len(got)-1]
	if last.Data.Status != "completed" || last.Data.Uploaded != size || last.ID != fmt.Sprint(len(got)) {
		t.Errorf("the page's last event %+v (of %d)", last, len(got))
	}
	if got[0].Event != "progress" || got[0].ID != "1" {
		t.Errorf("the page's first event %+v", got[0])
	}
}
