package caddymodule

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// The collectors are made once per process and registered into each config's
// registry, so counters keep counting across reloads. No label ever holds a
// key or any other per-upload value.
var (
	metricsNamespace = "caddy"
	metricsSubsystem = "upload_progress"

	uploadsStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "uploads_started_total",
		Help: "Uploads whose tracking began.",
	}, []string{"zone", "protocol"})

	uploadsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "uploads_finished_total",
		Help: "Tracked uploads that ended, by outcome (" + strings.Join(progress.Reasons, ", ") + ").",
	}, []string{"zone", "protocol", "outcome"})

	uploadsUntracked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "uploads_untracked_total",
		Help: "Uploads that asked for progress but passed untracked, by reason (" + strings.Join(progress.UntrackedReasons, ", ") + ").",
	}, []string{"zone", "protocol", "reason"})

	watchersRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "watchers_refused_total",
		Help: "Watchers (WebSocket and event stream) refused, by reason (limit: max_watchers, max_watchers_per_key or max_keys; closed: the server is shutting down).",
	}, []string{"zone", "protocol", "reason"})

	watchersDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "watchers_dropped_total",
		Help: "Watchers (WebSocket and event stream) dropped for being too slow, by reason (no_pong: a WebSocket ping went unanswered for watcher_timeout; write_timeout: a message or heartbeat could not be written within it).",
	}, []string{"zone", "protocol", "reason"})

	receivedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "received_bytes_total",
		Help: "Body bytes received by tracked uploads, counted when each upload ends.",
	}, []string{"zone", "protocol"})

	uploadDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:    "upload_duration_seconds",
		Help:    "Time from the start of tracking to the end of tracked uploads.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"zone", "protocol", "outcome"})

	uploadSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:    "upload_size_bytes",
		Help:    "Body bytes received by each tracked upload.",
		Buckets: prometheus.ExponentialBuckets(1024, 4, 14), // 1 KiB to 64 GiB
	}, []string{"zone", "protocol"})

	statusRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "status_requests_total",
		Help: "Progress status requests, by protocol, transport (rest, websocket or sse) and response code.",
	}, []string{"zone", "protocol", "transport", "code"})

	storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "store_errors_total",
		Help: "Failed operations on the zone's shared store, by operation (write, read, ping, listen).",
	}, []string{"zone", "op"})

	zoneStats = zoneCollector{
		storeUp: prometheus.NewDesc("caddy_upload_progress_store_up",
			"Whether the zone's shared store was reachable at its last use (1) or not (0); only zones with a store.", []string{"zone"}, nil),
		inFlight: prometheus.NewDesc("caddy_upload_progress_uploads_in_flight",
			"Tracked uploads being received now.", []string{"zone"}, nil),
		watchers: prometheus.NewDesc("caddy_upload_progress_watchers",
			"Watchers (WebSocket and event stream) connected now.", []string{"zone"}, nil),
		keys: prometheus.NewDesc("caddy_upload_progress_keys",
			"Keys the tracker holds now (records and watched keys).", []string{"zone"}, nil),
		detailBytes: prometheus.NewDesc("caddy_upload_progress_file_details_bytes",
			"Memory held by the file details (names, content types, origin metadata) of finished uploads (max_file_details bounds it).", []string{"zone"}, nil),
		detailsDropped: prometheus.NewDesc("caddy_upload_progress_file_details_dropped_total",
			"Finished uploads that kept their counts but dropped their file details, for want of room under max_file_details.", []string{"zone"}, nil),
		evicted: prometheus.NewDesc("caddy_upload_progress_records_evicted_total",
			"Finished uploads forgotten before the end of retain to make room for new keys under max_keys.", []string{"zone"}, nil),
	}
)

// zoneCollector reads the live gauges from the trackers at scrape time, so
// the upload path never touches a gauge.
type zoneCollector struct {
	inFlight, watchers, keys, detailBytes, detailsDropped, evicted, storeUp *prometheus.Desc
}

func (c zoneCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inFlight
	ch <- c.watchers
	ch <- c.keys
	ch <- c.detailBytes
	ch <- c.detailsDropped
	ch <- c.evicted
	ch <- c.storeUp
}

func (c zoneCollector) Collect(ch chan<- prometheus.Metric) {
	rangeZones(func(z *zone) {
		s := z.tracker.Stats()
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(s.InFlight), z.name)
		ch <- prometheus.MustNewConstMetric(c.watchers, prometheus.GaugeValue, float64(s.Watchers), z.name)
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(s.Keys), z.name)
		ch <- prometheus.MustNewConstMetric(c.detailBytes, prometheus.GaugeValue, float64(s.FileDetailBytes), z.name)
		ch <- prometheus.MustNewConstMetric(c.detailsDropped, prometheus.CounterValue, float64(s.FileDetailsDropped), z.name)
		ch <- prometheus.MustNewConstMetric(c.evicted, prometheus.CounterValue, float64(s.Evicted), z.name)
		if st, ok := z.tracker.(sharedTracker); ok {
			ch <- prometheus.MustNewConstMetric(c.storeUp, prometheus.GaugeValue, float64(boolInt(st.StoreUp())), z.name)
		}
	})
}

// registerMetrics adds the collectors to a config's registry. They are
// already there when several handlers share one config.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		uploadsStarted, uploadsFinished, uploadsUntracked, watchersRefused, watchersDropped, receivedBytes,
		uploadDuration, uploadSize, statusRequests, storeErrors, zoneStats,
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// uploadMetrics are the children of the upload collectors for one
// protocol of one handler. WithLabelValues hashes its labels and looks the
// child up on every call, four times per upload; these are looked up once
// each and kept. They are made on first use, not at provisioning, so that
// /metrics shows no series for what never happened, as before.
type uploadMetrics struct {
	zone, proto string

	started  atomic.Pointer[prometheus.Counter]
	received atomic.Pointer[receivedMetrics]
	// outcomes holds the children of progress.Reasons, by index.
	outcomes []atomic.Pointer[outcomeMetrics]
}

type receivedMetrics struct {
	bytes prometheus.Counter
	size  prometheus.Observer
}

type outcomeMetrics struct {
	finished prometheus.Counter
	duration prometheus.Observer
}

func newUploadMetrics(zone, proto string) *uploadMetrics {
	return &uploadMetrics{zone: zone, proto: proto, outcomes: make([]atomic.Pointer[outcomeMetrics], len(progress.Reasons))}
}

// observeStarted counts a tracked upload's start.
func (m *uploadMetrics) observeStarted() {
	c := m.started.Load()
	if c == nil {
		v := uploadsStarted.WithLabelValues(m.zone, m.proto)
		c = &v
		m.started.Store(c)
	}
	(*c).Inc()
}

// observeFinished records a tracked upload's end, with n bytes received.
func (m *uploadMetrics) observeFinished(o progress.Outcome, n int64, took time.Duration) {
	r := m.received.Load()
	if r == nil {
		r = &receivedMetrics{
			bytes: receivedBytes.WithLabelValues(m.zone, m.proto),
			size:  uploadSize.WithLabelValues(m.zone, m.proto),
		}
		m.received.Store(r)
	}
	om := m.outcome(o.Reason)
	om.finished.Inc()
	r.bytes.Add(float64(n))
	om.duration.Observe(took.Seconds())
	r.size.Observe(float64(n))
}

// outcome returns the children for an outcome label value.
func (m *uploadMetrics) outcome(reason string) *outcomeMetrics {
	i := slices.Index(progress.Reasons, reason)
	if i >= 0 {
		if om := m.outcomes[i].Load(); om != nil {
			return om
		}
	}
	om := &outcomeMetrics{
		finished: uploadsFinished.WithLabelValues(m.zone, m.proto, reason),
		duration: uploadDuration.WithLabelValues(m.zone, m.proto, reason),
	}
	if i >= 0 {
		m.outcomes[i].Store(om)
	}
	return om
}
