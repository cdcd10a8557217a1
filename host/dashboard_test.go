package host_test

import (
	"encoding/json"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"

	"net/http"
	"net/http/httptest"
)

// dashboardPath is the Grafana dashboard that deploy/ ships.
const dashboardPath = "../deploy/grafana/nitrosign.json"

// grafanaPanel is what the test reads of a Grafana panel: its queries,
// and the panels of a row.
type grafanaPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// dashboardQueries returns every PromQL expression of the dashboard's
// panels (rows' panels included), and the metrics its template variables
// take label values from.
func dashboardQueries(t *testing.T, b []byte) (exprs []string, varMetrics []string) {
	t.Helper()
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("the dashboard has no uid, title or panels")
	}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has an empty query", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			varMetrics = append(varMetrics, m[1])
		}
	}
	return exprs, varMetrics
}

var (
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlVars     = regexp.MustCompile(`\$\{?\w+\}?`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// promqlMetricNames returns the metric names a PromQL expression selects:
// the identifiers that are not functions (followed by "("), keywords,
// label names (in matchers or grouping clauses), strings or variables.
func promqlMetricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, " ")
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	s = promqlVars.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] == '.' || '0' <= s[loc[0]-1] && s[loc[0]-1] <= '9') {
			continue // part of a number: 1e3, 0.5
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		if slices.Contains(promqlKeywords, strings.ToLower(id)) {
			continue
		}
		if !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	return names
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`nitrosign_enclave_frozen_keys{instance=~"$instance"}`, []string{"nitrosign_enclave_frozen_keys"}},
		{`nitrosign_enclave_state == 1`, []string{"nitrosign_enclave_state"}},
		{`histogram_quantile(0.99, sum by (le, op) (rate(nitrosign_kms_request_duration_seconds_bucket{a="b"}[1h])))`, []string{"nitrosign_kms_request_duration_seconds_bucket"}},
		{`sum without (instance) (rate(x_total[$__rate_interval])) / on (job) group_left (rule) y`, []string{"x_total", "y"}},
		{`a - time() > 1e3 and b offset 5m unless c`, []string{"a", "b", "c"}},
		{`rate(m{rule!="by(x)", s='q{r}'}[5m])`, []string{"m"}},
		{`up`, []string{"up"}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			if got := promqlMetricNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// registeredNames returns the sample names a host serves: each metric
// its registry describes, and, from a scrape of a host where nearly every
// metric has a series (a data directory, a credential source, a healthy
// fake enclave, one decision), a histogram's _bucket, _sum and _count.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	sim := newSim(t)
	startFake(t, sim, func(m proto.Message) proto.Message {
		if _, ok := m.(*proto.HealthRequest); ok {
			return richHealth()
		}
		return &proto.Error{Code: refusal.CodePolicyDenied, Rule: refusal.RuleChains}
	})
	s := metricsServer(t, sim)
	h := s.Handler()
	req := httptest.NewRequest(http.MethodPost, "/v1/sign", strings.NewReader(`{}`))
	req.Header.Set(stamp.Header, "x")
	h.ServeHTTP(httptest.NewRecorder(), req)
	names := map[string]bool{}
	// Those without a series now (the audit backlog, before the audit
	// log is opened), by name only.
	for _, name := range host.DescribedMetrics(s) {
		names[name] = true
	}
	for name, typ := range scrapeMetrics(t, h).types {
		names[name] = true
		switch typ {
		case "histogram":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "summary":
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names
}

// unknownMetrics returns the names of exprs that known lacks, but for the
// process collector's on a system where it exports none.
func unknownMetrics(names []string, known map[string]bool) []string {
	var out []string
	for _, n := range names {
		if known[n] || runtime.GOOS != "linux" && strings.HasPrefix(n, "process_") {
			continue
		}
		out = append(out, n)
	}
	return out
}

// TestGrafanaDashboard: every metric that a panel of
// deploy/grafana/nitrosign.json queries, or a template variable takes
// its values from, is one the host serves; and the dashboard shows every
// nitrosign_ metric of the host.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	exprs, varMetrics := dashboardQueries(t, b)
	known := registeredNames(t)
	used := map[string]bool{}
	for _, e := range exprs {
		names := promqlMetricNames(e)
		if len(names) == 0 {
			t.Errorf("query %q selects no metric", e)
		}
		for _, n := range unknownMetrics(names, known) {
			t.Errorf("query %q uses %s, which the host does not serve", e, n)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	for _, n := range unknownMetrics(varMetrics, known) {
		t.Errorf("a template variable takes values from %s, which the host does not serve", n)
	}
	// Every nitrosign_ family is on a panel (a histogram by its buckets,
	// sum or count).
	for name := range known {
		if !strings.HasPrefix(name, "nitrosign_") || strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
			continue
		}
		if !used[name] && !used[name+"_bucket"] && !used[name+"_count"] && !used[name+"_sum"] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// TestGrafanaDashboardCheckFails: the check refuses a query of a metric
// the host does not serve, a misspelt one included.
func TestGrafanaDashboardCheckFails(t *testing.T) {
	known := map[string]bool{"nitrosign_enclave_keys": true, "go_goroutines": true}
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`nitrosign_enclave_keys + nitrosign_enclave_kyes`, []string{"nitrosign_enclave_kyes"}},
		{`rate(nitrosign_nope_total[5m])`, []string{"nitrosign_nope_total"}},
		{`go_gorutines`, []string{"go_gorutines"}},
		{`nitrosign_enclave_keys{instance="a"}`, nil},
	} {
		if got := unknownMetrics(promqlMetricNames(tc.expr), known); !slices.Equal(got, tc.want) {
			t.Errorf("%s: unknown %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// TestMetricsDocumented: the metrics table of docs/api.md lists exactly
// the nitrosign_ metrics the host's registry describes, each with its
// meaning and what to alert on (or an empty cell).
func TestMetricsDocumented(t *testing.T) {
	md, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(md), "\n## Metrics\n")
	if !ok {
		t.Fatal("docs/api.md has no Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	const header = "| metric | labels | meaning | alert on |"
	if !strings.Contains(section, header) {
		t.Fatalf("the Metrics section has no table %q", header)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|") // no cell holds a |
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if len(cells) != 4 || strings.TrimSpace(cells[2]) == "" {
			t.Errorf("docs/api.md: the row of %s has no meaning, or not 4 cells", name)
		}
		documented[name] = true
	}
	sim := newSim(t)
	var described []string
	for _, n := range host.DescribedMetrics(metricsServer(t, sim)) {
		if strings.HasPrefix(n, "nitrosign_") {
			described = append(described, n)
			if !documented[n] {
				t.Errorf("docs/api.md does not document %s", n)
			}
		}
	}
	for n := range documented {
		if !slices.Contains(described, n) {
			t.Errorf("docs/api.md documents %s, which the host does not serve", n)
		}
	}
}
