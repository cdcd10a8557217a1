package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/internal/devstack"
)

// serve runs a.Serve on ln until the test ends, and checks it returned
// nil and removed a Unix socket.
func serve(t *testing.T, a *Agent, ln net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if ln.Addr().Network() == "unix" {
			if _, err := os.Lstat(ln.Addr().String()); err == nil {
				t.Errorf("the socket %s remains after Serve", ln.Addr())
			}
		}
	})
}

func post(t *testing.T, c *http.Client, url, host, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func testServe(t *testing.T, st *devstack.Stack, a *Agent) {
	addr := st.Keys[0].Address
	accounts := `{"jsonrpc":"2.0","method":"eth_accounts","params":[],"id":7}`
	wantAccounts := `{"jsonrpc":"2.0","result":["` + addr + `"],"id":7}`

	t.Run("listen refuses a remote address without allowRemote", func(t *testing.T) {
		for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:8550", ":8550", "example.com:8550"} {
			if ln, err := Listen(addr, false); err == nil {
				ln.Close()
				t.Errorf("Listen(%q) accepted", addr)
			}
		}
		for _, addr := range []string{"relative/path.sock", "unix:"} {
			if ln, err := Listen(addr, false); err == nil {
				ln.Close()
				t.Errorf("Listen(%q) accepted", addr)
			}
		}
	})

	t.Run("HTTP host check", func(t *testing.T) {
		va := newAgent(t, st, st.URL, func(c *Config) { c.VHosts = []string{"signer.internal"} })
		ln, err := Listen("127.0.0.1:0", false)
		if err != nil {
			t.Fatal(err)
		}
		serve(t, va, ln)
		url := "http://" + ln.Addr().String()
		for _, tc := range []struct {
			name   string
			host   string
			status int
		}{
			{"as dialled", "", 200},
			{"localhost", "localhost:8550", 200},
			{"ipv6 loopback", "[::1]:8550", 200},
			{"vhost", "signer.internal:8550", 200},
			{"vhost, other case", "SIGNER.internal", 200},
			{"rebinding name", "evil.example:8550", 403},
			{"other IP", "10.0.0.1:8550", 403},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body, _ := post(t, http.DefaultClient, url, tc.host, accounts)
				if status != tc.status || (status == 200 && body != wantAccounts) {
					t.Fatalf("status %d, body %s", status, body)
				}
			})
		}
		req, _ := http.NewRequest(http.MethodOptions, url, nil)
		req.Header.Set("Origin", "http://evil.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight answered %d with %v", resp.StatusCode, resp.Header)
		}
	})

	t.Run("Unix socket", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "ns-agent-") // short: socket paths are limited to ~100 bytes
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "agent.sock")

		// A file that is not a socket is not replaced.
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Listen(path, false); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("over a file: %v", err)
		}
		os.Remove(path)
		// A stale socket (nobody listens) is replaced.
		stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		stale.SetUnlinkOnClose(false)
		stale.Close()

		ln, err := Listen("unix:"+path, false)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("socket mode %v, %v", fi.Mode(), err)
		}
		// A live socket is not replaced.
		if ln2, err := Listen(path, false); err == nil {
			ln2.Close()
			t.Fatal("a live socket was replaced")
		}
		serve(t, a, ln)

		t.Run("HTTP", func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", path)
			}}}
			defer c.CloseIdleConnections()
			status, body, _ := post(t, c, "http://localhost/", "", accounts)
			if status != 200 || body != wantAccounts {
				t.Fatalf("status %d, body %s", status, body)
			}
		})

		t.Run("stream", func(t *testing.T) {
			conn, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			msgs := "\n" + accounts + ` {"jsonrpc":"2.0","method":"account_version","id":"v"}` +
				`{"jsonrpc":"2.0","method":"eth_accounts","params":[],"id":8,}` + // not JSON, but framed
				`[{"jsonrpc":"2.0","method":"account_list","id":1},{"jsonrpc":"2.0","method":"eth_accounts"}]` +
				`{"jsonrpc":"2.0","method":"nosuch","id":"}{"}`
			if _, err := io.WriteString(conn, msgs); err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bufio.NewReader(conn))
			for i, want := range []string{
				wantAccounts,
				`{"jsonrpc":"2.0","result":"` + ClefVersion + `","id":"v"}`,
				`"code":-32700`,
				`[{"jsonrpc":"2.0","result":["` + addr + `"],"id":1}]`,
				`"code":-32601`,
			} {
				var got json.RawMessage
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				if !strings.Contains(string(got), want) {
					t.Fatalf("answer %d = %s, want %s", i, got, want)
				}
			}
			// Lost framing: answered with a parse error, then closed.
			if _, err := io.WriteString(conn, "garbage"); err != nil {
				t.Fatal(err)
			}
			var got json.RawMessage
			if err := dec.Decode(&got); err != nil || !strings.Contains(string(got), `"code":-32700`) {
				t.Fatalf("after garbage: %s, %v", got, err)
			}
			if err := dec.Decode(&got); err != io.EOF {
				t.Fatalf("the connection stays open after lost framing: %v", err)
			}
		})
	})
}
