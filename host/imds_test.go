package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/host"
)

const (
	testAccessKeyID = "ASIAEXAMPLEKEYID0001"
	testSecret      = "SECRETwJalrXUtnFEMIK7MDENGbPxRfiCY"
	testToken       = "SESSIONTOKENIQoJb3JpZ2luX2VjEXAMPLE"
	testRole        = "nitrosign-parent"
	imdsTokenPrefix = "IMDSTOKEN-"
)

// noSecrets fails if s contains a secret of the tests' credentials or an
// IMDS session token.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testSecret, testToken, imdsTokenPrefix} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret (%.12s…): %s", what, secret, s)
		}
	}
}

// fakeIMDS is an IMDSv2-only metadata service: a GET without a token it
// issued answers 401.
type fakeIMDS struct {
	mu       sync.Mutex
	tokens   map[string]bool
	puts     int
	ttls     []string
	gets     []string // paths
	roles    string   // the listing's body
	creds    string   // the role's body
	override map[string]func(w http.ResponseWriter)
}

func newFakeIMDS(t *testing.T) (*fakeIMDS, *httptest.Server) {
	f := &fakeIMDS{
		tokens:   map[string]bool{},
		roles:    testRole,
		creds:    credsJSON(time.Now().Add(6*time.Hour), nil),
		override: map[string]func(http.ResponseWriter){},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.override[r.Method+" "+r.URL.Path]; o != nil {
		o(w)
		return
	}
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		ttl := r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds")
		f.ttls = append(f.ttls, ttl)
		if n, err := strconv.Atoi(ttl); err != nil || n < 1 || n > 21600 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.puts++
		tok := fmt.Sprintf("%s%d", imdsTokenPrefix, f.puts)
		f.tokens[tok] = true
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", ttl)
		fmt.Fprint(w, tok)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !f.tokens[r.Header.Get("X-aws-ec2-metadata-token")] {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.gets = append(f.gets, r.URL.Path)
	switch r.URL.Path {
	case "/latest/meta-data/iam/security-credentials/":
		fmt.Fprint(w, f.roles)
	case "/latest/meta-data/iam/security-credentials/" + testRole:
		fmt.Fprint(w, f.creds)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIMDS) set(fn func(f *fakeIMDS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// revokeTokens makes IMDS refuse every token it issued, as when they
// expire.
func (f *fakeIMDS) revokeTokens() { f.set(func(f *fakeIMDS) { clear(f.tokens) }) }

func (f *fakeIMDS) counts() (puts, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts, len(f.gets)
}

// credsJSON is IMDS's answer for credentials expiring at exp, changed by
// edit.
func credsJSON(exp time.Time, edit func(m map[string]any)) string {
	m := map[string]any{
		"Code":            "Success",
		"LastUpdated":     time.Now().UTC().Format(time.RFC3339),
		"Type":            "AWS-HMAC",
		"AccessKeyId":     testAccessKeyID,
		"SecretAccessKey": testSecret,
		"Token":           testToken,
		"Expiration":      exp.UTC().Format(time.RFC3339),
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

func newIMDS(t *testing.T, srv *httptest.Server, cfg host.IMDSConfig) *host.IMDS {
	t.Helper()
	cfg.Endpoint = srv.URL
	m, err := host.NewIMDS(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIMDSFetch(t *testing.T) {
	f, srv := newFakeIMDS(t)
	exp := time.Now().Add(6 * time.Hour).Truncate(time.Second)
	f.set(func(f *fakeIMDS) { f.creds = credsJSON(exp, nil) })
	m := newIMDS(t, srv, host.IMDSConfig{})
	for range 2 {
		c, err := m.Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := host.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret, SessionToken: testToken, Expires: exp}
		if c.AccessKeyID != want.AccessKeyID || c.SecretAccessKey != want.SecretAccessKey ||
			c.SessionToken != want.SessionToken || !c.Expires.Equal(want.Expires) {
			t.Fatalf("got %#v, want %#v", c, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// One token for both fetches, asked for 6 hours.
	if f.puts != 1 || len(f.ttls) != 1 || f.ttls[0] != "21600" {
		t.Errorf("token requests: %d, TTL headers %q; want one, 21600", f.puts, f.ttls)
	}
	wantGets := []string{
		"/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/" + testRole,
		"/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/" + testRole,
	}
	if fmt.Sprint(f.gets) != fmt.Sprint(wantGets) {
		t.Errorf("GETs %q, want %q", f.gets, wantGets)
	}
}

func TestIMDSRequiresToken(t *testing.T) {
	f, srv := newFakeIMDS(t)
	// The fake, like an IMDSv2-only instance, refuses a GET without token.
	resp, err := http.Get(srv.URL + "/latest/meta-data/iam/security-credentials/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET without token: %d, want 401", resp.StatusCode)
	}

	m := newIMDS(t, srv, host.IMDSConfig{})
	if _, err := m.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// IMDS stops accepting the token: the next fetch gets a new one and
	// succeeds.
	f.revokeTokens()
	if _, err := m.Fetch(context.Background()); err != nil {
		t.Fatalf("after the token was refused: %v", err)
	}
	if puts, _ := f.counts(); puts != 2 {
		t.Errorf("token requests: %d, want 2", puts)
	}

	// A 401 even with a fresh token is an error, not a loop.
	f.set(func(f *fakeIMDS) {
		f.override["GET /latest/meta-data/iam/security-credentials/"] = func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	_, err = m.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("always 401: %v", err)
	}
	if puts, _ := f.counts(); puts != 3 {
		t.Errorf("token requests: %d, want 3", puts)
	}
}

// TestIMDSTokenTTL: the token is asked for with the configured lifetime,
// reused while it lasts, and renewed once it has expired (the SDK's cache
// runs on the wall clock: a 1 s token, and a wait past it).
func TestIMDSTokenTTL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		header  string
		expires bool
	}{
		{"default", 0, "21600", false},
		{"ten minutes", 10 * time.Minute, "600", false},
		{"one second", time.Second, "1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeIMDS(t)
			m := newIMDS(t, srv, host.IMDSConfig{TokenTTL: tc.ttl})
			for range 2 {
				if _, err := m.Fetch(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if puts, _ := f.counts(); puts != 1 && !tc.expires {
				t.Fatalf("token requests: %d, want 1", puts)
			}
			if tc.expires {
				before, _ := f.counts()
				time.Sleep(1100 * time.Millisecond) // past the token's lifetime, whatever the machine's speed
				if _, err := m.Fetch(context.Background()); err != nil {
					t.Fatal(err)
				}
				if puts, _ := f.counts(); puts <= before {
					t.Fatalf("token requests after the TTL: %d, want more than %d", puts, before)
				}
			}
			f.set(func(f *fakeIMDS) {
				for _, got := range f.ttls {
					if got != tc.header {
						t.Errorf("TTL header %q, want %q", got, tc.header)
					}
				}
			})
		})
	}
}

// TestIMDSNoV1Fallback: when IMDS refuses a session token (IMDSv2 not
// available, or disabled), Fetch fails and never asks without a token,
// even of a service that would answer IMDSv1.
func TestIMDSNoV1Fallback(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var mu sync.Mutex
			var tokenless int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/latest/api/token" {
					w.WriteHeader(status)
					return
				}
				// An IMDSv1 service: answers without a token.
				if r.Header.Get("X-aws-ec2-metadata-token") == "" {
					mu.Lock()
					tokenless++
					mu.Unlock()
				}
				switch r.URL.Path {
				case "/latest/meta-data/iam/security-credentials/":
					fmt.Fprint(w, testRole)
				case "/latest/meta-data/iam/security-credentials/" + testRole:
					fmt.Fprint(w, credsJSON(time.Now().Add(time.Hour), nil))
				}
			}))
			t.Cleanup(srv.Close)
			m := newIMDS(t, srv, host.IMDSConfig{})
			for range 2 { // the second after the SDK saw the refusal
				c, err := m.Fetch(context.Background())
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("getting a session token: HTTP %d", status)) {
					t.Fatalf("got %v, %v; want the token refusal", c, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if tokenless != 0 {
				t.Errorf("%d requests without a token: fell back to IMDSv1", tokenless)
			}
		})
	}
}

// TestIMDSIgnoresEnvironment: the SDK's environment variables (endpoint,
// disabled) and the HTTP proxy variables change nothing.
func TestIMDSIgnoresEnvironment(t *testing.T) {
	_, srv := newFakeIMDS(t)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request through the proxy: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", proxy.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	if _, err := newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestIMDSTokenRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		put  func(w http.ResponseWriter)
		want string
	}{
		{"disabled", func(w http.ResponseWriter) { w.WriteHeader(http.StatusForbidden) }, "HTTP 403"},
		{"empty", func(w http.ResponseWriter) {}, "not a token"},
		{"spaces", func(w http.ResponseWriter) { fmt.Fprint(w, "a token") }, "not a token"},
		{"huge", func(w http.ResponseWriter) { w.Write(bytes.Repeat([]byte("a"), 70<<10)) }, "larger than"},
		{"over the token cap", func(w http.ResponseWriter) {
			w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
			w.Write(bytes.Repeat([]byte("a"), 4097))
		}, "larger than 4096 bytes"},
		{"no lifetime", func(w http.ResponseWriter) { fmt.Fprint(w, imdsTokenPrefix+"x") }, "lifetime header"},
		{"lifetime over 6 h", func(w http.ResponseWriter) {
			w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21601")
			fmt.Fprint(w, imdsTokenPrefix+"x")
		}, "lifetime header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeIMDS(t)
			f.set(func(f *fakeIMDS) { f.override["PUT /latest/api/token"] = tc.put })
			_, err := newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestIMDSRoleListing(t *testing.T) {
	for _, tc := range []struct {
		name, roles string
		want        string // "" for success
	}{
		{"one", testRole, ""},
		{"one with newline", testRole + "\n", ""},
		{"empty", "", "no IAM role"},
		{"newline only", "\n", "no IAM role"},
		{"two", testRole + "\nother", "2 roles"},
		{"three", "a\nb\nc\n", "3 roles"},
		{"blank line", testRole + "\n\n", "2 roles"},
		{"path", "../../user-data", "not a valid IAM role name"},
		{"too long", strings.Repeat("r", 65), "not a valid IAM role name"},
		{"carriage return", testRole + "\r\n", "not a valid IAM role name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeIMDS(t)
			f.set(func(f *fakeIMDS) { f.roles = tc.roles })
			_, err := newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if tc.want == "no IAM role" && !errors.Is(err, host.ErrNoInstanceRole) {
				t.Errorf("%v is not ErrNoInstanceRole", err)
			}
		})
	}

	t.Run("not found", func(t *testing.T) {
		f, srv := newFakeIMDS(t)
		f.set(func(f *fakeIMDS) {
			f.override["GET /latest/meta-data/iam/security-credentials/"] = func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusNotFound)
			}
		})
		_, err := newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("got %v, want a 404 error", err)
		}
	})
}

func TestIMDSCredentialsRefused(t *testing.T) {
	future := time.Now().Add(time.Hour)
	edit := func(k string, v any) string {
		return credsJSON(future, func(m map[string]any) {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		})
	}
	cases := []struct {
		name, body, want string
	}{
		{"code failure", edit("Code", "Failure"), `Code "Failure"`},
		{"code lower case", edit("Code", "success"), `Code "success"`},
		{"code missing", edit("Code", nil), `Code ""`},
		{"code huge", edit("Code", strings.Repeat("x", 1000)), "1000 bytes, not shown"},
		{"expired", credsJSON(time.Now().Add(-time.Minute), nil), "expired"},
		{"expiration not RFC 3339", edit("Expiration", "tomorrow"), "Expiration is not an RFC 3339 time"},
		{"last updated not RFC 3339", edit("LastUpdated", "yesterday"), "LastUpdated is not an RFC 3339 time"},
		{"type", edit("Type", "AWS-OTHER"), `Type "AWS-OTHER"`},
		{"access key id not one", edit("AccessKeyId", "ASIA/"+testSecret), "not an access key id"},
		{"access key id a number", edit("AccessKeyId", 12345678901234567), "AccessKeyId is not a string"},
		{"trailing data", credsJSON(future, nil) + `{"SecretAccessKey":"x"}`, "not one JSON object"},
		{"array", "[" + credsJSON(future, nil) + "]", "top level is not a"},
		{"not JSON", "Code=Success " + testSecret, "not one JSON object"},
		{"empty", "", "not one JSON object"},
		{"oversized", credsJSON(future, nil) + strings.Repeat(" ", 64<<10), "larger than 65536 bytes"},
	}
	for _, field := range []string{"LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"} {
		cases = append(cases,
			struct{ name, body, want string }{"no " + field, edit(field, nil), "no " + field},
			struct{ name, body, want string }{"empty " + field, edit(field, ""), "no " + field})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeIMDS(t)
			f.set(func(f *fakeIMDS) { f.creds = tc.body })
			c, err := newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, %v; want an error with %q", c, err, tc.want)
			}
			noSecrets(t, "the error", err.Error())
			if c != (host.Credentials{}) {
				t.Errorf("credentials returned with the error: %v", c)
			}
		})
	}
}

func TestIMDSOversizedListing(t *testing.T) {
	f, srv := newFakeIMDS(t)
	f.set(func(f *fakeIMDS) { f.roles = strings.Repeat("r", 64<<10+1) })
	_, err := newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") {
		t.Fatalf("got %v", err)
	}
	// Without a Content-Length (chunked), the same.
	f.set(func(f *fakeIMDS) {
		f.override["GET /latest/meta-data/iam/security-credentials/"] = func(w http.ResponseWriter) {
			for range 80 {
				w.Write(bytes.Repeat([]byte("r"), 1<<10))
				w.(http.Flusher).Flush()
			}
		}
	})
	_, err = newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") {
		t.Fatalf("chunked: got %v", err)
	}
}

func TestIMDSNoRedirect(t *testing.T) {
	f, srv := newFakeIMDS(t)
	f.set(func(f *fakeIMDS) {
		f.override["GET /latest/meta-data/iam/security-credentials/"+testRole] = func(w http.ResponseWriter) {
			w.Header().Set("Location", "/latest/meta-data/iam/security-credentials/")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}
	})
	_, err := newIMDS(t, srv, host.IMDSConfig{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Fatalf("got %v, want HTTP 307", err)
	}
	if _, gets := f.counts(); gets != 1 {
		t.Errorf("%d GETs: the redirect was followed", gets)
	}
}

func TestIMDSUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	m, err := host.NewIMDS(&host.IMDSConfig{Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "session token") {
		t.Fatalf("got %v", err)
	}
}

func TestNewIMDS(t *testing.T) {
	m, err := host.NewIMDS(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.String(), "host.IMDS{"+host.DefaultIMDSEndpoint+"}"; got != want {
		t.Errorf("String %q, want %q", got, want)
	}
	if _, err := host.NewIMDS(&host.IMDSConfig{Endpoint: "http://[fd00:ec2::254]/"}); err != nil {
		t.Errorf("IPv6 endpoint: %v", err)
	}
	for _, cfg := range []host.IMDSConfig{
		{Endpoint: "https://169.254.169.254"},
		{Endpoint: "169.254.169.254"},
		{Endpoint: "http://169.254.169.254/latest"},
		{Endpoint: "http://user@169.254.169.254"},
		{Endpoint: "http://169.254.169.254?x=1"},
		{Endpoint: "http://"},
		{TokenTTL: 6*time.Hour + time.Second},
		{TokenTTL: 1500 * time.Millisecond},
		{TokenTTL: -time.Second},
	} {
		if _, err := host.NewIMDS(&cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestCredentialsRedacted(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := host.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret, SessionToken: testToken, Expires: exp}
	st := host.StaticCredentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret, SessionToken: testToken}
	_, srv := newFakeIMDS(t)
	m := newIMDS(t, srv, host.IMDSConfig{})
	if _, err := m.Fetch(context.Background()); err != nil { // m now holds a token
		t.Fatal(err)
	}
	r, err := host.NewCredentialRefresher(&host.CredentialRefresherConfig{Source: st, Push: func(context.Context, host.Credentials) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	type wrapper struct {
		C *host.Credentials
		S host.StaticCredentials
	}
	values := map[string]any{
		"Credentials": c, "*Credentials": &c, "StaticCredentials": st, "*StaticCredentials": &st,
		"*IMDS": m, "*CredentialRefresher": r, "wrapper": wrapper{&c, st}, "slice": []host.Credentials{c},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T %[1]v"} {
			out := fmt.Sprintf(verb, v)
			noSecrets(t, name+" with "+verb, out)
		}
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		} {
			var b bytes.Buffer
			l := slog.New(h(&b))
			l.Info("msg", "v", v)
			l.Info("msg", slog.Any("v", v))
			l.With("v", v).Info("msg")
			noSecrets(t, name+" in slog", b.String())
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		noSecrets(t, name+" as JSON", string(b))
	}
	// What they do show.
	if got, want := fmt.Sprint(c), "host.Credentials{"+testAccessKeyID+", temporary, expires 2030-01-02T03:04:05Z}"; got != want {
		t.Errorf("%%v: %s, want %s", got, want)
	}
	if got := fmt.Sprintf("%#v", c); !strings.Contains(got, "SecretAccessKey:<redacted>") || !strings.Contains(got, testAccessKeyID) {
		t.Errorf("%%#v: %s", got)
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("msg", "credentials", c)
	if !strings.Contains(b.String(), `"credentials":{"access_key_id":"`+testAccessKeyID+`","temporary":true,"expires":"2030-01-02T03:04:05Z"}`) {
		t.Errorf("slog: %s", b.String())
	}
}

func TestStaticCredentials(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := host.StaticCredentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret, Lifetime: 10 * time.Minute, Now: clk.Now}
	for range 2 {
		c, err := s.Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessKeyID != testAccessKeyID || c.SecretAccessKey != testSecret || c.SessionToken != "" ||
			!c.Expires.Equal(clk.Now().Add(10*time.Minute)) {
			t.Fatalf("got %#v at %s", c, clk.Now())
		}
		clk.Add(time.Hour) // renewed: the expiry follows the clock
	}
	if c, err := (host.StaticCredentials{AccessKeyID: "A", SecretAccessKey: "B"}).Fetch(context.Background()); err != nil ||
		time.Until(c.Expires) < 59*time.Minute {
		t.Errorf("default lifetime: %v, %v", c, err)
	}
	if _, err := (host.StaticCredentials{AccessKeyID: testAccessKeyID}).Fetch(context.Background()); err == nil {
		t.Error("credentials without a secret accepted")
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// wait is one wait of the refresher: the test fires it.
type wait struct {
	d  time.Duration
	ch chan time.Time
}

// refresherHarness runs a CredentialRefresher on a fake clock: every wait
// it asks for is handed to the test, which moves the clock and fires it.
type refresherHarness struct {
	t      *testing.T
	clk    *fakeClock
	r      *host.CredentialRefresher
	waits  chan wait
	logs   *syncBuffer
	mu     sync.Mutex
	pushed []host.Credentials
	cancel context.CancelFunc
	done   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startRefresher runs a refresher of src whose pushes fail with what
// pushErr returns for the n-th push (1-based; nil: succeed).
func startRefresher(t *testing.T, clk *fakeClock, src host.CredentialSource, pushErr func(n int) error, cfg host.CredentialRefresherConfig) *refresherHarness {
	t.Helper()
	h := &refresherHarness{t: t, clk: clk, waits: make(chan wait, 64), logs: &syncBuffer{}, done: make(chan struct{})}
	pushes := 0
	cfg.Source = src
	cfg.Push = func(_ context.Context, c host.Credentials) error {
		pushes++
		if pushErr != nil {
			if err := pushErr(pushes); err != nil {
				return err
			}
		}
		h.mu.Lock()
		h.pushed = append(h.pushed, c)
		h.mu.Unlock()
		return nil
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Now = clk.Now
	cfg.After = func(d time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		h.waits <- wait{d, ch}
		return ch
	}
	r, err := host.NewCredentialRefresher(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { r.Run(ctx); close(h.done) }()
	t.Cleanup(h.stop)
	return h
}

// next returns the refresher's next wait. The timeout only guards against
// a hang: the test's logic does not depend on it.
func (h *refresherHarness) next() wait {
	h.t.Helper()
	select {
	case w := <-h.waits:
		return w
	case <-time.After(10 * time.Second):
		h.t.Fatal("the refresher did not wait")
		return wait{}
	}
}

// fire moves the clock by w's duration and ends the wait.
func (h *refresherHarness) fire(w wait) {
	h.clk.Add(w.d)
	w.ch <- h.clk.Now()
}

func (h *refresherHarness) pushes() []host.Credentials {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]host.Credentials(nil), h.pushed...)
}

func (h *refresherHarness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return after its context was cancelled")
	}
	noSecrets(h.t, "the logs", h.logs.String())
}

// lifetimes is a source whose n-th credentials live the n-th lifetime (the
// last one after that).
type lifetimes struct {
	clk   *fakeClock
	mu    sync.Mutex
	lives []time.Duration
	errs  []error // the n-th fetch fails with errs[n] if set
	n     int
}

func (s *lifetimes) Fetch(ctx context.Context) (host.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.n
	s.n++
	if n < len(s.errs) && s.errs[n] != nil {
		return host.Credentials{}, s.errs[n]
	}
	life := s.lives[min(n, len(s.lives)-1)]
	return host.Credentials{
		AccessKeyID: fmt.Sprintf("ASIAEXAMPLE%09d", n), SecretAccessKey: testSecret, SessionToken: testToken,
		Expires: s.clk.Now().Add(life),
	}, nil
}

func (s *lifetimes) fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestCredentialRefresherCycle(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &lifetimes{clk: clk, lives: []time.Duration{6 * time.Hour, 6 * time.Hour, time.Hour, 20 * time.Minute, 10 * time.Minute, 30 * time.Second}}
	h := startRefresher(t, clk, src, nil, host.CredentialRefresherConfig{})
	want := []time.Duration{
		6 * time.Hour * 8 / 10, // 80% of the lifetime is earlier than 15 min before
		6 * time.Hour * 8 / 10, //
		45 * time.Minute,       // 15 min before expiry is earlier than 80%
		5 * time.Minute,        // 15 min before expiry
		time.Minute,            // never sooner than a minute
		time.Minute,            //
	}
	for i, d := range want {
		w := h.next()
		if w.d != d {
			t.Fatalf("wait %d: %s, want %s", i, w.d, d)
		}
		p := h.pushes()
		if len(p) != i+1 {
			t.Fatalf("after refresh %d: %d pushes", i, len(p))
		}
		if last := p[i]; last.SecretAccessKey != testSecret || !last.Expires.Equal(clk.Now().Add(src.lives[i])) {
			t.Fatalf("push %d: %#v", i, last)
		}
		if !h.r.Expires().Equal(p[i].Expires) {
			t.Errorf("Expires %s, want %s", h.r.Expires(), p[i].Expires)
		}
		h.fire(w)
	}
	h.next()
	if strings.Contains(h.logs.String(), "failed") {
		t.Errorf("failures logged: %s", h.logs.String())
	}
}

func TestCredentialRefresherRetriesPush(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &lifetimes{clk: clk, lives: []time.Duration{time.Hour}}
	failing := 3
	h := startRefresher(t, clk, src, func(n int) error {
		if n <= failing {
			return errors.New("the enclave is unreachable")
		}
		return nil
	}, host.CredentialRefresherConfig{})
	for i := range failing {
		w := h.next()
		// Backoff 1 s, 2 s, 4 s, jittered into the upper half.
		full := time.Second << i
		if w.d < full/2 || w.d > full {
			t.Errorf("backoff %d: %s, want [%s, %s]", i+1, w.d, full/2, full)
		}
		if p := h.pushes(); len(p) != 0 {
			t.Fatalf("%d pushes recorded while pushing fails", len(p))
		}
		h.fire(w)
	}
	if w := h.next(); w.d != 45*time.Minute {
		t.Errorf("after the push succeeded: wait %s, want 45m", w.d)
	}
	if p := h.pushes(); len(p) != 1 {
		t.Errorf("%d pushes, want 1", len(p))
	}
	if n := src.fetches(); n != failing+1 {
		t.Errorf("%d fetches, want %d: each retry fetches anew", n, failing+1)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, `"msg":"credential refresh failed"`); n != failing {
		t.Errorf("%d failures logged, want %d:\n%s", n, failing, logs)
	}
	if !strings.Contains(logs, "pushing credentials to the enclave: the enclave is unreachable") {
		t.Errorf("the failure is not logged:\n%s", logs)
	}
}

func TestCredentialRefresherBackoffCap(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = errors.New("IMDS is down")
	}
	src := &lifetimes{clk: clk, lives: []time.Duration{time.Hour}, errs: errs}
	h := startRefresher(t, clk, src, nil, host.CredentialRefresherConfig{MinBackoff: time.Second, MaxBackoff: 5 * time.Second})
	for i := range 80 {
		w := h.next()
		full := min(time.Second<<min(i, 10), 5*time.Second)
		if w.d < full/2 || w.d > full {
			t.Fatalf("backoff %d: %s, want [%s, %s]", i+1, w.d, full/2, full)
		}
		h.fire(w)
	}
}

func TestCredentialRefresherLogsExpiredAsError(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fail := errors.New("IMDS is down")
	src := &lifetimes{clk: clk, lives: []time.Duration{2 * time.Minute}, errs: []error{nil, fail, fail}}
	h := startRefresher(t, clk, src, nil, host.CredentialRefresherConfig{})
	h.fire(h.next()) // pushed; 1 min later, the fetch fails
	w := h.next()    // while the pushed credentials have a minute left
	if logs := h.logs.String(); !strings.Contains(logs, `"level":"WARN","msg":"credential refresh failed"`) {
		t.Fatalf("no warning:\n%s", logs)
	}
	clk.Add(2 * time.Minute)
	h.fire(w)
	h.next()
	if logs := h.logs.String(); !strings.Contains(logs, `"level":"ERROR","msg":"credential refresh failed"`) {
		t.Fatalf("no error once the pushed credentials expired:\n%s", logs)
	}
}

func TestCredentialRefresherRefusesExpired(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &lifetimes{clk: clk, lives: []time.Duration{0, time.Hour}}
	h := startRefresher(t, clk, src, nil, host.CredentialRefresherConfig{})
	h.fire(h.next())
	h.next()
	if p := h.pushes(); len(p) != 1 || p[0].AccessKeyID != "ASIAEXAMPLE000000001" {
		t.Errorf("pushed %v; want only the second credentials", p)
	}
}

func TestCredentialRefresherRefresh(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	src := &lifetimes{clk: clk, lives: []time.Duration{6 * time.Hour}}
	h := startRefresher(t, clk, src, nil, host.CredentialRefresherConfig{})
	h.next() // a wait of hours, never fired
	h.r.Refresh()
	h.next()
	if p := h.pushes(); len(p) != 2 {
		t.Fatalf("%d pushes after Refresh, want 2", len(p))
	}
}

func TestCredentialRefresherWithIMDS(t *testing.T) {
	f, srv := newFakeIMDS(t)
	clk := newFakeClock(time.Now())
	exp := clk.Now().Add(time.Hour).Truncate(time.Second)
	f.set(func(f *fakeIMDS) { f.creds = credsJSON(exp, nil) })
	m := newIMDS(t, srv, host.IMDSConfig{Now: clk.Now})
	h := startRefresher(t, clk, m, nil, host.CredentialRefresherConfig{})
	w := h.next()
	p := h.pushes()
	if len(p) != 1 || p[0].SessionToken != testToken || !p[0].Expires.Equal(exp) {
		t.Fatalf("pushed %#v", p)
	}
	if want := exp.Sub(clk.Now()) - 15*time.Minute; w.d != want {
		t.Errorf("wait %s, want %s", w.d, want)
	}
	// IMDS stops answering: the refresher retries.
	f.set(func(f *fakeIMDS) {
		f.override["GET /latest/meta-data/iam/security-credentials/"] = func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	h.fire(w)
	if w := h.next(); w.d > time.Second {
		t.Errorf("retry after %s, want at most 1 s", w.d)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "listing the instance role: HTTP 500") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestNewCredentialRefresher(t *testing.T) {
	push := func(context.Context, host.Credentials) error { return nil }
	src := host.StaticCredentials{AccessKeyID: "A", SecretAccessKey: "B"}
	for _, cfg := range []*host.CredentialRefresherConfig{
		nil,
		{Push: push},
		{Source: src},
		{Source: src, Push: push, MinBackoff: 2 * time.Minute},
		{Source: src, Push: push, Margin: -time.Second},
	} {
		if _, err := host.NewCredentialRefresher(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	r, err := host.NewCredentialRefresher(&host.CredentialRefresherConfig{Source: src, Push: push})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expires().IsZero() {
		t.Error("Expires before any push")
	}
}
