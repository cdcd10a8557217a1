package calldata

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/abitest"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// go-ethereum's accounts/abi is the reference encoder of these tests.

var gethArgCache sync.Map // signature -> abi.Arguments

// gethArguments returns the abi.Arguments of the canonical signature sig.
func gethArguments(sig string) abi.Arguments {
	if v, ok := gethArgCache.Load(sig); ok {
		return v.(abi.Arguments)
	}
	open := strings.IndexByte(sig, '(')
	var args abi.Arguments
	for t := range strings.SplitSeq(sig[open+1:len(sig)-1], ",") {
		typ, err := abi.NewType(t, "", nil)
		if err != nil {
			panic(err)
		}
		args = append(args, abi.Argument{Type: typ})
	}
	gethArgCache.Store(sig, args)
	return args
}

// gethPack returns the calldata of sig with args, as go-ethereum packs it.
func gethPack(t testing.TB, sig string, args ...any) []byte {
	t.Helper()
	b, err := gethArguments(sig).Pack(args...)
	if err != nil {
		t.Fatalf("abi.Pack %s: %v", sig, err)
	}
	return append(crypto.Keccak256([]byte(sig))[:4], b...)
}

// gethArgs returns the arguments of c in go-ethereum's types, as its
// abi.Pack takes them and its Unpack returns them, or nil for NoCall and
// Unknown.
func gethArgs(c calldata.Call) []any {
	a := func(x ethtx.Address) common.Address { return common.Address(x) }
	b := func(x []byte) []byte { return append([]byte{}, x...) }
	var v []any
	switch c := c.(type) {
	case *calldata.NoCall, *calldata.Unknown:
		return nil
	case *calldata.ERC20Transfer:
		v = []any{a(c.To), c.Amount}
	case *calldata.TransferFrom:
		v = []any{a(c.From), a(c.To), c.Value}
	case *calldata.Approve:
		v = []any{a(c.Spender), c.Amount}
	case *calldata.IncreaseAllowance:
		v = []any{a(c.Spender), c.Added}
	case *calldata.SafeTransferFrom721:
		v = []any{a(c.From), a(c.To), c.TokenID}
		if c.WithData {
			v = append(v, b(c.Data))
		}
	case *calldata.SafeTransferFrom1155:
		v = []any{a(c.From), a(c.To), c.ID, c.Amount, b(c.Data)}
	case *calldata.SetApprovalForAll:
		v = []any{a(c.Operator), c.Approved}
	case *calldata.SafeExecTransaction:
		v = []any{a(c.To), c.Value, b(c.Data), uint8(c.Operation), c.SafeTxGas, c.BaseGas, c.GasPrice,
			a(c.GasToken), a(c.RefundReceiver), b(c.Signatures)}
	case *calldata.MultiSend:
		v = []any{b(abitest.PackMultiSend(multiSendEntries(c)...))}
	}
	return v
}

// gethValues returns the arguments of c as go-ethereum unpacks them,
// printed, or "" for NoCall and Unknown.
func gethValues(c calldata.Call) string {
	if _, ok := c.(*calldata.NoCall); ok {
		return ""
	}
	if _, ok := c.(*calldata.Unknown); ok {
		return ""
	}
	return fmt.Sprintf("%v", gethArgs(c))
}

// multiSendEntries returns the entries of m, with their data as decoded.
func multiSendEntries(m *calldata.MultiSend) []abitest.MultiSendEntry {
	var entries []abitest.MultiSendEntry
	for _, e := range m.Calls {
		entries = append(entries, abitest.MultiSendEntry{Op: uint8(e.Operation), To: e.To, Value: e.Value, Data: e.Data})
	}
	return entries
}

// gethUnpacked returns the arguments of data as go-ethereum unpacks them,
// printed.
func gethUnpacked(t testing.TB, sig string, data []byte) string {
	t.Helper()
	v, err := gethArguments(sig).Unpack(data[4:])
	if err != nil {
		t.Fatalf("abi.Unpack %s of accepted %x: %v", sig, data, err)
	}
	return fmt.Sprintf("%v", v)
}

// TestGethPack decodes thousands of random calls of every function
// (testgen.Functions, the calls of calldata's TestRandomCalls) as
// go-ethereum packs their arguments, and checks that the decoded call holds
// exactly those arguments, that the tests' own encoder (testgen.EncodeCall,
// the oracle of calldata's FuzzDecode and its round-trip tests) gives the
// same bytes, and that go-ethereum unpacks the same values.
func TestGethPack(t *testing.T) {
	testgen.RandomCalls(t, func(t *testing.T, i int, f testgen.Function, want calldata.Call) {
		data := gethPack(t, f.Sig, gethArgs(want)...)
		got := testgen.CheckDecode(t, i, data, want, f.Sig)
		if enc := testgen.EncodeCall(want); !bytes.Equal(enc, data) {
			t.Fatalf("#%d: test encoder gives\n%x\nwant (abi.Pack)\n%x", i, enc, data)
		}
		if g, w := gethValues(got), gethUnpacked(t, f.Sig, data); g != w {
			t.Fatalf("#%d: values %s, go-ethereum unpacks %s", i, g, w)
		}
	})
}

// TestSelectors checks the selectors of every call against go-ethereum's
// Keccak-256 of its method.
func TestSelectors(t *testing.T) {
	for _, c := range []calldata.Call{&calldata.ERC20Transfer{}, &calldata.TransferFrom{}, &calldata.Approve{},
		&calldata.IncreaseAllowance{}, &calldata.SafeTransferFrom721{}, &calldata.SafeTransferFrom721{WithData: true},
		&calldata.SafeTransferFrom1155{}, &calldata.SetApprovalForAll{}, &calldata.SafeExecTransaction{}, &calldata.MultiSend{}} {
		sel := c.Selector()
		if ref := crypto.Keccak256([]byte(c.Method()))[:4]; !bytes.Equal(sel[:], ref) {
			t.Errorf("%s: selector %x, go-ethereum computes %x", c.Method(), sel, ref)
		}
	}
}

// FuzzDecode checks that whatever Decode accepts is what go-ethereum
// unpacks: the tests' encoder gives back the input, each call's selector is
// go-ethereum's Keccak-256 of its method, and go-ethereum unpacks the same
// arguments, for the call and every inner call. (calldata's own FuzzDecode
// checks the rest; its seeds are in testdata/fuzz/FuzzDecode here too.)
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := calldata.Decode(b)
		if err != nil {
			return
		}
		testgen.CheckCanonical(t, c, b)
		checkTree(t, c, b)
	})
}

// checkTree checks c, decoded from data, and its inner calls against
// go-ethereum.
func checkTree(t *testing.T, c calldata.Call, data []byte) {
	t.Helper()
	switch c := c.(type) {
	case *calldata.NoCall, *calldata.Unknown:
		return
	case *calldata.SafeExecTransaction:
		checkTree(t, c.Inner, c.Data)
	case *calldata.MultiSend:
		for _, e := range c.Calls {
			checkTree(t, e.Call, e.Data)
		}
	}
	sel := c.Selector()
	if !bytes.Equal(sel[:], data[:4]) || !bytes.Equal(crypto.Keccak256([]byte(c.Method()))[:4], sel[:]) {
		t.Fatalf("%T: selector %x, method %q, from %x", c, sel, c.Method(), data)
	}
	if g, w := gethValues(c), gethUnpacked(t, c.Method(), data); g != w {
		t.Fatalf("%s: decoded %s, go-ethereum unpacks %s", c.Method(), g, w)
	}
}
