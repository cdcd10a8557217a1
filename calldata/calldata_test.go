package calldata

import (
	"bytes"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
)

var (
	alice = addr("0x1111111111111111111111111111111111111111")
	bob   = addr("0x2222222222222222222222222222222222222222")
	token = addr("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48") // USDC
	// MultiSendCallOnly 1.4.1, as deployed on many chains.
	multiSendCallOnly = addr("0x9641d764fc13c8B624c04430C7356C1C7C8102e2")
	zero              ethtx.Address
	eth               = bigOf("1000000000000000000")
)

// at returns the offset in calldata of head word i of the arguments.
func at(i int) int { return 4 + 32*i }

// with returns a copy of b with v written at offset off.
func with(b []byte, off int, v ...byte) []byte {
	c := bytes.Clone(b)
	copy(c[off:], v)
	return c
}

// withWord returns a copy of b with head word i replaced by w.
func withWord(b []byte, i int, w [32]byte) []byte { return with(b, at(i), w[:]...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

var ones = [32]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

const onesHex = "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

// Valid encodings that the malformed inputs below are made from.
var (
	transfer     = abiEncode(selTransfer, addrWord(bob), uintWord(1000))
	transferFrom = abiEncode(selTransferFrom, addrWord(alice), addrWord(bob), uintWord(7))
	approve      = abiEncode(selApprove, addrWord(bob), uintWord(1<<20))
	increase     = abiEncode(selIncreaseAllowance, addrWord(bob), uintWord(5))
	approveAll   = abiEncode(selSetApprovalForAll, addrWord(bob), boolWord(true))
	nft          = abiEncode(selSafeTransferFrom721, addrWord(alice), addrWord(bob), uintWord(42))
	// 4 head words, then length 5 and "hello" padded to 32 bytes.
	nftData = abiEncode(selSafeTransferFrom721Data, addrWord(alice), addrWord(bob), uintWord(42), dyn("hello"))
	// 5 head words, then length 0.
	multiToken = abiEncode(selSafeTransferFrom1155, addrWord(alice), addrWord(bob), uintWord(9), uintWord(100), dyn(nil))
	sig65      = repeat(0xaa, 65)
	// 10 head words (0x140), data (transfer: 0x20 + 0x60), signatures at
	// 0x1c0 (0x20 + 0x60): 576 bytes of arguments.
	safe = safeTx(token, transfer, OperationCall, sig65)

	// Two entries: transfer to token (85 + 68 bytes), 1 ETH to bob (85).
	entries = []packedCall{
		{0, token, new(big.Int), transfer},
		{0, bob, eth, nil},
	}
	multiSend = multiSendOf(pack(entries...))
)

// safeTx returns execTransaction calldata: data run on to with op,
// refunds and gas fields zero.
func safeTx(to ethtx.Address, data []byte, op Operation, sigs []byte) []byte {
	return abiEncode(selExecTransaction, addrWord(to), uintWord(0), dyn(data), uintWord(uint64(op)),
		uintWord(0), uintWord(0), uintWord(0), addrWord(zero), addrWord(zero), dyn(sigs))
}

func multiSendOf(packed []byte) []byte { return abiEncode(selMultiSend, dyn(packed)) }

// transfers returns n MultiSend entries sending 0 ETH to bob.
func transfers(n int) []packedCall {
	calls := make([]packedCall, n)
	for i := range calls {
		calls[i] = packedCall{0, bob, new(big.Int), nil}
	}
	return calls
}

// nest returns n Safe transactions and MultiSends enclosing one another,
// starting with a Safe transaction if safeFirst, around a transfer.
func nest(n int, safeFirst bool) []byte {
	data := transfer
	isSafe := safeFirst == (n%2 == 1)
	for range n {
		if isSafe {
			data = safeTx(multiSendCallOnly, data, OperationDelegateCall, sig65)
		} else {
			data = multiSendOf(pack(packedCall{0, token, new(big.Int), data}))
		}
		isSafe = !isSafe
	}
	return data
}

// malformed lists inputs of every kind Decode must refuse, each with its
// exact error. They are seeds of FuzzDecode too.
var malformed = []struct {
	name string
	data []byte
	err  string
}{
	{"selector 1 byte", []byte{0xa9}, "calldata: truncated selector: 1 of 4 bytes"},
	{"selector 3 bytes", transfer[:3], "calldata: truncated selector: 3 of 4 bytes"},
	{"over size cap", cat([]byte{1, 2, 3, 4}, make([]byte, MaxDataSize-3)), fmt.Sprintf("calldata: %d bytes, more than %d", MaxDataSize+1, MaxDataSize)},

	{"transfer no arguments", transfer[:4], "calldata: transfer: 0 bytes of arguments, want 64"},
	{"transfer trailing byte", cat(transfer, []byte{0}), "calldata: transfer: 65 bytes of arguments, want 64"},
	{"transfer trailing word", cat(transfer, make([]byte, 32)), "calldata: transfer: 96 bytes of arguments, want 64"},
	{"transfer missing byte", transfer[:len(transfer)-1], "calldata: transfer: 63 bytes of arguments, want 64"},
	{"transfer dirty to first byte", with(transfer, at(0), 1), "calldata: transfer: to: high bytes not zero"},
	{"transfer dirty to byte 11", with(transfer, at(0)+11, 0x80), "calldata: transfer: to: high bytes not zero"},
	{"transferFrom dirty from", with(transferFrom, at(0)+5, 1), "calldata: transferFrom: from: high bytes not zero"},
	{"transferFrom dirty to", with(transferFrom, at(1), 0xff), "calldata: transferFrom: to: high bytes not zero"},
	{"transferFrom missing word", transferFrom[:len(transferFrom)-32], "calldata: transferFrom: 64 bytes of arguments, want 96"},
	{"approve dirty spender", with(approve, at(0)+11, 1), "calldata: approve: spender: high bytes not zero"},
	{"approve trailing byte", cat(approve, []byte{0}), "calldata: approve: 65 bytes of arguments, want 64"},
	{"increaseAllowance dirty spender", with(increase, at(0), 1), "calldata: increaseAllowance: spender: high bytes not zero"},
	{"increaseAllowance missing byte", increase[:len(increase)-1], "calldata: increaseAllowance: 63 bytes of arguments, want 64"},

	{"setApprovalForAll bool 2", withWord(approveAll, 1, uintWord(2)), "calldata: setApprovalForAll: approved: bool 0x2, want 0 or 1"},
	{"setApprovalForAll bool 0x100", withWord(approveAll, 1, uintWord(0x100)), "calldata: setApprovalForAll: approved: bool 0x100, want 0 or 1"},
	{"setApprovalForAll bool high bit", with(approveAll, at(1), 0x80), "calldata: setApprovalForAll: approved: bool 0x8000000000000000000000000000000000000000000000000000000000000001, want 0 or 1"},
	{"setApprovalForAll dirty operator", with(approveAll, at(0), 1), "calldata: setApprovalForAll: operator: high bytes not zero"},
	{"setApprovalForAll trailing byte", cat(approveAll, []byte{0}), "calldata: setApprovalForAll: 65 bytes of arguments, want 64"},

	{"erc721 trailing word", cat(nft, make([]byte, 32)), "calldata: safeTransferFrom: 128 bytes of arguments, want 96"},
	{"erc721 dirty from", with(nft, at(0), 1), "calldata: safeTransferFrom: from: high bytes not zero"},
	{"erc721 data head only", nftData[:at(4)], "calldata: safeTransferFrom: 128 bytes of arguments, want at least 160"},
	{"erc721 data offset forward", withWord(nftData, 3, uintWord(0xa0)), "calldata: safeTransferFrom: data: offset 0xa0, want 0x80"},
	{"erc721 data offset into head", withWord(nftData, 3, uintWord(0x60)), "calldata: safeTransferFrom: data: offset 0x60, want 0x80"},
	{"erc721 data offset zero", withWord(nftData, 3, uintWord(0)), "calldata: safeTransferFrom: data: offset 0x0, want 0x80"},
	{"erc721 data offset huge", withWord(nftData, 3, ones), "calldata: safeTransferFrom: data: offset " + onesHex + ", want 0x80"},
	{"erc721 data offset high byte", with(nftData, at(3), 1), "calldata: safeTransferFrom: data: offset 0x100000000000000000000000000000000000000000000000000000000000080, want 0x80"},
	{"erc721 data length beyond", withWord(nftData, 4, uintWord(0x40)), "calldata: safeTransferFrom: data: length 0x40 exceeds the 32 bytes left"},
	{"erc721 data length huge", withWord(nftData, 4, ones), "calldata: safeTransferFrom: data: length " + onesHex + " exceeds the 32 bytes left"},
	{"erc721 data padding missing", nftData[:len(nftData)-27], "calldata: safeTransferFrom: data: length 0x5 needs 32 bytes with padding, 5 left"},
	{"erc721 data padding short", nftData[:len(nftData)-1], "calldata: safeTransferFrom: data: length 0x5 needs 32 bytes with padding, 31 left"},
	{"erc721 data padding not zero", with(nftData, len(nftData)-1, 1), "calldata: safeTransferFrom: data: padding not zero"},
	{"erc721 data trailing byte", cat(nftData, []byte{0}), "calldata: safeTransferFrom: 193 bytes of arguments, want 192"},
	{"erc721 data trailing word", cat(nftData, make([]byte, 32)), "calldata: safeTransferFrom: 224 bytes of arguments, want 192"},
	{"erc721 data length shorter", withWord(nftData, 4, uintWord(0)), "calldata: safeTransferFrom: 192 bytes of arguments, want 160"},

	{"erc1155 data offset into head", withWord(multiToken, 4, uintWord(0x80)), "calldata: safeTransferFrom: data: offset 0x80, want 0xa0"},
	{"erc1155 dirty to", with(multiToken, at(1)+3, 1), "calldata: safeTransferFrom: to: high bytes not zero"},
	{"erc1155 empty data padded", cat(multiToken, make([]byte, 32)), "calldata: safeTransferFrom: 224 bytes of arguments, want 192"},
	{"erc1155 length missing", multiToken[:len(multiToken)-32], "calldata: safeTransferFrom: 160 bytes of arguments, want at least 192"},

	{"safe data offset 0x160", withWord(safe, 2, uintWord(0x160)), "calldata: execTransaction: data: offset 0x160, want 0x140"},
	{"safe signatures offset overlapping data", withWord(safe, 9, uintWord(0x140)), "calldata: execTransaction: signatures: offset 0x140, want 0x1c0"},
	{"safe signatures offset inside data", withWord(safe, 9, uintWord(0x180)), "calldata: execTransaction: signatures: offset 0x180, want 0x1c0"},
	{"safe signatures offset gap", withWord(safe, 9, uintWord(0x1e0)), "calldata: execTransaction: signatures: offset 0x1e0, want 0x1c0"},
	{"safe operation 2", withWord(safe, 3, uintWord(2)), "calldata: execTransaction: operation: 2, want 0 (CALL) or 1 (DELEGATECALL)"},
	{"safe operation 255", withWord(safe, 3, uintWord(255)), "calldata: execTransaction: operation: 255, want 0 (CALL) or 1 (DELEGATECALL)"},
	{"safe operation 256", withWord(safe, 3, uintWord(256)), "calldata: execTransaction: operation: high bytes not zero"},
	{"safe dirty to", with(safe, at(0), 1), "calldata: execTransaction: to: high bytes not zero"},
	{"safe dirty gasToken", with(safe, at(7)+11, 1), "calldata: execTransaction: gasToken: high bytes not zero"},
	{"safe dirty refundReceiver", with(safe, at(8), 1), "calldata: execTransaction: refundReceiver: high bytes not zero"},
	{"safe trailing byte", cat(safe, []byte{0}), "calldata: execTransaction: 577 bytes of arguments, want 576"},
	{"safe missing byte", safe[:len(safe)-1], "calldata: execTransaction: signatures: length 0x41 needs 96 bytes with padding, 95 left"},
	{"safe signatures padding not zero", with(safe, len(safe)-1, 1), "calldata: execTransaction: signatures: padding not zero"},
	{"safe data padding not zero", with(safe, at(10)+32+68, 1), "calldata: execTransaction: data: padding not zero"},
	{"safe signatures length missing", func() []byte { b := safeTx(token, transfer, 0, nil); return b[:len(b)-32] }(),
		"calldata: execTransaction: signatures: length missing at 0x1c0"},
	{"safe head only", safe[:at(10)], "calldata: execTransaction: 320 bytes of arguments, want at least 384"},
	{"safe inner dirty address", safeTx(token, with(transfer, at(0), 1), 0, sig65), "calldata: execTransaction: data: transfer: to: high bytes not zero"},
	{"safe inner truncated selector", safeTx(token, transfer[:3], 0, sig65), "calldata: execTransaction: data: truncated selector: 3 of 4 bytes"},
	{"safe inner trailing byte", safeTx(token, cat(transfer, []byte{0}), 0, sig65), "calldata: execTransaction: data: transfer: 65 bytes of arguments, want 64"},

	{"multiSend head only", multiSend[:at(1)], "calldata: multiSend: 32 bytes of arguments, want at least 64"},
	{"multiSend offset 0x40", withWord(multiSend, 0, uintWord(0x40)), "calldata: multiSend: transactions: offset 0x40, want 0x20"},
	{"multiSend padding not zero", with(multiSend, len(multiSend)-1, 1), "calldata: multiSend: transactions: padding not zero"},
	{"multiSend trailing word", cat(multiSend, make([]byte, 32)), "calldata: multiSend: 352 bytes of arguments, want 320"},
	{"multiSend truncated call", multiSendOf(pack(entries...)[:85+68+75]), "calldata: multiSend: transactions: call 1: truncated: 75 bytes left, want at least 85"},
	{"multiSend truncated data", multiSendOf(pack(entries[0])[:85+58]), "calldata: multiSend: transactions: call 0: data length 0x44 exceeds the 58 bytes left"},
	{"multiSend data length huge", multiSendOf(with(pack(entries[1]), 53, ones[:]...)), "calldata: multiSend: transactions: call 0: data length " + onesHex + " exceeds the 0 bytes left"},
	{"multiSend trailing byte", multiSendOf(cat(pack(entries...), []byte{0})), "calldata: multiSend: transactions: call 2: truncated: 1 bytes left, want at least 85"},
	{"multiSend trailing bytes", multiSendOf(cat(pack(entries...), make([]byte, 84))), "calldata: multiSend: transactions: call 2: truncated: 84 bytes left, want at least 85"},
	{"multiSend operation 2", multiSendOf(with(pack(entries...), 0, 2)), "calldata: multiSend: transactions: call 0: operation: 2, want 0 (CALL) or 1 (DELEGATECALL)"},
	{"multiSend second operation 0xff", multiSendOf(with(pack(entries...), 85+68, 0xff)), "calldata: multiSend: transactions: call 1: operation: 255, want 0 (CALL) or 1 (DELEGATECALL)"},
	{"multiSend inner trailing byte", multiSendOf(pack(entries[0], packedCall{0, bob, eth, cat(transfer, []byte{0})})),
		"calldata: multiSend: transactions: call 1: data: transfer: 65 bytes of arguments, want 64"},
	{"multiSend inner short selector", multiSendOf(pack(packedCall{1, bob, eth, []byte{1, 2}})),
		"calldata: multiSend: transactions: call 0: data: truncated selector: 2 of 4 bytes"},
	{"multiSend too many calls", multiSendOf(pack(transfers(MaxMultiSendCalls + 1)...)),
		"calldata: multiSend: transactions: call 256: more than 256 calls in all"},
	{"multiSend too many calls nested", multiSendOf(pack(
		packedCall{1, multiSendCallOnly, new(big.Int), multiSendOf(pack(transfers(200)...))},
		packedCall{1, multiSendCallOnly, new(big.Int), multiSendOf(pack(transfers(60)...))})),
		"calldata: multiSend: transactions: call 1: data: multiSend: transactions: call 54: more than 256 calls in all"},

	{"safe in multiSend in safe operation 2", safeTx(multiSendCallOnly, multiSendOf(pack(packedCall{0, bob, eth,
		withWord(safeTx(bob, transfer, 0, sig65), 3, uintWord(2))})), OperationDelegateCall, sig65),
		"calldata: execTransaction: data: multiSend: transactions: call 0: data: execTransaction: operation: 2, want 0 (CALL) or 1 (DELEGATECALL)"},
	{"nested 5 from safe", nest(5, true), "calldata: execTransaction: data: multiSend: transactions: call 0: data: " +
		"execTransaction: data: multiSend: transactions: call 0: data: execTransaction: nested more than 4 deep"},
	{"nested 5 from multiSend", nest(5, false), "calldata: multiSend: transactions: call 0: data: execTransaction: data: " +
		"multiSend: transactions: call 0: data: execTransaction: data: multiSend: nested more than 4 deep"},
}

// valid lists inputs Decode accepts, each with its exact decoding. They
// are seeds of FuzzDecode too.
var valid = []struct {
	name string
	data []byte
	want Call
}{
	{"empty", nil, &NoCall{}},
	{"empty not nil", []byte{}, &NoCall{}},
	{"unknown selector only", []byte{0xde, 0xad, 0xbe, 0xef}, &Unknown{ID: [4]byte{0xde, 0xad, 0xbe, 0xef}}},
	{"unknown with arguments", []byte{0x70, 0xa0, 0x82, 0x31, 1, 2, 3}, &Unknown{ID: [4]byte{0x70, 0xa0, 0x82, 0x31}, Args: []byte{1, 2, 3}}},
	{"unknown at size cap", cat([]byte{1, 2, 3, 4}, make([]byte, MaxDataSize-4)), &Unknown{ID: [4]byte{1, 2, 3, 4}, Args: make([]byte, MaxDataSize-4)}},
	{"unknown zero selector", make([]byte, 4), &Unknown{}},
	{"transfer usdc", hexBytes(`a9059cbb
		00000000000000000000000028c6c06298d514db089934071355e5743bf21d60
		00000000000000000000000000000000000000000000000000000002540be400`),
		&ERC20Transfer{To: addr("0x28C6c06298d514Db089934071355E5743bf21d60"), Amount: big.NewInt(10_000_000_000)}},
	{"transfer max amount", abiEncode(selTransfer, addrWord(zero), ones), &ERC20Transfer{To: zero, Amount: new(big.Int).SetBytes(ones[:])}},
	{"transferFrom", transferFrom, &TransferFrom{From: alice, To: bob, Value: big.NewInt(7)}},
	{"approve", approve, &Approve{Spender: bob, Amount: big.NewInt(1 << 20)}},
	{"approve unlimited", abiEncode(selApprove, addrWord(bob), ones), &Approve{Spender: bob, Amount: new(big.Int).SetBytes(ones[:])}},
	{"increaseAllowance", increase, &IncreaseAllowance{Spender: bob, Added: big.NewInt(5)}},
	{"setApprovalForAll true", approveAll, &SetApprovalForAll{Operator: bob, Approved: true}},
	{"setApprovalForAll false", withWord(approveAll, 1, uintWord(0)), &SetApprovalForAll{Operator: bob}},
	{"erc721 safeTransferFrom", nft, &SafeTransferFrom721{From: alice, To: bob, TokenID: big.NewInt(42)}},
	{"erc721 safeTransferFrom data", nftData, &SafeTransferFrom721{From: alice, To: bob, TokenID: big.NewInt(42), Data: []byte("hello"), WithData: true}},
	{"erc721 safeTransferFrom empty data", abiEncode(selSafeTransferFrom721Data, addrWord(alice), addrWord(bob), uintWord(1), dyn(nil)),
		&SafeTransferFrom721{From: alice, To: bob, TokenID: big.NewInt(1), WithData: true}},
	{"erc721 safeTransferFrom 32 bytes data", abiEncode(selSafeTransferFrom721Data, addrWord(alice), addrWord(bob), uintWord(1), dyn(repeat(7, 32))),
		&SafeTransferFrom721{From: alice, To: bob, TokenID: big.NewInt(1), Data: repeat(7, 32), WithData: true}},
	{"erc1155 safeTransferFrom", multiToken, &SafeTransferFrom1155{From: alice, To: bob, ID: big.NewInt(9), Amount: big.NewInt(100)}},
	{"safe transfer", safe, &SafeExecTransaction{To: token, Value: new(big.Int), Data: transfer, SafeTxGas: new(big.Int),
		BaseGas: new(big.Int), GasPrice: new(big.Int), Signatures: sig65, Inner: &ERC20Transfer{To: bob, Amount: big.NewInt(1000)}}},
	{"safe ether transfer", safeTx(bob, nil, OperationCall, nil), &SafeExecTransaction{To: bob, Value: new(big.Int), SafeTxGas: new(big.Int),
		BaseGas: new(big.Int), GasPrice: new(big.Int), Inner: &NoCall{}}},
	{"multiSend", multiSend, &MultiSend{Calls: []MultiSendCall{
		{To: token, Value: new(big.Int), Data: transfer, Call: &ERC20Transfer{To: bob, Amount: big.NewInt(1000)}},
		{To: bob, Value: eth, Call: &NoCall{}},
	}}},
	{"multiSend empty", multiSendOf(nil), &MultiSend{}},
	{"multiSend zero to", multiSendOf(pack(packedCall{0, zero, eth, nil})), &MultiSend{Calls: []MultiSendCall{{To: zero, Value: eth, Call: &NoCall{}}}}},
	// The shape of the Bybit theft (February 2025, as published): the
	// Safe DELEGATECALLs a contract with transfer(address,uint256), whose
	// code in fact overwrites the Safe's implementation. The decoding is
	// faithful; refusing the DELEGATECALL is the policy's job.
	{"bybit", safeTx(addr("0x96221423681A6d52E184D440a8eFCEbB105C7242"),
		abiEncode(selTransfer, addrWord(addr("0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516")), uintWord(0)), OperationDelegateCall, sig65),
		&SafeExecTransaction{To: addr("0x96221423681A6d52E184D440a8eFCEbB105C7242"), Value: new(big.Int),
			Data:      abiEncode(selTransfer, addrWord(addr("0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516")), uintWord(0)),
			Operation: OperationDelegateCall, SafeTxGas: new(big.Int), BaseGas: new(big.Int), GasPrice: new(big.Int), Signatures: sig65,
			Inner: &ERC20Transfer{To: addr("0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516"), Amount: new(big.Int)}}},
	// A Safe DELEGATECALLs MultiSend, whose entries CALL and DELEGATECALL.
	{"safe delegatecall multiSend", safeTx(multiSendCallOnly, multiSendOf(pack(
		packedCall{0, token, new(big.Int), approve},
		packedCall{1, alice, eth, transferFrom})), OperationDelegateCall, sig65),
		&SafeExecTransaction{To: multiSendCallOnly, Value: new(big.Int),
			Data:      multiSendOf(pack(packedCall{0, token, new(big.Int), approve}, packedCall{1, alice, eth, transferFrom})),
			Operation: OperationDelegateCall, SafeTxGas: new(big.Int), BaseGas: new(big.Int), GasPrice: new(big.Int), Signatures: sig65,
			Inner: &MultiSend{Calls: []MultiSendCall{
				{To: token, Value: new(big.Int), Data: approve, Call: &Approve{Spender: bob, Amount: big.NewInt(1 << 20)}},
				{Operation: OperationDelegateCall, To: alice, Value: eth, Data: transferFrom, Call: &TransferFrom{From: alice, To: bob, Value: big.NewInt(7)}},
			}}}},
}

// TestDecodeLimits checks the depth and call caps at their limits.
func TestDecodeLimits(t *testing.T) {
	for _, safeFirst := range []bool{true, false} {
		data := nest(MaxDepth, safeFirst)
		c, err := Decode(data)
		if err != nil {
			t.Fatalf("nested %d deep (safe first %v): %v", MaxDepth, safeFirst, err)
		}
		for range MaxDepth {
			switch cc := c.(type) {
			case *SafeExecTransaction:
				c = cc.Inner
			case *MultiSend:
				c = cc.Calls[0].Call
			default:
				t.Fatalf("got %T", c)
			}
		}
		if _, ok := c.(*ERC20Transfer); !ok {
			t.Errorf("innermost call is %T", c)
		}
	}
	c, err := Decode(multiSendOf(pack(transfers(MaxMultiSendCalls)...)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.(*MultiSend).Calls); n != MaxMultiSendCalls {
		t.Errorf("%d calls", n)
	}
	// Nested MultiSends share the budget: their entries count as calls
	// too, so 2 + 2*127 = 256 fits.
	nested := multiSendOf(pack(
		packedCall{1, multiSendCallOnly, new(big.Int), multiSendOf(pack(transfers(127)...))},
		packedCall{1, multiSendCallOnly, new(big.Int), multiSendOf(pack(transfers(127)...))}))
	if _, err := Decode(nested); err != nil {
		t.Errorf("256 calls in all: %v", err)
	}
}

func TestOperationString(t *testing.T) {
	for op, want := range map[Operation]string{0: "CALL", 1: "DELEGATECALL", 2: "Operation(2)"} {
		if got := op.String(); got != want {
			t.Errorf("Operation(%d).String() = %q, want %q", uint8(op), got, want)
		}
	}
}

// TestErrors checks that every error is lowercase and prefixed.
func TestErrors(t *testing.T) {
	for _, tt := range malformed {
		msg := tt.err
		if !strings.HasPrefix(msg, "calldata: ") || strings.ToLower(msg[:12]) != msg[:12] {
			t.Errorf("%s: error %q", tt.name, msg)
		}
	}
}

// TestImports checks that the package (linked into the enclave) imports
// only the standard library, ethtx and x/crypto/sha3: go-ethereum is for
// the cross-checks in the crosscheck module only.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for imp := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		switch {
		case !strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
		case imp == "github.com/nitrosign/nitrosign/ethtx", imp == "golang.org/x/crypto/sha3":
		default:
			t.Errorf("calldata imports %s", imp)
		}
	}
}

// Example shows how a policy walks a decoded call.
func Example() {
	data := safeTx(multiSendCallOnly, multiSend, OperationDelegateCall, sig65)
	c, err := Decode(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	var walk func(c Call, indent string)
	walk = func(c Call, indent string) {
		switch c := c.(type) {
		case *SafeExecTransaction:
			fmt.Printf("%s%s %s to %s\n", indent, c.Method(), c.Operation, c.To)
			walk(c.Inner, indent+"  ")
		case *MultiSend:
			fmt.Printf("%s%s, %d calls\n", indent, c.Method(), len(c.Calls))
			for _, e := range c.Calls {
				fmt.Printf("%s  %s to %s, %s wei\n", indent, e.Operation, e.To, e.Value)
				walk(e.Call, indent+"    ")
			}
		case *ERC20Transfer:
			fmt.Printf("%s%s: %s to %s\n", indent, c.Method(), c.Amount, c.To)
		case *NoCall:
			fmt.Printf("%sno call\n", indent)
		default:
			fmt.Printf("%s%T\n", indent, c)
		}
	}
	walk(c, "")
	// Output:
	// execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes) DELEGATECALL to 0x9641d764fc13c8B624c04430C7356C1C7C8102e2
	//   multiSend(bytes), 2 calls
	//     CALL to 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48, 0 wei
	//       transfer(address,uint256): 1000 to 0x2222222222222222222222222222222222222222
	//     CALL to 0x2222222222222222222222222222222222222222, 1000000000000000000 wei
	//       no call
}
