package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/caddy-upload-progress/caddy-upload-progress/internal/testkit"
	"github.com/caddy-upload-progress/caddy-upload-progress/progress"
)

// sharedStoreSeries are the series of a zone with a shared store, which
// a Caddy without one does not export: the dashboard and the alerts may
// name them, with these labels and no others.
var sharedStoreSeries = map[string][]string{
	"caddy_upload_progress_store_up":           {"zone"},
	"caddy_upload_progress_store_errors_total": {"zone", "op"},
}

// The Grafana dashboard and the Prometheus alerts ask only for metrics
// and labels that a Caddy running the module exports, read from its
// /metrics after an upload, a status request, an untracked upload, a
// refused and a dropped watcher; the metrics of a shared store are
// allowed by name (sharedStoreSeries). Between them they show every
// metric the module exports.
func TestDashboardsNameExportedMetrics(t *testing.T) {
	exported := scrapeEveryFamily(t)
	for name, labels := range sharedStoreSeries {
		if _, ok := exported[name]; ok {
			t.Fatalf("%s is exported without a shared store: take it off sharedStoreSeries", name)
		}
		exported[name] = setOf(labels...)
	}

	used := map[string]bool{}
	t.Run("grafana.json", func(t *testing.T) {
		for where, expr := range dashboardQueries(t) {
			for _, name := range checkQuery(t, where, expr, exported) {
				used[name] = true
			}
		}
	})
	t.Run("alerts.yml", func(t *testing.T) {
		for where, expr := range alertExpressions(t) {
			for _, name := range checkQuery(t, where, expr, exported) {
				used[name] = true
			}
		}
	})
	// Every family the module exports is on the dashboard or in an alert.
	for name := range exported {
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !used[name] && !used[family+"_bucket"] && !used[family+"_sum"] && !used[family+"_count"] {
			t.Errorf("%s is exported but neither the dashboard nor the alerts show it", name)
		}
	}
}

// scrapeEveryFamily runs Caddy with the module, makes every metric family
// of the module appear on /metrics, and returns the series names it
// exports (a histogram's _bucket, _sum and _count) with their labels.
func scrapeEveryFamily(t *testing.T) map[string]map[string]bool {
	e := newEnv(t, "max_watchers_per_key 1\nping_interval 100ms\nwatcher_timeout 300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := e.scrape()

	data := pattern(64 << 10)
	if res := e.upload("/dashboards.bin", bytes.NewReader(data), int64(len(data)), "", nil); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s %v", res.code, res.body, res.err)
	}
	if p := e.status("/dashboards.bin"); p.Status != "completed" {
		t.Fatalf("status after the upload: %+v", p)
	}
	// Without the credential the upload passes untracked.
	req, _ := http.NewRequest(http.MethodPost, e.proxy+"/fso?path=/anonymous.bin&informProgress=true", bytes.NewReader(data))
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
	}
	// A watcher that never reads answers no ping and is dropped; a second
	// watcher of its key is refused while it is there.
	hdr := http.Header{"X-User-Api-Key": {apiKey}}
	idle, _, err := websocket.Dial(ctx, testkit.WebSocketURL(e.proxy)+"/ws/progress?path=/watched.bin", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.CloseNow()
	_, resp, err := websocket.Dial(ctx, testkit.WebSocketURL(e.proxy)+"/ws/progress?path=/watched.bin", &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second watcher of a key with max_watchers_per_key 1: %v %v, want 503", resp, err)
	}
	dropped := `caddy_upload_progress_watchers_dropped_total{protocol="shard",reason="no_pong",zone="default"}`
	e.waitMetric(dropped, metricValue(before, dropped)+1)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(e.scrape()))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	exported := map[string]map[string]bool{}
	add := func(name string, labels map[string]bool, extra ...string) {
		if exported[name] == nil {
			exported[name] = map[string]bool{}
		}
		maps.Copy(exported[name], labels)
		for _, l := range extra {
			exported[name][l] = true
		}
	}
	for name, f := range families {
		if !strings.HasPrefix(name, "caddy_upload_progress_") {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]bool{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
			if m.GetHistogram() != nil {
				add(name+"_bucket", labels, "le")
				add(name+"_sum", labels)
				add(name+"_count", labels)
				continue
			}
			add(name, labels)
		}
	}
	// Every metric of the module shows, or the check below proves less
	// than it says.
	for _, want := range []string{
		"uploads_started_total", "uploads_finished_total", "uploads_untracked_total", "watchers_refused_total",
		"watchers_dropped_total", "received_bytes_total", "upload_duration_seconds_bucket", "upload_size_bytes_bucket",
		"status_requests_total", "uploads_in_flight", "watchers", "keys", "file_details_bytes",
		"file_details_dropped_total", "records_evicted_total",
	} {
		if exported["caddy_upload_progress_"+want] == nil {
			t.Fatalf("caddy_upload_progress_%s is not on /metrics; families: %v", want, slices.Sorted(maps.Keys(exported)))
		}
	}
	return exported
}

// grafanaDashboard is what the test reads of dashboards/grafana.json.
type grafanaDashboard struct {
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// promDatasource is the data source every query must name: the
// dashboard's data source variable, so that it imports into any Grafana.
const promDatasource = `{"type":"prometheus","uid":"${DS_PROMETHEUS}"}`

// dashboardQueries reads the dashboard, checks its variables and data
// sources, and returns its PromQL, by where it is, with Grafana's
// variables replaced by what Prometheus would get.
func dashboardQueries(t *testing.T) map[string]string {
	b, err := os.ReadFile("../dashboards/grafana.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana.json: %v", err)
	}
	queries := map[string]string{}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "DS_PROMETHEUS":
			if v.Type != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("variable DS_PROMETHEUS is a %s of %s, want a datasource of prometheus", v.Type, v.Query)
			}
		case "zone":
			var q struct{ Query, Metric, Label string }
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Fatalf("variable zone: %v", err)
			}
			m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(q.Query)
			if v.Type != "query" || m == nil || m[2] != "zone" || q.Label != "zone" || q.Metric != m[1] {
				t.Fatalf("variable zone is a %s of %+v, want label_values(<metric>, zone) with its metric and label", v.Type, q)
			}
			sameJSON(t, "variable zone's datasource", v.Datasource, promDatasource)
			queries["variable zone"] = m[1] + "{zone!=\"\"}"
		}
	}
	if !vars["DS_PROMETHEUS"] || !vars["zone"] {
		t.Fatalf("variables %v, want DS_PROMETHEUS and zone", slices.Sorted(maps.Keys(vars)))
	}
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "${zone}", ".*", "$zone", ".*")
	var walk func([]grafanaPanel)
	walk = func(panels []grafanaPanel) {
		for _, p := range panels {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			sameJSON(t, fmt.Sprintf("panel %q's datasource", p.Title), p.Datasource, promDatasource)
			for i, q := range p.Targets {
				where := fmt.Sprintf("panel %q query %d", p.Title, i+1)
				sameJSON(t, where+"'s datasource", q.Datasource, promDatasource)
				if !strings.Contains(q.Expr, `zone=~"$zone"`) {
					t.Errorf("%s does not follow the zone variable: %s", where, q.Expr)
				}
				queries[where] = grafanaVars.Replace(q.Expr)
			}
		}
	}
	walk(d.Panels)
	if len(queries) < 10 {
		t.Fatalf("the dashboard has %d queries", len(queries))
	}
	return queries
}

// alertExpressions reads the alerting rules and returns their
// expressions, by alert name.
func alertExpressions(t *testing.T) map[string]string {
	b, err := os.ReadFile("../dashboards/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || exprs[r.Alert] != "" {
				t.Errorf("group %s: a rule with no alert name or a name used twice (%q)", g.Name, r.Alert)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a severity, summary or description", r.Alert)
			}
			exprs[r.Alert] = r.Expr
		}
	}
	for _, want := range []string{"UploadProgressUploadsFailing", "UploadProgressTrackerFull", "UploadProgressWatchersRefused", "UploadProgressUploadsStuck", "UploadProgressStoreDown"} {
		if exprs[want] == "" {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
	return exprs
}

// checkQuery parses expr and checks that every series it selects is one
// exported, that its label matchers, groupings and vector matchings name
// only labels of the series they apply to, and that the outcomes and
// reasons it matches by name exist. It returns the series it selects.
func checkQuery(t *testing.T, where, expr string, exported map[string]map[string]bool) []string {
	t.Helper()
	root, err := parser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s does not parse: %v\n%s", where, err, expr)
		return nil
	}
	var names []string
	// labelsUnder is the union of the labels of the series n selects.
	labelsUnder := func(n parser.Node) map[string]bool {
		all := map[string]bool{}
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				maps.Copy(all, exported[vs.Name])
			}
			return nil
		})
		return all
	}
	parser.Inspect(root, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				t.Errorf("%s selects series without naming a metric: %s", where, n)
				return nil
			}
			labels, ok := exported[n.Name]
			if !ok {
				t.Errorf("%s names %s, which the module does not export", where, n.Name)
				return nil
			}
			names = append(names, n.Name)
			for _, m := range n.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					continue
				}
				if !labels[m.Name] {
					t.Errorf("%s matches label %q of %s, which has only %v", where, m.Name, n.Name, slices.Sorted(maps.Keys(labels)))
				}
				checkLabelValue(t, where, m)
			}
		case *parser.AggregateExpr:
			have := labelsUnder(n.Expr)
			for _, l := range n.Grouping {
				if !have[l] {
					t.Errorf("%s groups %s by %q, which its series do not have (%v)", where, n.Op, l, slices.Sorted(maps.Keys(have)))
				}
			}
		case *parser.BinaryExpr:
			if n.VectorMatching == nil {
				return nil
			}
			for _, side := range []parser.Node{n.LHS, n.RHS} {
				have := labelsUnder(side)
				for _, l := range n.VectorMatching.MatchingLabels {
					if !have[l] {
						t.Errorf("%s matches on %q, which one side's series do not have (%v)", where, l, slices.Sorted(maps.Keys(have)))
					}
				}
			}
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("%s selects no metric: %s", where, expr)
	}
	return names
}

// checkLabelValue checks that an equality matcher on outcome or reason
// names a value the module uses.
func checkLabelValue(t *testing.T, where string, m *labels.Matcher) {
	t.Helper()
	if m.Type != labels.MatchEqual && m.Type != labels.MatchNotEqual {
		return
	}
	var known []string
	switch m.Name {
	case "outcome":
		known = progress.Reasons
	case "reason":
		// uploads_untracked_total's, then watchers_refused_total's and
		// watchers_dropped_total's.
		known = append(slices.Clone(progress.UntrackedReasons), "limit", "closed", "no_pong", "write_timeout")
	default:
		return
	}
	if !slices.Contains(known, m.Value) {
		t.Errorf("%s matches %s=%q, which is not one of %v", where, m.Name, m.Value, known)
	}
}

// sameJSON fails unless got and want are the same JSON value.
func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: %v (%s)", what, err, got)
		return
	}
	json.Unmarshal([]byte(want), &w)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("%s is %s, want %s", what, got, want)
	}
}

func setOf(s ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}
