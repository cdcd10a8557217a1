package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/sim/nsmsim"
	"github.com/nitrosign/nitrosign/stamp"
)

// fakeHost is a nitrosign-host stand-in for tests that need no enclave
// process: a simulated NSM attests one key, which signs every request
// (unless answer says otherwise), without policy or stamps checked.
type fakeHost struct {
	URL   string
	Key   *secp256k1.PrivateKey
	Addr  ethtx.Address
	Check client.EnclaveCheck

	mu sync.Mutex
	// keys are the keys listed and attested, signed with by address.
	keys   []api.Key
	byAddr map[ethtx.Address]*secp256k1.PrivateKey
	// answer, when set, replaces the answer to POST /v1/sign: a status
	// and a body.
	answer func(good []byte) (int, []byte)
}

func newFakeHost(t testing.TB) *fakeHost {
	t.Helper()
	m := nsmsim.MeasureBytes([]byte("fake enclave"), []byte("fake genesis"))
	sim, err := nsmsim.New(nsmsim.Options{Image: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	// A fixed key, so that the seed corpus can name its address.
	seed := sha256.Sum256([]byte("nitrosign agent fake host key"))
	key := secp256k1.PrivKeyFromBytes(seed[:])
	h := &fakeHost{Key: key, Addr: ethtx.PubkeyToAddress(key.PubKey())}
	roots, err := parseRoots(sim.RootPEM())
	if err != nil {
		t.Fatal(err)
	}
	h.Check = client.EnclaveCheck{PCRs: map[int][]byte{0: m.PCR0[:]}, Roots: roots}
	h.byAddr = map[ethtx.Address]*secp256k1.PrivateKey{}
	h.addKey(key)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		keys := h.keys
		h.mu.Unlock()
		json.NewEncoder(w).Encode(api.KeysResponse{Keys: keys})
	})
	mux.HandleFunc("GET /v1/attestation", func(w http.ResponseWriter, r *http.Request) {
		nonce, _ := hex.DecodeString(r.URL.Query().Get("nonce"))
		h.mu.Lock()
		uks := make([]userdata.Key, len(h.keys))
		for i, k := range h.keys {
			a, _ := ethtx.ParseAddress(k.Address)
			uks[i] = userdata.Key{ID: k.ID, Address: a, Path: k.Path}
		}
		h.mu.Unlock()
		ud, err := userdata.Marshal(userdata.UserData{Format: userdata.Format, Version: "fake", KeyCount: uint64(len(uks)), KeysHash: userdata.KeysHash(uks)})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		doc, err := sim.Attest(r.Context(), nsm.AttestRequest{Nonce: nonce, UserData: ud})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		json.NewEncoder(w).Encode(api.AttestationResponse{Document: base64.StdEncoding.EncodeToString(doc)})
	})
	mux.HandleFunc("POST /v1/sign", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		good := h.sign(body)
		status := http.StatusOK
		h.mu.Lock()
		answer := h.answer
		h.mu.Unlock()
		if answer != nil {
			status, good = answer(good)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(good)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// addKey adds a signing key, listed and attested from now on.
func (h *fakeHost) addKey(k *secp256k1.PrivateKey) ethtx.Address {
	a := ethtx.PubkeyToAddress(k.PubKey())
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys = append(h.keys, api.Key{ID: fmt.Sprintf("k%d", len(h.keys)), Address: a.Hex(), Path: fmt.Sprintf("m/44'/60'/0'/0/%d", len(h.keys))})
	h.byAddr[a] = k
	return a
}

// sign answers a sign request body as the enclave would if the policy
// allowed everything.
func (h *fakeHost) sign(body []byte) []byte {
	req, err := api.DecodeSignRequest(body)
	if err != nil {
		return []byte(`{"error":{"code":"bad_request","message":"bad"}}`)
	}
	r, err := request.DecodePayload(req)
	if err != nil {
		return []byte(`{"error":{"code":"bad_request","message":"bad"}}`)
	}
	from, err := ethtx.ParseAddress(req.Key)
	h.mu.Lock()
	key := h.byAddr[from]
	h.mu.Unlock()
	if err != nil || key == nil {
		return []byte(`{"error":{"code":"unknown_key","message":"no such key"}}`)
	}
	sig := ethtx.Sign(key, r.Digest)
	resp := api.SignResponse{From: from.Hex(), Signature: "0x" + hex.EncodeToString(sig[:]), Digest: "0x" + hex.EncodeToString(r.Digest[:]), AuditSeq: 1}
	if r.Transaction != nil {
		signed := r.Transaction.Tx.EncodeSigned(sig)
		th := ethtx.TransactionHash(signed)
		resp.SignedTransaction, resp.TransactionHash = "0x"+hex.EncodeToString(signed), "0x"+hex.EncodeToString(th[:])
	}
	out, _ := json.Marshal(resp)
	return out
}

func (h *fakeHost) setAnswer(f func(good []byte) (int, []byte)) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

// newFakeAgent starts an agent on h.
func newFakeAgent(t testing.TB, h *fakeHost, edit func(*Config)) *Agent {
	t.Helper()
	signer, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(h.URL, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Client: c, Check: h.Check}
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
