package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// check returns the enclave check that pins the dev stack's image.
func devCheck(t *testing.T, st *devstack.Stack) client.EnclaveCheck {
	t.Helper()
	pcrs, err := devstack.ReadPCRs(st.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(st.NSMRootPath)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := parseRoots(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return client.EnclaveCheck{PCRs: pcrs, Roots: roots}
}

// newAgent starts an agent on the host at hostURL (the stack's, or a
// proxy in front of it) and closes it at the end of the test.
func newAgent(t *testing.T, st *devstack.Stack, hostURL string, edit func(*Config)) *Agent {
	t.Helper()
	a, err := startAgent(t, st, hostURL, edit)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func startAgent(t *testing.T, st *devstack.Stack, hostURL string, edit func(*Config)) (*Agent, error) {
	t.Helper()
	c, err := client.New(hostURL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Client: c, Check: devCheck(t, st)}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, a.Start(context.Background())
}

// call dispatches method with params (each marshalled unless it is a
// json.RawMessage) and returns the encoded result.
func call(t *testing.T, a *Agent, method string, params ...any) (json.RawMessage, *jsonrpc.Error) {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	res, jerr := a.Dispatch(context.Background(), jsonrpc.Request{Method: method, Params: p, ID: json.RawMessage("1")})
	if jerr != nil {
		return nil, jerr
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return b, nil
}

// recoverV27 checks that sig (0x-hex, v 27/28) over digest recovers want.
func recoverV27(t *testing.T, res json.RawMessage, digest [32]byte, want string) {
	t.Helper()
	var s string
	if err := json.Unmarshal(res, &s); err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != 65 {
		t.Fatalf("signature %s", s)
	}
	if b[64] != 27 && b[64] != 28 {
		t.Fatalf("v = %d, want 27 or 28", b[64])
	}
	var sig ethtx.Signature
	copy(sig[:], b)
	sig[64] -= 27
	got, err := ethtx.RecoverAddress(digest, sig)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hex() != want {
		t.Fatalf("recovers %s, want %s", got.Hex(), want)
	}
}

func typedHash(t *testing.T, doc string) [32]byte {
	t.Helper()
	td, err := ethmsg.ParseTypedData([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return td.Hash()
}

// TestAgentDevStack runs the agent against the dev stack with the real
// enclave: one stack for every subtest, as starting one takes seconds.
func TestAgentDevStack(t *testing.T) {
	st := devstacktest.Start(t, t.TempDir())
	addr := st.Keys[0].Address
	lower := strings.ToLower(addr)
	a := newAgent(t, st, st.URL, nil)
	msg := []byte("nitrosign agent: hello")
	msgHex := "0x" + hex.EncodeToString(msg)
	otherDomain := strings.Replace(devstacktest.MailJSON, devstack.ExampleMailContract, "0x1111111111111111111111111111111111111111", 1)

	t.Run("accounts", func(t *testing.T) {
		for _, m := range []string{"eth_accounts", "account_list"} {
			res, jerr := call(t, a, m)
			if jerr != nil || string(res) != `["`+addr+`"]` {
				t.Errorf("%s = %s, %v", m, res, jerr)
			}
		}
		res, jerr := call(t, a, "account_version")
		if jerr != nil || string(res) != `"`+ClefVersion+`"` {
			t.Errorf("account_version = %s, %v", res, jerr)
		}
	})

	t.Run("messages", func(t *testing.T) {
		personal := ethmsg.PersonalHash(msg)
		mail := typedHash(t, devstacktest.MailJSON)
		for _, tc := range []struct {
			name   string
			method string
			params []any
			digest [32]byte
		}{
			{"eth_sign", "eth_sign", []any{addr, msgHex}, personal},
			{"personal_sign, lower-case address", "personal_sign", []any{msgHex, lower}, personal},
			{"account_signData text/plain", "account_signData", []any{"text/plain", addr, msgHex}, personal},
			{"account_signData text/plain with charset", "account_signData", []any{"text/plain; charset=utf-8", addr, msgHex}, personal},
			{"eth_signTypedData_v4 object", "eth_signTypedData_v4", []any{addr, json.RawMessage(devstacktest.MailJSON)}, mail},
			{"eth_signTypedData_v4 string", "eth_signTypedData_v4", []any{addr, devstacktest.MailJSON}, mail},
			{"eth_signTypedData", "eth_signTypedData", []any{addr, json.RawMessage(devstacktest.MailJSON)}, mail},
			{"account_signTypedData", "account_signTypedData", []any{addr, json.RawMessage(devstacktest.MailJSON)}, mail},
			{"account_signData data/typed object", "account_signData", []any{"data/typed", addr, json.RawMessage(devstacktest.MailJSON)}, mail},
			{"account_signData data/typed string", "account_signData", []any{"data/typed", addr, devstacktest.MailJSON}, mail},
			{"account_signData data/typed hex, as Clef reads it", "account_signData", []any{"data/typed", addr, "0x" + hex.EncodeToString([]byte(devstacktest.MailJSON))}, mail},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, jerr := call(t, a, tc.method, tc.params...)
				if jerr != nil {
					t.Fatal(jerr)
				}
				recoverV27(t, res, tc.digest, addr)
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		unknown := "0x1111111111111111111111111111111111111111"
		for _, tc := range []struct {
			name     string
			method   string
			params   []any
			code     int
			rule     string
			contains string
		}{
			{"policy refusal", "eth_signTypedData_v4", []any{addr, json.RawMessage(otherDomain)}, jsonrpc.CodeRefused, "typed_data_domains", ""},
			{"unknown account", "eth_sign", []any{unknown, msgHex}, jsonrpc.CodeInvalidParams, "", "unknown account"},
			{"bad checksum", "eth_sign", []any{strings.ToUpper(addr[:3]) + addr[3:], msgHex}, jsonrpc.CodeInvalidParams, "", "address"},
			{"personal_sign swapped", "personal_sign", []any{addr, msgHex}, jsonrpc.CodeInvalidParams, "", "address"},
			{"empty message", "eth_sign", []any{addr, "0x"}, jsonrpc.CodeInvalidParams, "", "empty"},
			{"text not hex", "personal_sign", []any{"hello", addr}, jsonrpc.CodeInvalidParams, "", "hex"},
			{"too few params", "eth_sign", []any{addr}, jsonrpc.CodeInvalidParams, "", "2 parameters"},
			{"too many params", "eth_sign", []any{addr, msgHex, "x"}, jsonrpc.CodeInvalidParams, "", "2 parameters"},
			{"clique refused", "account_signData", []any{"application/x-clique-header", addr, "0x00"}, jsonrpc.CodeInvalidParams, "", "application/x-clique-header"},
			{"validator refused", "account_signData", []any{"data/validator", addr, "0x00"}, jsonrpc.CodeInvalidParams, "", "data/validator"},
			{"typed data not an object", "eth_signTypedData_v4", []any{addr, 5}, jsonrpc.CodeInvalidParams, "", "typed-data object"},
			{"typed data string not JSON", "eth_signTypedData_v4", []any{addr, "{"}, jsonrpc.CodeInvalidParams, "", "not JSON"},
			{"malformed typed data", "eth_signTypedData_v4", []any{addr, json.RawMessage(`{"types":{}}`)}, jsonrpc.CodeRefused, "", ""},
			{"no such method", "eth_chainId", nil, jsonrpc.CodeMethodNotFound, "", "upstream"},
			{"unknown approval", "nitrosign_approval", []any{"nope"}, jsonrpc.CodeInvalidParams, "", "unknown approval"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, jerr := call(t, a, tc.method, tc.params...)
				if jerr == nil || jerr.Code != tc.code || !strings.Contains(jerr.Message, tc.contains) {
					t.Fatalf("got %v, want code %d containing %q", jerr, tc.code, tc.contains)
				}
				if tc.rule != "" {
					d, ok := jerr.Data.(RefusalData)
					if !ok || d.Rule != tc.rule || d.Code != "policy_denied" {
						t.Fatalf("data %#v, want rule %s", jerr.Data, tc.rule)
					}
				}
			})
		}
		// Object params and notifications of signing methods.
		_, jerr := a.Dispatch(context.Background(), jsonrpc.Request{Method: "eth_sign", Params: json.RawMessage(`{"a":1}`), ID: json.RawMessage("1")})
		if jerr == nil || jerr.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("object params: %v", jerr)
		}
		_, jerr = a.Dispatch(context.Background(), jsonrpc.Request{Method: "eth_sign", Params: json.RawMessage(`["` + addr + `","` + msgHex + `"]`)})
		if jerr == nil || jerr.Code != jsonrpc.CodeInvalidRequest {
			t.Errorf("notification: %v", jerr)
		}
	})

	t.Run("wrong PCR0 refuses to start", func(t *testing.T) {
		_, err := startAgent(t, st, st.URL, func(c *Config) {
			c.Check.PCRs = map[int][]byte{0: bytes.Repeat([]byte{1}, 48)}
		})
		if err == nil || !strings.Contains(err.Error(), "pcr0") {
			t.Fatalf("start = %v, want a PCR mismatch", err)
		}
	})

	t.Run("host lies about keys", func(t *testing.T) {
		extra := `{"id":"extra","address":"0x1111111111111111111111111111111111111111","path":"m/44'/60'/0'/0/9"}`
		lying := tamperingHost(t, st.URL, func(path string, body []byte) []byte {
			if path == "/v1/keys" {
				return bytes.Replace(body, []byte(`"keys":[`), []byte(`"keys":[`+extra+`,`), 1)
			}
			return body
		})
		_, err := startAgent(t, st, lying, nil)
		if err == nil || !strings.Contains(err.Error(), "not the keys the enclave attests") {
			t.Fatalf("start = %v", err)
		}
	})

	t.Run("signature by another key", func(t *testing.T) {
		other, err := secpKey()
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name       string
			changeFrom bool
		}{
			{"same from", false},
			{"from the other key", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				forging := tamperingHost(t, st.URL, func(path string, body []byte) []byte {
					if path != "/v1/sign" {
						return body
					}
					return forgeSignature(t, body, other, tc.changeFrom)
				})
				fa := newAgent(t, st, forging, nil)
				_, jerr := call(t, fa, "personal_sign", msgHex, addr)
				if jerr == nil || jerr.Code != jsonrpc.CodeAttestationFailed {
					t.Fatalf("got %v, want CodeAttestationFailed", jerr)
				}
			})
		}
	})

	t.Run("failed reattestation fails closed", func(t *testing.T) {
		var broken atomic.Bool
		flaky := tamperingHost(t, st.URL, func(path string, body []byte) []byte {
			if broken.Load() && strings.HasPrefix(path, "/v1/attestation") {
				return []byte(`{"document":"AAAA"}`)
			}
			return body
		})
		fa := newAgent(t, st, flaky, nil)
		broken.Store(true)
		if err := fa.attest(context.Background()); err == nil {
			t.Fatal("a bad document verified")
		}
		for _, m := range []string{"personal_sign", "eth_accounts"} {
			params := []any{msgHex, addr}
			if m == "eth_accounts" {
				params = nil
			}
			if _, jerr := call(t, fa, m, params...); jerr == nil || jerr.Code != jsonrpc.CodeAttestationFailed {
				t.Fatalf("%s after a failed attestation: %v", m, jerr)
			}
		}
		broken.Store(false)
		if err := fa.attest(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, jerr := call(t, fa, "personal_sign", msgHex, addr); jerr != nil {
			t.Fatalf("after a good attestation: %v", jerr)
		}
	})

	t.Run("enclave unavailable", func(t *testing.T) {
		down := tamperingHost(t, st.URL, nil)
		fa := newAgent(t, st, down, nil)
		downHost.Store(down, true)
		defer downHost.Delete(down)
		_, jerr := call(t, fa, "personal_sign", msgHex, addr)
		if jerr == nil || jerr.Code != jsonrpc.CodeEnclaveUnavailable {
			t.Fatalf("got %v", jerr)
		}
	})

	testServe(t, st, a)
}

// tamperingHost is a reverse proxy to hostURL that rewrites the bodies of
// 200 and 202 answers with edit (nil: none), and answers 503 while
// downHost[its URL] is set.
func tamperingHost(t *testing.T, hostURL string, edit func(path string, body []byte) []byte) string {
	t.Helper()
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, down := downHost.Load(self); down {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"enclave_unavailable","message":"no enclave"}}`)
			return
		}
		u, _ := url.Parse(hostURL)
		u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, u.String(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted) && edit != nil {
			body = edit(r.URL.Path, body)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	self = srv.URL
	return srv.URL
}

// downHost holds the URLs of the tamperingHosts that answer 503.
var downHost sync.Map

func parseRoots(pemBytes []byte) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	for {
		var blk *pem.Block
		blk, pemBytes = pem.Decode(pemBytes)
		if blk == nil {
			return roots, nil
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		roots = append(roots, c)
	}
}

func secpKey() (*secp256k1.PrivateKey, error) { return secp256k1.GeneratePrivateKey() }

// forgeSignature replaces the signature of a sign answer by key's over the
// same digest, and its from by key's address if changeFrom.
func forgeSignature(t *testing.T, body []byte, key *secp256k1.PrivateKey, changeFrom bool) []byte {
	t.Helper()
	var resp api.SignResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	d, err := hex.DecodeString(strings.TrimPrefix(resp.Digest, "0x"))
	if err != nil || len(d) != 32 {
		t.Fatalf("digest %q", resp.Digest)
	}
	sig := ethtx.Sign(key, [32]byte(d))
	resp.Signature = "0x" + hex.EncodeToString(sig[:])
	if changeFrom {
		resp.From = ethtx.PubkeyToAddress(key.PubKey()).Hex()
	}
	out, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
