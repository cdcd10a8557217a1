package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/internal/devstack"
)

// TestAgentCommand runs `nitrosign agent --dev --chain-id 11155111` in
// process against a dev stack, on a Unix socket, asks it for its accounts
// and chain id over HTTP, and stops it as SIGINT would; with an --upstream
// node on another chain it refuses to start.
func TestAgentCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the dev-stack test in -short mode")
	}
	bin := filepath.Join(t.TempDir(), devstack.EnclaveBinaryName)
	if err := devstack.BuildEnclave(t.Context(), bin); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{DataDir: dataDir, Listen: "127.0.0.1:0", EnclaveBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	sockDir, err := os.MkdirTemp("", "ns-agentcmd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "agent.sock")

	runCtx, stop := context.WithCancel(context.Background())
	agentContext = func() (context.Context, context.CancelFunc) { return runCtx, stop }
	t.Cleanup(func() {
		agentContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	})
	var out syncBuffer
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- mainWithArgs([]string{"agent", "--dev", "--data-dir", dataDir, "--host", st.URL, "--listen", "unix:" + sock, "--chain-id", "11155111"}, &out, &errOut)
	}()

	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer c.CloseIdleConnections()
	var body string
	for i := 0; ; i++ {
		resp, err := c.Post("http://localhost/", "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"eth_accounts","id":1}`))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		select {
		case code := <-done:
			t.Fatalf("nitrosign agent exited %d: %s", code, errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(body, st.Keys[0].Address) {
		t.Fatalf("eth_accounts = %s", body)
	}
	for _, tc := range []struct{ method, want string }{
		{"eth_chainId", `"result":"0xaa36a7"`},
		{"net_version", `"result":"11155111"`},
	} {
		resp, err := c.Post("http://localhost/", "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"`+tc.method+`","id":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), tc.want) {
			t.Fatalf("%s = %s, want %s", tc.method, b, tc.want)
		}
	}
	if !strings.Contains(out.String(), "listening on "+sock) || !strings.Contains(out.String(), "stamping as client key "+st.Client.PublicKey().String()+"\n") {
		t.Fatalf("stdout %q, want the socket and the client key %s", out.String(), st.Client.PublicKey())
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Fatal("the socket remains after exit")
	}

	// A node on chain 1 is not the --chain-id's.
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`)
	}))
	defer node.Close()
	agentContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }
	errOut.Reset()
	code := mainWithArgs([]string{"agent", "--dev", "--data-dir", dataDir, "--host", st.URL, "--listen", "unix:" + sock, "--chain-id", "11155111", "--upstream", node.URL}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "--chain-id 11155111 is not the chain of the --upstream node (1)") {
		t.Fatalf("a --chain-id that is not the node's: exit %d, %q", code, errOut.String())
	}
}

// TestAgentCommandUsage: bad command lines exit 2 and say why; a missing
// dev stack exits 1.
func TestAgentCommandUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no PCR0", []string{"agent"}, 2, "--pcr 0=HEX is required"},
		{"PCR1 only", []string{"agent", "--pcr", "1=" + strings.Repeat("ab", 48)}, 2, "--pcr 0=HEX is required"},
		{"dev with pcr", []string{"agent", "--dev", "--pcr", "0=" + strings.Repeat("ab", 48)}, 2, "--dev"},
		{"dev without a stack", []string{"agent", "--dev", "--data-dir", t.TempDir()}, 1, "pcrs.txt"},
		{"positional", []string{"agent", "x"}, 2, "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := mainWithArgs(tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
