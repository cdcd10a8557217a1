package summary_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/testgen"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/summary"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func addr(t testing.TB, s string) ethtx.Address {
	t.Helper()
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(`{
		"version": 1,
		"clients": [],
		"keys": [{"key": "hot-0", "chains": [1], "native_transfers": {
			"destinations": [{"address": "0x2222222222222222222222222222222222222222", "label": "treasury"}],
			"max_per_transaction_wei": "1000000000000000000"}}],
		"assets": [{"chain_id": 1, "address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "symbol": "USDC", "decimals": 6}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func key(t testing.TB) summary.Key {
	return summary.Key{ID: "hot-0", Address: addr(t, "0x9bf111518107c76Da607BB6039489949B2951a10"), Path: "m/44'/60'/0'/0/0"}
}

func digest() [32]byte {
	var d [32]byte
	for i := range d {
		d[i] = byte(i)
	}
	return d
}

// abiCall builds calldata: selector then 32-byte words.
func abiCall(t testing.TB, selector string, words ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(selector + strings.Join(words, ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func word(hexValue string) string { return strings.Repeat("0", 64-len(hexValue)) + hexValue }

func tx(t testing.TB, typ ethtx.Type, to string, wei int64, data []byte) *ethtx.Tx {
	tr := &ethtx.Tx{Type: typ, ChainID: big.NewInt(1), Nonce: 7, GasLimit: 60000, Value: big.NewInt(wei), Data: data}
	if typ == ethtx.TypeLegacy {
		tr.GasPrice = big.NewInt(20e9)
	} else {
		tr.MaxFeePerGas, tr.MaxPriorityFeePerGas = big.NewInt(30e9), big.NewInt(15e8)
	}
	if to != "" {
		a := addr(t, to)
		tr.To = &a
	}
	return tr
}

func TestTransactionGolden(t *testing.T) {
	p := testPolicy(t)
	usdc := "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	attacker := "000000000000000000000000" + "bdd077f651ebe7f7b3ce16fe5f2b025be2969516"
	treasury := "0000000000000000000000002222222222222222222222222222222222222222"
	// A Safe execTransaction that DELEGATECALLs a MultiSend of one USDC
	// transfer: the shape of the 2025 Bybit transaction, made plain.
	inner := abiCall(t, "a9059cbb", treasury, word("3b9aca00"))
	packed := "00" + strings.Repeat("ab", 20) + word("0") + word(hex.EncodeToString(big.NewInt(int64(len(inner))).Bytes())) + hex.EncodeToString(inner)
	for len(packed)%64 != 0 {
		packed += "0"
	}
	packedLen := (1 + 20 + 32 + 32 + len(inner))
	multi := abiCall(t, "8d80ff0a", word("20"), word(hex.EncodeToString(big.NewInt(int64(packedLen)).Bytes())), packed)
	multiHex := hex.EncodeToString(multi)
	multiPadded := multiHex
	for len(multiPadded)%64 != 0 {
		multiPadded += "0"
	}
	safe := abiCall(t, "6a761202",
		attacker, word("0"), word("140"), word("1"), word("0"), word("0"), word("0"), word("0"), word("0"),
		word(hex.EncodeToString(big.NewInt(int64(0x140+32+len(multiPadded)/2)).Bytes())),
		word(hex.EncodeToString(big.NewInt(int64(len(multi))).Bytes())), multiPadded,
		word("41"), strings.Repeat("11", 65)+strings.Repeat("0", 62))

	for _, tc := range []struct {
		name string
		tx   *ethtx.Tx
	}{
		{"native_transfer", tx(t, ethtx.TypeDynamicFee, "0x2222222222222222222222222222222222222222", 5e17, nil)},
		{"legacy_unlabelled", tx(t, ethtx.TypeLegacy, "0x1111111111111111111111111111111111111111", 1, nil)},
		{"contract_creation", tx(t, ethtx.TypeDynamicFee, "", 0, []byte{0x60, 0x80, 0x60, 0x40})},
		{"usdc_transfer", tx(t, ethtx.TypeDynamicFee, usdc, 0, abiCall(t, "a9059cbb", treasury, word("3b9aca00")))},
		{"unlimited_approve", tx(t, ethtx.TypeDynamicFee, usdc, 0, abiCall(t, "095ea7b3", attacker, strings.Repeat("f", 64)))},
		{"unknown_call", tx(t, ethtx.TypeDynamicFee, "0x1111111111111111111111111111111111111111", 0, abiCall(t, "deadbeef", word("1")))},
		{"safe_delegatecall_multisend", tx(t, ethtx.TypeDynamicFee, "0x1db92e2eebc8e0c075a02bea49a2935bcd2dfcf4", 0, safe)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, err := calldata.Decode(tc.tx.Data)
			if err != nil {
				t.Fatal(err)
			}
			got := summary.Transaction(tc.tx, call, key(t), digest(), p).String()
			golden(t, tc.name, got)
		})
	}
}

func TestPersonalMessageGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"personal_text", []byte("Sign in to example.com\nnonce: 42")},
		{"personal_spoof", []byte("ok\ndigest: 0x00\u202egnp.exe")},
		{"personal_binary", []byte{0x19, 0x01, 0xff, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, summary.PersonalMessage(tc.msg, key(t), digest()).String())
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./summary -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("summary differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestNoForgedLines: whatever bytes a request carries, a summary has
// exactly one text line per Line, so a message cannot forge a line.
func TestNoForgedLines(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		msg := make([]byte, r.IntN(64))
		for i := range msg {
			msg[i] = byte(r.IntN(256))
			if r.IntN(4) == 0 {
				msg[i] = "\n\r\u2028"[r.IntN(3)]
			}
		}
		s := summary.PersonalMessage(msg, key(t), digest())
		if n := strings.Count(s.String(), "\n"); n != len(s.Lines) {
			t.Fatalf("message %q gave %d text lines for %d summary lines", msg, n, len(s.Lines))
		}
	}
}

func TestDeterministic(t *testing.T) {
	p := testPolicy(t)
	tr := tx(t, ethtx.TypeDynamicFee, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 0, abiCall(t, "a9059cbb", word("22"), word("1")))
	call, err := calldata.Decode(tr.Data)
	if err != nil {
		t.Fatal(err)
	}
	a := summary.Transaction(tr, call, key(t), digest(), p).String()
	b := summary.Transaction(tr, call, key(t), digest(), p).String()
	if a != b {
		t.Fatal("two summaries of one request differ")
	}
	// Without the policy, the amount is raw and unnamed.
	c := summary.Transaction(tr, call, key(t), digest(), nil).String()
	if !strings.Contains(c, "1 (raw units of 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48)") || !strings.Contains(a, "0.000001 USDC") {
		t.Fatalf("amounts: with policy\n%s\nwithout\n%s", a, c)
	}
}

func TestTypedDataGolden(t *testing.T) {
	td, err := ethmsg.ParseTypedData([]byte(testgen.MailJSON))
	if err != nil {
		t.Fatal(err)
	}
	s := summary.TypedData(td, key(t), testPolicy(t))
	golden(t, "typed_data_mail", s.String())
	// The digest line is the specification's digest.
	if !strings.Contains(s.String(), "digest: 0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2\n") {
		t.Errorf("Mail digest missing from:\n%s", s)
	}
}

func TestBlobAndSetCodeGolden(t *testing.T) {
	p := testPolicy(t)
	blob := tx(t, ethtx.TypeBlob, "0x2222222222222222222222222222222222222222", 0, nil)
	blob.MaxFeePerBlobGas = big.NewInt(3e9)
	blob.BlobVersionedHashes = [][32]byte{{0x01, 0xaa}, {0x01, 0xbb}}
	golden(t, "blob_transaction", summary.Transaction(blob, &calldata.NoCall{}, key(t), digest(), p).String())

	// A delegation signed by the key itself, valid on any chain, and one
	// whose signature does not verify.
	priv := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	auth := ethtx.Authorization{ChainID: new(big.Int), Address: addr(t, "0x4Cd241E8d1510e30b2076397afc7508Ae59C66c9"), Nonce: 8}
	sig := ethtx.Sign(priv, auth.SigningHash())
	copy(auth.R[:], sig[:32])
	copy(auth.S[:], sig[32:64])
	auth.YParity = sig[64]
	k := key(t)
	k.Address = ethtx.PubkeyToAddress(priv.PubKey())
	bad := auth
	bad.S = [32]byte{}
	setCode := tx(t, ethtx.TypeSetCode, "0x2222222222222222222222222222222222222222", 0, nil)
	setCode.AuthorizationList = []ethtx.Authorization{auth, bad}
	s := summary.Transaction(setCode, &calldata.NoCall{}, k, digest(), p).String()
	golden(t, "set_code_transaction", s)
	if !strings.Contains(s, "signed by "+k.Address.Hex()+", this key") || !strings.Contains(s, "any chain") || !strings.Contains(s, "signature invalid") {
		t.Errorf("authorizations not described:\n%s", s)
	}
}

// usdcPermit is an EIP-2612 permit of USDC on mainnet for an unlimited amount.
const usdcPermit = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},"primaryType":"Permit","domain":{"name":"USD Coin","version":"2","chainId":1,"verifyingContract":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},"message":{"owner":"0x9bf111518107c76Da607BB6039489949B2951a10","spender":"0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516","value":"115792089237316195423570985008687907853269984665640564039457584007913129639935","nonce":"0","deadline":"1900000000"}}`

func TestPermitGolden(t *testing.T) {
	td, err := ethmsg.ParseTypedData([]byte(usdcPermit))
	if err != nil {
		t.Fatal(err)
	}
	s := summary.TypedData(td, key(t), testPolicy(t)).String()
	golden(t, "typed_data_usdc_permit", s)
	if !strings.Contains(s, "permit.grants[0]: unlimited of 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48 (USDC token)") {
		t.Errorf("the grant is not shown:\n%s", s)
	}
}

// TestLongValuesGolden: values too long for the record keep a prefix,
// their length and their SHA-256; short ones around them are unchanged.
func TestLongValuesGolden(t *testing.T) {
	long := `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],` +
		`"Note":[{"name":"to","type":"address"},{"name":"text","type":"string"},{"name":"quotes","type":"string"},{"name":"blob","type":"bytes"},{"name":"short","type":"string"}]},` +
		`"primaryType":"Note","domain":{"name":"` + strings.Repeat("n", 1100) + `","chainId":1},` +
		`"message":{"to":"0x2222222222222222222222222222222222222222","text":"` + strings.Repeat("lorem ipsum ", 100) + `",` +
		`"quotes":"` + strings.Repeat(`\"`, 300) + `","blob":"0x` + strings.Repeat("ab", 600) + `","short":"ok"}}`
	td, err := ethmsg.ParseTypedData([]byte(long))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "typed_data_long_values", summary.TypedData(td, key(t), testPolicy(t)).String())
	golden(t, "personal_long_zeros", summary.PersonalMessage(make([]byte, 13200), key(t), digest()).String())
	golden(t, "personal_long_binary", summary.PersonalMessage(bytes.Repeat([]byte{0xff}, 3000), key(t), digest()).String())
}
