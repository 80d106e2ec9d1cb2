package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
)

// The soak's bounds. The full soak is sized to take about a minute under
// -race on a 2-core machine: most uploads are throttled clients stretched
// over up to soakMaxPace, so the wall time is set by the pacing, not by
// the CPU. -short runs the same mix, smaller and faster.
const (
	soakUploads     = 180              // uploads in the full soak
	soakConcurrency = 32               // uploads at once
	soakPollers     = 4                // REST pollers hammering /progress
	soakMaxPace     = 20 * time.Second // longest a throttled upload is stretched over
	soakTimeout     = 3 * time.Minute  // hard bound on the whole soak

	soakShortUploads     = 30
	soakShortConcurrency = 8
	soakShortPollers     = 2
	soakShortMaxPace     = 1500 * time.Millisecond
	soakShortTimeout     = time.Minute

	soakMinSize = 1 << 10 // smallest upload
	soakMaxSize = 4 << 20 // largest upload (a multipart file: half of it)
	soakChunk   = 32 << 10

	soakMaxPolls    = 1_000_000 // per poller
	soakMaxMessages = 10_000    // per WebSocket watcher
	soakFinalWait   = 20 * time.Second
	soakSettleWait  = 30 * time.Second

	// What may remain after the soak: a few goroutines of timers and
	// connections winding down, and the finished records the zone keeps
	// (retain 5m) plus whatever the runtime keeps of a busy minute.
	soakGoroutineMargin = 10
	soakHeapMargin      = 48 << 20

	soakAuth = "soak-token" // the pCloud credential
)

// The kinds of upload in the mix.
const (
	soakNormal     = iota // raw upload the origin stores
	soakOriginFail        // raw upload the origin answers 500 (X-Origin-Fail)
	soakAbort             // raw TCP client that goes away mid-body
	soakMultipart         // shard multipart upload, stored by the origin
	soakPcloud            // pCloud multipart upload to /uploadfile
	soakKinds
)

var soakKindNames = [soakKinds]string{"normal", "origin_500", "client_abort", "multipart", "pcloud"}

// WebSocket watchers of a job.
const (
	soakNoWatcher = iota
	soakReader    // reads every message until the server closes
	soakIdler     // connects and never reads; closed at the end
)

// soakFile is one file of a multipart job.
type soakFile struct {
	name string
	size int64
	sha  string
}

// soakJob is one upload of the mix, generated up front from the seed.
type soakJob struct {
	id       int
	kind     int
	key      string   // the shard path, or the pCloud progresshash
	chunked  bool     // sent without Content-Length
	size     int64    // body bytes (the whole multipart body for multipart)
	body     [][]byte // the body, in pieces (slices of the shared data)
	sha      string   // raw: sha256 of the body
	files    []soakFile
	ctype    string
	pace     time.Duration // how long the body is stretched over; 0: at once
	delay    time.Duration // X-Origin-Delay
	abortAt  int64         // abort: body bytes written before going away
	midChunk bool          // abort, chunked: go away inside a chunk
	watch    int
	wsPath   string
	wsQuery  string
	wsStep   int64

	// Set by the worker that ran it (read after the workers are done).
	ran        bool
	err        error
	code       int
	answer     []byte
	written    int64  // abort: body bytes written
	rightAfter []byte // shard: the status asked right after the answer
	// Set by the final wait.
	final         []byte
	finalUploaded int64
}

func (j *soakJob) total() int64 {
	if j.chunked {
		return -1
	}
	return j.size
}

func (j *soakJob) pcloud() bool { return j.kind == soakPcloud }

// soakWatch is what one reading watcher got.
type soakWatch struct {
	job  *soakJob
	msgs [][]byte
	code websocket.StatusCode
	err  error
}

// soakErrors collects failures from many goroutines.
type soakErrors struct {
	mu   sync.Mutex
	msgs []string
	n    int
}

func (e *soakErrors) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.msgs) < 40 {
		e.msgs = append(e.msgs, fmt.Sprintf(format, args...))
	}
}

// soak is the state of one soak run.
type soak struct {
	e      *env
	seed   uint64
	client *http.Client
	errs   soakErrors

	jobs    []*soakJob
	started atomic.Int64 // jobs handed to a worker, in order

	inFlight, maxInFlight atomic.Int64
	polls                 atomic.Int64
	wsMessages            atomic.Int64

	watchWG sync.WaitGroup
	mu      sync.Mutex
	watches []*soakWatch
	idlers  []*websocket.Conn
}

// TestSoak runs a bounded mix of concurrent uploads through Caddy, normal
// and failing ones, raw, chunked and multipart, shard and pCloud, with
// clients going away mid-body, WebSocket watchers that read and that never
// read, and REST pollers, then checks that no body was lost or corrupted,
// that every upload ended, that the gauges are back to zero and that
// neither goroutines nor heap were left behind.
//
// UPLOAD_SOAK_SEED=<n> replays a mix (the timing, not the mix, varies).
func TestSoak(t *testing.T) {
	uploads, concurrency, pollers, maxPace, timeout := soakUploads, soakConcurrency, soakPollers, soakMaxPace, soakTimeout
	if testing.Short() {
		uploads, concurrency, pollers, maxPace, timeout = soakShortUploads, soakShortConcurrency, soakShortPollers, soakShortMaxPace, soakShortTimeout
	}
	seed := rand.Uint64()
	if v := os.Getenv("UPLOAD_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("UPLOAD_SOAK_SEED: %v", err)
		}
	}
	t.Logf("seed %d (UPLOAD_SOAK_SEED=%d replays this mix); %d uploads, %d at once, %d pollers, pace up to %v",
		seed, seed, uploads, concurrency, pollers, maxPace)
	testStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// Caddy in front of the reference origin for shard uploads, and of a
	// pCloud-like origin for /uploadfile (the reference origin has none).
	// Caddy's connections to the origins idle out after 1 s instead of
	// 2 min, so that the goroutines they hold are gone when the soak
	// counts them; nothing else about the proxy changes.
	keepalive := " {\ntransport http {\nkeepalive 1s\n}\n}"
	pcloudAddr := pcloudOrigin(t)
	block := "protocol shard pcloud"
	e := newEnvWith(t, block, "reverse_proxy /uploadfile "+pcloudAddr+keepalive, false)
	e.load(block, e.originURL+keepalive)

	s := &soak{
		e:    e,
		seed: seed,
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns:        4 * (concurrency + pollers),
			MaxIdleConnsPerHost: 2 * (concurrency + pollers),
			DisableCompression:  true,
		}},
	}
	defer s.client.CloseIdleConnections()

	// The bodies are slices of one random buffer, at random offsets, so
	// that a shifted, repeated or dropped chunk changes the hash.
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var chachaSeed [32]byte
	for i := range chachaSeed {
		chachaSeed[i] = byte(rng.Uint32())
	}
	data := make([]byte, 2*soakMaxSize)
	rand.NewChaCha8(chachaSeed).Read(data)
	s.jobs = soakMakeJobs(rng, data, uploads, maxPace)

	// Warm-up: one upload of each protocol, watched, polled and scraped,
	// so that what Caddy starts lazily is in the baseline.
	warm := []*soakJob{
		soakRawJob(-1, soakNormal, data[:64<<10], false),
		soakMultipartJob(-2, soakPcloud, rng, data, 2, 64<<10),
	}
	warm[0].key, warm[1].key = "/soak/warm-up.bin", "soak-warm-up"
	for _, j := range warm {
		j.watch, j.wsPath, j.wsStep = soakReader, "/ws/progress", 1<<20
		if j.pcloud() {
			j.wsPath = "/uploadprogress/ws"
		}
		s.run(ctx, j)
	}
	s.watchWG.Wait()
	s.waitFinal(ctx, warm)
	s.waitGauges(ctx)
	metricsBefore := s.scrape(ctx)
	goroutinesBefore := s.settleGoroutines()
	heapBefore := soakHeap()
	t.Logf("baseline: %d goroutines, heap %.1f MiB", goroutinesBefore, float64(heapBefore)/(1<<20))

	// The soak: workers take the jobs in order; pollers hammer the keys
	// of the jobs started so far (and a few not yet started).
	soakStart := time.Now()
	jobs := make(chan *soakJob, len(s.jobs))
	for _, j := range s.jobs {
		jobs <- j
	}
	close(jobs)
	var workers, polling sync.WaitGroup
	stopPolling := make(chan struct{})
	for i := range pollers {
		polling.Go(func() { s.poll(ctx, i, stopPolling) })
	}
	for range concurrency {
		workers.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				s.started.Add(1)
				s.run(ctx, j)
			}
		})
	}
	workers.Wait()
	uploadsTook := time.Since(soakStart)

	// Every upload must reach a final state within a bounded wait.
	s.waitFinal(ctx, s.jobs)
	close(stopPolling)
	polling.Wait()
	s.watchWG.Wait()
	s.mu.Lock()
	idlers := s.idlers
	s.idlers = nil
	s.mu.Unlock()
	for _, c := range idlers {
		c.CloseNow()
	}
	soakTook := time.Since(soakStart)

	// What each client got, what each watcher saw, what the origin stored.
	all := append(warm, s.jobs...)
	for _, j := range all {
		s.checkJob(j)
	}
	for _, w := range s.watches {
		s.checkWatch(w)
	}
	s.checkOriginFiles(all)

	// The gauges go back to zero; the counters say what happened.
	metricsAfter := s.waitGauges(ctx)
	s.checkCounters(metricsBefore, metricsAfter)

	for _, m := range s.errs.msgs {
		t.Error(m)
	}
	if more := s.errs.n - len(s.errs.msgs); more > 0 {
		t.Errorf("... and %d more failures", more)
	}

	// Nothing is left behind: once the clients' idle connections are
	// closed, goroutines go back to the baseline and so does the heap.
	s.client.CloseIdleConnections()
	goroutinesAfter := runtime.NumGoroutine()
	deadline := time.Now().Add(soakSettleWait)
	for i := 0; goroutinesAfter > goroutinesBefore+soakGoroutineMargin; i++ {
		if time.Now().After(deadline) || i > 10_000 {
			var dump bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Errorf("%d goroutines %v after the soak, %d before (margin %d):\n%s",
				goroutinesAfter, soakSettleWait, goroutinesBefore, soakGoroutineMargin, dump.String())
			break
		}
		time.Sleep(50 * time.Millisecond)
		s.client.CloseIdleConnections()
		goroutinesAfter = runtime.NumGoroutine()
	}
	if goroutinesAfter <= goroutinesBefore+soakGoroutineMargin {
		goroutinesAfter = s.settleGoroutines() // the figure to report
	}
	heapAfter := soakHeap()
	if heapAfter > heapBefore+soakHeapMargin {
		t.Errorf("heap %.1f MiB after the soak, %.1f MiB before (margin %d MiB)",
			float64(heapAfter)/(1<<20), float64(heapBefore)/(1<<20), soakHeapMargin>>20)
	}
	runtime.KeepAlive(data)

	s.report(t, uploadsTook, soakTook, time.Since(testStart), goroutinesBefore, goroutinesAfter, heapBefore, heapAfter)
}

// soakMakeJobs draws the mix. The first jobs are one of each kind, with
// both kinds of watcher, so that even a short soak has them all.
func soakMakeJobs(rng *rand.Rand, data []byte, n int, maxPace time.Duration) []*soakJob {
	jobs := make([]*soakJob, 0, n)
	for i := range n {
		var kind int
		switch r := rng.Float64(); {
		case i < soakKinds:
			kind = i
		case r < 0.46:
			kind = soakNormal
		case r < 0.58:
			kind = soakOriginFail
		case r < 0.73:
			kind = soakAbort
		case r < 0.86:
			kind = soakMultipart
		default:
			kind = soakPcloud
		}
		var j *soakJob
		switch kind {
		case soakNormal, soakOriginFail:
			j = soakRawJob(i, kind, soakSlice(rng, data, soakSize(rng, soakMinSize, soakMaxSize)), rng.Float64() < 0.3)
			if kind == soakNormal && rng.Float64() < 0.25 {
				// A slow origin: the complete body waits for its answer.
				j.delay = time.Duration(rng.Int64N(int64(maxPace / 20)))
			}
		case soakAbort:
			size := soakSize(rng, 64<<10, soakMaxSize)
			j = soakRawJob(i, kind, soakSlice(rng, data, size), rng.Float64() < 0.3)
			j.abortAt = 1 + rng.Int64N(size-1)
			j.midChunk = rng.Float64() < 0.5
		default:
			j = soakMultipartJob(i, kind, rng, data, 1+rng.IntN(3), soakMaxSize/2)
			j.chunked = rng.Float64() < 0.3
		}
		if rng.Float64() < 0.7 {
			j.pace = time.Duration(float64(maxPace) * (0.125 + 0.875*rng.Float64()))
		}
		switch r := rng.Float64(); {
		case i < soakKinds:
			j.watch = soakReader + i%2
		case r < 0.35:
			j.watch = soakReader
		case r < 0.45:
			j.watch = soakIdler
		}
		j.wsStep = 1 << 20
		switch {
		case j.pcloud():
			j.wsPath = "/uploadprogress/ws"
		case rng.IntN(2) == 0:
			j.wsPath = "/ws/progress"
		default:
			j.wsPath = "/progress/ws"
		}
		if !j.pcloud() && rng.IntN(3) == 0 {
			j.wsQuery, j.wsStep = "&updatingRate=2&unitOfMeasurement=MB", 2<<20
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// soakSize draws a size between lo and hi, uniform in its logarithm.
func soakSize(rng *rand.Rand, lo, hi int64) int64 {
	l, h := math.Log(float64(lo)), math.Log(float64(hi))
	return int64(math.Exp(l + rng.Float64()*(h-l)))
}

// soakSlice is size bytes of data at a random offset.
func soakSlice(rng *rand.Rand, data []byte, size int64) []byte {
	off := rng.Int64N(int64(len(data)) - size + 1)
	return data[off : off+size]
}

func soakRawJob(id, kind int, body []byte, chunked bool) *soakJob {
	return &soakJob{
		id: id, kind: kind, chunked: chunked,
		key:   fmt.Sprintf("/soak/%s-%03d.bin", soakKindNames[kind], id),
		size:  int64(len(body)),
		body:  [][]byte{body},
		sha:   sha256Hex(body),
		ctype: "application/octet-stream",
	}
}

// soakMultipartJob builds a multipart body of n files (up to maxFile
// bytes each) as pieces: the framing the multipart writer makes, and the
// files as slices of data, so that nothing is copied.
func soakMultipartJob(id, kind int, rng *rand.Rand, data []byte, n int, maxFile int64) *soakJob {
	j := &soakJob{id: id, kind: kind}
	if kind == soakPcloud {
		j.key = fmt.Sprintf("soak-%03d", id)
	} else {
		j.key = fmt.Sprintf("/soak/mp-%03d", id)
	}
	var framing bytes.Buffer
	mw := multipart.NewWriter(&framing)
	mw.SetBoundary(fmt.Sprintf("soak-%d-%016x", id, rng.Uint64()))
	if kind == soakPcloud {
		mw.WriteField("folderid", "0")
	}
	for i := range n {
		file := soakSlice(rng, data, soakSize(rng, soakMinSize, maxFile))
		name := fmt.Sprintf("f%d.bin", i)
		mw.CreateFormFile("file", name)
		j.body = append(j.body, bytes.Clone(framing.Bytes()), file)
		framing.Reset()
		j.files = append(j.files, soakFile{name: name, size: int64(len(file)), sha: sha256Hex(file)})
	}
	mw.Close()
	j.body = append(j.body, bytes.Clone(framing.Bytes()))
	for _, b := range j.body {
		j.size += int64(len(b))
	}
	j.ctype = mw.FormDataContentType()
	return j
}

// soakThrottle is a slow client: it hands out its reader's bytes at a
// rate that spreads size bytes over pace, whatever the sizes of the reads.
type soakThrottle struct {
	ctx   context.Context
	r     io.Reader
	size  int64
	pace  time.Duration
	start time.Time
	read  int64
}

func (p *soakThrottle) Read(b []byte) (int, error) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	if len(b) > soakChunk {
		b = b[:soakChunk]
	}
	n, err := p.r.Read(b)
	p.read += int64(n)
	due := p.start.Add(time.Duration(float64(p.pace) * float64(p.read) / float64(p.size)))
	if wait := time.Until(due); n > 0 && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.ctx.Done():
			return n, p.ctx.Err()
		}
	}
	return n, err
}

// bodyReader reads the job's body, paced so that its first limit bytes
// take j.pace.
func (s *soak) bodyReader(ctx context.Context, j *soakJob, limit int64) io.Reader {
	parts := make([]io.Reader, len(j.body))
	for i, b := range j.body {
		parts[i] = bytes.NewReader(b)
	}
	r := io.MultiReader(parts...)
	if j.pace > 0 {
		r = &soakThrottle{ctx: ctx, r: r, size: limit, pace: j.pace}
	}
	return r
}

// statusURL is where the job's progress is asked over REST.
func (s *soak) statusURL(j *soakJob) string {
	if j.pcloud() {
		return s.e.proxy + "/uploadprogress?progresshash=" + url.QueryEscape(j.key) + "&auth=" + soakAuth
	}
	return s.e.proxy + "/progress?path=" + url.QueryEscape(j.key)
}

// get asks url and returns the status code and the body.
func (s *soak) get(ctx context.Context, u string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("x-user-api-key", apiKey)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

func (s *soak) scrape(ctx context.Context) string {
	_, b, err := s.get(ctx, "http://"+s.e.admin+"/metrics")
	if err != nil {
		s.errs.add("scraping metrics: %v", err)
	}
	return string(b)
}

// run sends one job's upload, with its watcher if it has one.
func (s *soak) run(ctx context.Context, j *soakJob) {
	j.ran = true
	n := s.inFlight.Add(1)
	for m := s.maxInFlight.Load(); n > m && !s.maxInFlight.CompareAndSwap(m, n); m = s.maxInFlight.Load() {
	}
	defer s.inFlight.Add(-1)
	if j.watch != soakNoWatcher {
		s.watchWG.Go(func() { s.watchJob(ctx, j) })
	}
	if j.kind == soakAbort {
		s.abort(ctx, j)
		return
	}
	u := s.e.proxy + "/fso?path=" + url.QueryEscape(j.key) + "&informProgress=true"
	if j.pcloud() {
		u = s.e.proxy + "/uploadfile?progresshash=" + url.QueryEscape(j.key) + "&auth=" + soakAuth
	}
	req, err := http.NewRequestWithContext(ctx, "POST", u, s.bodyReader(ctx, j, j.size))
	if err != nil {
		j.err = err
		return
	}
	req.ContentLength = j.total()
	req.Header.Set("Content-Type", j.ctype)
	if !j.pcloud() {
		req.Header.Set("x-user-api-key", apiKey)
	}
	if j.kind == soakOriginFail {
		req.Header.Set("X-Origin-Fail", "500")
	}
	if j.delay > 0 {
		req.Header.Set("X-Origin-Delay", j.delay.String())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		j.err = err
		return
	}
	j.answer, j.err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	j.code = resp.StatusCode
	if !j.pcloud() {
		// The shard record ends at the origin's status line: a client
		// asking right after its answer sees the end.
		_, j.rightAfter, _ = s.get(ctx, s.statusURL(j))
	}
}

// abort writes the request and the first abortAt bytes of the body on a
// raw connection, then goes away.
func (s *soak) abort(ctx context.Context, j *soakJob) {
	host := strings.TrimPrefix(s.e.proxy, "http://")
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		j.err = err
		return
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	framing := "Content-Length: " + strconv.FormatInt(j.size, 10)
	if j.chunked {
		framing = "Transfer-Encoding: chunked"
	}
	if _, err := fmt.Fprintf(conn, "POST /fso?path=%s&informProgress=true HTTP/1.1\r\nHost: %s\r\nx-user-api-key: %s\r\nContent-Type: %s\r\n%s\r\n\r\n",
		url.QueryEscape(j.key), host, apiKey, j.ctype, framing); err != nil {
		j.err = err
		return
	}
	src := s.bodyReader(ctx, j, j.abortAt)
	buf := make([]byte, soakChunk)
	for i := 0; j.written < j.abortAt && i < 1<<20; i++ {
		n, rerr := src.Read(buf[:min(int64(len(buf)), j.abortAt-j.written)])
		if n > 0 {
			var werr error
			if j.chunked {
				announce := n
				last := j.written+int64(n) == j.abortAt
				if last && j.midChunk {
					announce += 1000 // the client goes away inside this chunk
				}
				_, werr = fmt.Fprintf(conn, "%x\r\n", announce)
				if werr == nil {
					_, werr = conn.Write(buf[:n])
				}
				if werr == nil && announce == n {
					_, werr = io.WriteString(conn, "\r\n")
				}
			} else {
				_, werr = conn.Write(buf[:n])
			}
			if werr != nil {
				j.err = fmt.Errorf("writing the body after %d bytes: %v", j.written, werr)
				return
			}
			j.written += int64(n)
		}
		if rerr != nil {
			if rerr != io.EOF {
				j.err = rerr
			}
			return
		}
	}
}

// watchJob opens the job's WebSocket watcher: a reader collects every
// message until the server closes; an idler connects and never reads.
func (s *soak) watchJob(ctx context.Context, j *soakJob) {
	q := "path=" + url.QueryEscape(j.key) + j.wsQuery
	if j.pcloud() {
		q = "progresshash=" + url.QueryEscape(j.key) + "&auth=" + soakAuth
	}
	c, _, err := websocket.Dial(ctx, testkit.WebSocketURL(s.e.proxy)+j.wsPath+"?"+q, &websocket.DialOptions{
		HTTPClient: s.client,
		HTTPHeader: http.Header{"X-User-Api-Key": {apiKey}},
	})
	if err != nil {
		s.errs.add("job %d: watcher of %s: %v", j.id, j.key, err)
		return
	}
	if j.watch == soakIdler {
		s.mu.Lock()
		s.idlers = append(s.idlers, c)
		s.mu.Unlock()
		return
	}
	defer c.CloseNow()
	w := &soakWatch{job: j}
	defer func() {
		s.mu.Lock()
		s.watches = append(s.watches, w)
		s.mu.Unlock()
	}()
	for len(w.msgs) < soakMaxMessages {
		_, b, err := c.Read(ctx)
		if err != nil {
			if w.code = websocket.CloseStatus(err); w.code == -1 {
				w.err = err
			}
			return
		}
		s.wsMessages.Add(1)
		w.msgs = append(w.msgs, b)
	}
	w.err = fmt.Errorf("more than %d messages", soakMaxMessages)
}

// Ranks of a progress reply: nothing yet, uploading, final.
const (
	soakRankNone = iota
	soakRankUploading
	soakRankFinal
)

// parse checks one progress reply (REST or WebSocket) of j against what
// any reply of it may say, and returns its rank and uploaded count.
func (s *soak) parse(j *soakJob, b []byte) (rank int, uploaded int64, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if j.pcloud() {
		var p pcloudReply
		if err := dec.Decode(&p); err != nil {
			return 0, 0, fmt.Errorf("not pCloud's JSON: %v: %q", err, b)
		}
		switch {
		case p.Result == 1900 && p.Error == "Upload not found." && p.Total == 0 && p.Uploaded == 0:
			return soakRankNone, 0, nil
		case p.Result != 0:
			return 0, 0, fmt.Errorf("unexpected result: %s", b)
		case p.Total != j.total() || p.Uploaded < 0 || p.Uploaded > j.size:
			return 0, 0, fmt.Errorf("total/uploaded do not fit a %d-byte body (total %d): %s", j.size, j.total(), b)
		case !p.Finished:
			return soakRankUploading, p.Uploaded, nil
		}
		return soakRankFinal, p.Uploaded, nil
	}
	var p progressReply
	if err := dec.Decode(&p); err != nil {
		return 0, 0, fmt.Errorf("not the progress JSON: %v: %q", err, b)
	}
	switch p.Status {
	case "not_exist":
		if p != (progressReply{Status: "not_exist"}) {
			return 0, 0, fmt.Errorf("not_exist with counts: %s", b)
		}
		return soakRankNone, 0, nil
	case "uploading", "completed", "failed":
		if p.TotalSize != j.total() || p.Uploaded < 0 || p.Uploaded > j.size {
			return 0, 0, fmt.Errorf("total_size/uploaded do not fit a %d-byte body (total %d): %s", j.size, j.total(), b)
		}
		if p.Status == "uploading" {
			if p.Error != "" {
				return 0, 0, fmt.Errorf("uploading with an error: %s", b)
			}
			return soakRankUploading, p.Uploaded, nil
		}
		return soakRankFinal, p.Uploaded, nil
	}
	return 0, 0, fmt.Errorf("unknown status: %s", b)
}

// poll asks the progress of random keys until stop: every reply 200 and
// valid, and, per key, never going back.
func (s *soak) poll(ctx context.Context, id int, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(s.seed, uint64(id)+1))
	type seen struct {
		rank     int
		uploaded int64
		final    []byte
	}
	last := map[*soakJob]*seen{}
	for range soakMaxPolls {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		j := s.jobs[rng.IntN(min(len(s.jobs), int(s.started.Load())+4))]
		code, b, err := s.get(ctx, s.statusURL(j))
		s.polls.Add(1)
		if err != nil {
			if ctx.Err() == nil {
				s.errs.add("poller %d: %s: %v", id, j.key, err)
			}
			continue
		}
		if code != http.StatusOK {
			s.errs.add("poller %d: %s: %d %s", id, j.key, code, b)
			continue
		}
		rank, uploaded, err := s.parse(j, b)
		if err != nil {
			s.errs.add("poller %d: %s: %v", id, j.key, err)
			continue
		}
		prev := last[j]
		if prev == nil {
			prev = &seen{}
			last[j] = prev
		}
		switch {
		case rank < prev.rank:
			s.errs.add("poller %d: %s went back from rank %d to %s", id, j.key, prev.rank, b)
		case uploaded < prev.uploaded:
			s.errs.add("poller %d: %s: uploaded went back from %d to %s", id, j.key, prev.uploaded, b)
		case prev.final != nil && !bytes.Equal(prev.final, b):
			s.errs.add("poller %d: %s: final state changed from %s to %s", id, j.key, prev.final, b)
		}
		prev.rank, prev.uploaded = rank, uploaded
		if rank == soakRankFinal {
			prev.final = b
		}
	}
}

// waitFinal waits, within soakFinalWait, for every job that ran to reach
// a final state, and keeps that state.
func (s *soak) waitFinal(ctx context.Context, jobs []*soakJob) {
	deadline := time.Now().Add(soakFinalWait)
	for _, j := range jobs {
		if !j.ran {
			continue
		}
		for i := 0; ; i++ {
			code, b, err := s.get(ctx, s.statusURL(j))
			rank, uploaded, perr := 0, int64(0), err
			if err == nil {
				rank, uploaded, perr = s.parse(j, b)
			}
			if code == http.StatusOK && perr == nil && rank == soakRankFinal {
				j.final, j.finalUploaded = b, uploaded
				break
			}
			if time.Now().After(deadline) || i > 10_000 {
				s.errs.add("job %d (%s %s): no final state within %v: %d %s %v", j.id, soakKindNames[j.kind], j.key, soakFinalWait, code, b, perr)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitGauges waits for the in-flight and watcher gauges to read zero and
// returns the metrics that say so.
func (s *soak) waitGauges(ctx context.Context) string {
	want := []string{
		`caddy_upload_progress_uploads_in_flight{zone="default"} 0`,
		`caddy_upload_progress_watchers{zone="default"} 0`,
	}
	deadline := time.Now().Add(soakSettleWait)
	for i := 0; ; i++ {
		m := s.scrape(ctx)
		ok := true
		for _, g := range want {
			ok = ok && strings.Contains(m, g+"\n")
		}
		if ok {
			return m
		}
		if time.Now().After(deadline) || i > 10_000 {
			s.errs.add("gauges not back to zero within %v: in flight %v, watchers %v", soakSettleWait,
				metricValue(m, `caddy_upload_progress_uploads_in_flight{zone="default"}`),
				metricValue(m, `caddy_upload_progress_watchers{zone="default"}`))
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settleGoroutines returns the goroutine count once it has held still
// for a second (or the lowest seen within soakSettleWait).
func (s *soak) settleGoroutines() int {
	s.client.CloseIdleConnections()
	low, still := runtime.NumGoroutine(), 0
	deadline := time.Now().Add(soakSettleWait)
	for i := 0; still < 20 && time.Now().Before(deadline) && i < 10_000; i++ {
		time.Sleep(50 * time.Millisecond)
		s.client.CloseIdleConnections()
		if n := runtime.NumGoroutine(); n < low {
			low, still = n, 0
		} else {
			still++
		}
	}
	return low
}

func soakHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// checkJob checks what the client got and the final state of j.
func (s *soak) checkJob(j *soakJob) {
	if !j.ran {
		s.errs.add("job %d (%s %s) never ran: the soak ran out of time", j.id, soakKindNames[j.kind], j.key)
		return
	}
	fail := func(format string, args ...any) {
		s.errs.add("job %d (%s %s, %d bytes, chunked %v): %s", j.id, soakKindNames[j.kind], j.key, j.size, j.chunked, fmt.Sprintf(format, args...))
	}
	if j.err != nil {
		fail("client: %v", j.err)
		return
	}
	if j.final == nil {
		return // reported by waitFinal
	}
	var final progressReply
	var pfinal pcloudReply
	if j.pcloud() {
		json.Unmarshal(j.final, &pfinal)
	} else {
		json.Unmarshal(j.final, &final)
		if j.kind != soakAbort && !bytes.Equal(j.rightAfter, j.final) {
			fail("status right after the answer %q, final %q", j.rightAfter, j.final)
		}
	}
	switch j.kind {
	case soakNormal:
		var stored struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		}
		if j.code != http.StatusCreated || json.Unmarshal(j.answer, &stored) != nil ||
			stored.Path != j.key || stored.Size != j.size || stored.SHA256 != j.sha {
			fail("origin answered %d %s, want 201 with sha256 %s", j.code, j.answer, j.sha)
		}
		if final.Status != "completed" || final.Uploaded != j.size || final.Error != "" {
			fail("final %s, want completed with %d bytes", j.final, j.size)
		}
	case soakOriginFail:
		if j.code != http.StatusInternalServerError {
			fail("origin answered %d %s, want 500", j.code, j.answer)
		}
		if final.Status != "failed" || final.Error != "origin responded 500 Internal Server Error" || final.Uploaded != j.size {
			fail("final %s, want failed with the origin's 500 after %d bytes", j.final, j.size)
		}
	case soakAbort:
		want := fmt.Sprintf("client disconnected after %d bytes", final.Uploaded)
		if j.written != j.abortAt {
			fail("wrote %d of the %d bytes it meant to", j.written, j.abortAt)
		}
		if final.Status != "failed" || final.Error != want || final.Uploaded > j.written {
			fail("final %s, want failed %q with at most the %d bytes written", j.final, want, j.written)
		}
	case soakMultipart:
		var stored struct {
			Files []struct {
				Path   string `json:"path"`
				Name   string `json:"name"`
				Size   int64  `json:"size"`
				SHA256 string `json:"sha256"`
			} `json:"files"`
		}
		ok := j.code == http.StatusCreated && json.Unmarshal(j.answer, &stored) == nil && len(stored.Files) == len(j.files)
		for i := 0; ok && i < len(j.files); i++ {
			f, g := j.files[i], stored.Files[i]
			ok = g.Path == j.key+"/"+f.name && g.Size == f.size && g.SHA256 == f.sha
		}
		if !ok {
			fail("origin answered %d %s, want 201 with %d files", j.code, j.answer, len(j.files))
		}
		if final.Status != "completed" || final.Uploaded != j.size || final.Error != "" {
			fail("final %s, want completed with %d bytes", j.final, j.size)
		}
	case soakPcloud:
		type file struct {
			Name   string `json:"name"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		}
		var answer struct {
			Result   int    `json:"result"`
			Metadata []file `json:"metadata"`
		}
		filesOK := func(got []file) bool {
			if len(got) != len(j.files) {
				return false
			}
			for i, f := range j.files {
				if got[i] != (file{f.name, f.size, f.sha}) {
					return false
				}
			}
			return true
		}
		if j.code != http.StatusOK || json.Unmarshal(j.answer, &answer) != nil || answer.Result != 0 || !filesOK(answer.Metadata) {
			fail("origin answered %d %s, want the sha256 of %d files", j.code, j.answer, len(j.files))
		}
		var files []file
		for _, raw := range pfinal.Files {
			var f file
			json.Unmarshal(raw, &f)
			files = append(files, f)
		}
		if pfinal.Result != 0 || !pfinal.Finished || pfinal.Error != "" || pfinal.Uploaded != j.size ||
			pfinal.CurrentFile != nil || pfinal.FileNumber != len(j.files) || !filesOK(files) {
			fail("final %s, want finished with %d bytes and the origin's %d files", j.final, j.size, len(j.files))
		}
	}
}

// checkWatch checks what a reading watcher saw: a normal close after a
// final state equal to the one REST reports, with nothing going back.
func (s *soak) checkWatch(w *soakWatch) {
	j := w.job
	fail := func(format string, args ...any) {
		s.errs.add("job %d (%s %s): watcher %s%s: %s", j.id, soakKindNames[j.kind], j.key, j.wsPath, j.wsQuery, fmt.Sprintf(format, args...))
	}
	if w.err != nil || w.code != websocket.StatusNormalClosure {
		fail("closed with %v (%v) after %d messages, want a normal closure", w.code, w.err, len(w.msgs))
	}
	if len(w.msgs) == 0 {
		fail("no message")
		return
	}
	prevRank, prevUploaded := -1, int64(0)
	for i, b := range w.msgs {
		rank, uploaded, err := s.parse(j, b)
		switch {
		case err != nil:
			fail("message %d: %v", i, err)
			return
		case rank < prevRank || uploaded < prevUploaded:
			fail("message %d went back: %s after rank %d, %d bytes", i, b, prevRank, prevUploaded)
		case rank == soakRankUploading && prevRank == soakRankUploading && uploaded-prevUploaded < j.wsStep:
			fail("message %d: an update after %d bytes, asked for every %d", i, uploaded-prevUploaded, j.wsStep)
		case rank == soakRankFinal && i != len(w.msgs)-1:
			fail("message %d after the final state: %s", i+1, w.msgs[i+1])
		}
		prevRank, prevUploaded = rank, uploaded
	}
	if last := w.msgs[len(w.msgs)-1]; j.final != nil && !bytes.Equal(bytes.TrimSpace(last), bytes.TrimSpace(j.final)) {
		fail("last message %s, REST says %s", last, j.final)
	}
	if most := int(j.size/j.wsStep) + 4; len(w.msgs) > most {
		fail("%d messages for %d bytes at every %d, more than %d", len(w.msgs), j.size, j.wsStep, most)
	}
}

// checkOriginFiles checks that the origin holds exactly the files of the
// uploads it accepted, byte for byte, and nothing of the others. An
// origin still dropping the temp file of an aborted upload gets a bounded
// wait.
func (s *soak) checkOriginFiles(jobs []*soakJob) {
	want := map[string]string{}
	for _, j := range jobs {
		switch {
		case !j.ran:
		case j.kind == soakNormal:
			want[j.key[1:]] = j.sha
		case j.kind == soakMultipart:
			for _, f := range j.files {
				want[j.key[1:]+"/"+f.name] = f.sha
			}
		}
	}
	var got map[string]string
	deadline := time.Now().Add(soakSettleWait)
	for i := 0; ; i++ {
		got = map[string]string{}
		temp := 0
		err := filepath.WalkDir(s.e.originDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(s.e.originDir, p)
			if strings.HasPrefix(d.Name(), ".upload-") {
				temp++
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = sha256Hex(b)
			return nil
		})
		if err != nil {
			s.errs.add("walking the origin's files: %v", err)
			return
		}
		if temp == 0 || time.Now().After(deadline) || i > 10_000 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for p, sha := range want {
		switch g, ok := got[p]; {
		case !ok:
			s.errs.add("origin lost %s", p)
		case g != sha:
			s.errs.add("origin stored %s with sha256 %s, sent %s", p, g, sha)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			s.errs.add("origin has %s, which no accepted upload sent (a failed or aborted upload left it)", p)
		}
	}
}

// checkCounters checks that the metrics counted the soak's uploads.
func (s *soak) checkCounters(before, after string) {
	var started, completed [2]float64 // shard, pcloud
	var failed500, aborted, bytesIn float64
	for _, j := range s.jobs {
		if !j.ran {
			continue
		}
		p := 0
		if j.pcloud() {
			p = 1
		}
		started[p]++
		bytesIn += float64(j.finalUploaded)
		switch j.kind {
		case soakNormal, soakMultipart, soakPcloud:
			completed[p]++
		case soakOriginFail:
			failed500++
		case soakAbort:
			aborted++
		}
	}
	checks := []struct {
		series string
		want   float64
	}{
		{`caddy_upload_progress_uploads_started_total{protocol="shard",zone="default"}`, started[0]},
		{`caddy_upload_progress_uploads_started_total{protocol="pcloud",zone="default"}`, started[1]},
		{`caddy_upload_progress_uploads_finished_total{outcome="completed",protocol="shard",zone="default"}`, completed[0]},
		{`caddy_upload_progress_uploads_finished_total{outcome="completed",protocol="pcloud",zone="default"}`, completed[1]},
		{`caddy_upload_progress_uploads_finished_total{outcome="origin_error",protocol="shard",zone="default"}`, failed500},
		{`caddy_upload_progress_uploads_finished_total{outcome="client_aborted",protocol="shard",zone="default"}`, aborted},
		{`caddy_upload_progress_uploads_untracked_total{protocol="shard",reason="tracker_full",zone="default"}`, 0},
		{`caddy_upload_progress_watchers_refused_total{protocol="shard",reason="limit",zone="default"}`, 0},
	}
	for _, c := range checks {
		if got := metricValue(after, c.series) - metricValue(before, c.series); got != c.want {
			s.errs.add("%s grew by %v, want %v", c.series, got, c.want)
		}
	}
	var got float64
	for _, p := range []string{"shard", "pcloud"} {
		series := `caddy_upload_progress_received_bytes_total{protocol="` + p + `",zone="default"}`
		got += metricValue(after, series) - metricValue(before, series)
	}
	if got != bytesIn {
		s.errs.add("received_bytes_total grew by %v, the uploads' final counts add up to %v", got, bytesIn)
	}
}

// report logs the figures the soak reached.
func (s *soak) report(t *testing.T, uploadsTook, soakTook, total time.Duration, gBefore, gAfter int, hBefore, hAfter uint64) {
	var byKind [soakKinds]int
	outcomes := map[string]int{}
	var sent, received int64
	var chunked, paced, delayed, readers, idlers, short int
	for _, j := range s.jobs {
		if !j.ran {
			continue
		}
		byKind[j.kind]++
		if j.kind == soakAbort {
			sent += j.written
			if j.finalUploaded < j.written {
				short++
			}
		} else {
			sent += j.size
		}
		received += j.finalUploaded
		var p progressReply
		if j.pcloud() {
			var pc pcloudReply
			json.Unmarshal(j.final, &pc)
			p.Status = "pcloud finished"
			if pc.Error != "" {
				p.Status = "pcloud failed"
			}
		} else {
			json.Unmarshal(j.final, &p)
		}
		outcomes[p.Status]++
		if j.chunked {
			chunked++
		}
		if j.pace > 0 {
			paced++
		}
		if j.delay > 0 {
			delayed++
		}
		switch j.watch {
		case soakReader:
			readers++
		case soakIdler:
			idlers++
		}
	}
	var kinds []string
	for k, n := range byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", soakKindNames[k], n))
	}
	t.Logf("uploads: %d (%s); %d chunked, %d throttled, %d to a slow origin; max %d at once",
		len(s.jobs), strings.Join(kinds, ", "), chunked, paced, delayed, s.maxInFlight.Load())
	t.Logf("outcomes: %v; aborted uploads that lost unread bytes to the close: %d", outcomes, short)
	t.Logf("bytes: %.1f MiB sent, %.1f MiB counted by the proxy", float64(sent)/(1<<20), float64(received)/(1<<20))
	t.Logf("watchers: %d reading (%d messages), %d never reading; REST polls: %d (%.0f/s)",
		readers, s.wsMessages.Load(), idlers, s.polls.Load(), float64(s.polls.Load())/soakTook.Seconds())
	t.Logf("time: uploads %v, soak with final waits %v, whole test %v",
		uploadsTook.Round(time.Millisecond), soakTook.Round(time.Millisecond), total.Round(time.Millisecond))
	t.Logf("goroutines: %d before, %d after; heap: %.1f MiB before, %.1f MiB after",
		gBefore, gAfter, float64(hBefore)/(1<<20), float64(hAfter)/(1<<20))
}
