// Package calldata decodes the calldata of Ethereum transactions into the
// calls that the signing policy evaluates.
//
// The enclave signs only what it has decoded, and the policy (allowlists,
// limits) is enforced on the [Call] that [Decode] returns. Decoding is
// therefore a security boundary: a call is accepted only in the one
// canonical encoding that Solidity's abi.encode produces, so that the call
// the policy saw and the call the contract will execute are one and the
// same. Re-encoding an accepted call canonically gives back exactly the
// input.
//
// # Functions decoded
//
// ERC-20:
//   - transfer(address,uint256) 0xa9059cbb as [ERC20Transfer]
//   - transferFrom(address,address,uint256) 0x23b872dd as [TransferFrom]
//     (ERC-721 too)
//   - approve(address,uint256) 0x095ea7b3 as [Approve] (ERC-721 too)
//   - increaseAllowance(address,uint256) 0x39509351 as [IncreaseAllowance]
//
// ERC-721:
//   - transferFrom and approve: the same selectors as ERC-20, decoded once
//     into the same types, whose integer the token contract makes an
//     amount or a token id (see below)
//   - safeTransferFrom(address,address,uint256) 0x42842e0e and
//     safeTransferFrom(address,address,uint256,bytes) 0xb88d4fde as
//     [SafeTransferFrom721]
//   - setApprovalForAll(address,bool) 0xa22cb465 as [SetApprovalForAll]
//
// ERC-1155:
//   - safeTransferFrom(address,address,uint256,uint256,bytes) 0xf242432a as
//     [SafeTransferFrom1155]
//   - setApprovalForAll(address,bool), shared with ERC-721
//
// Safe (Gnosis Safe) and its MultiSend libraries:
//   - execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)
//     0x6a761202 as [SafeExecTransaction], its data decoded in turn
//   - multiSend(bytes) 0x8d80ff0a (MultiSend and MultiSendCallOnly) as
//     [MultiSend], its packed transactions unpacked and each one's data
//     decoded in turn
//
// Any other selector gives an [Unknown] call, which is not an error: the
// policy refuses it unless it allows that selector explicitly. Empty data
// gives [NoCall]: a plain transfer of ether, or a call of the destination's
// receive or fallback function if it is a contract. Decode never returns a
// nil Call without an error.
//
// # What a selector does not tell
//
// A selector names a function, not a contract: the same four bytes sent to
// another contract run whatever that contract runs. The decoded call means
// what its name says only for the contract the policy allowlists it for.
// In particular transferFrom(address,address,uint256) and
// approve(address,uint256) have the same selectors in ERC-20 and ERC-721,
// so [TransferFrom.Value] and [Approve.Amount] are an amount of tokens for
// an ERC-20 contract and a token id for an ERC-721 contract: the policy's
// allowlist of token contracts, not this package, decides which. Likewise
// the inner call of a Safe transaction or of a MultiSend entry is decoded
// whatever its destination is, and a multiSend inner call is a batch only if
// its destination is a MultiSend library the policy allowlists (and a Safe
// calls MultiSend with DELEGATECALL: see [Operation]).
//
// Decoding is faithful, not judgmental: a DELEGATECALL is decoded and
// exposed, never refused here, and so is a MultiSend entry whose
// destination is the zero address, which the MultiSend and
// MultiSendCallOnly of Safe 1.5.0 run against the calling Safe itself
// (address(this)), not against address zero.
//
// # Strictness
//
// Decode refuses, with an error naming the function, the argument and the
// reason (for example "calldata: transfer: to: high bytes not zero" or
// "calldata: execTransaction: data: offset 0x160, want 0x140"):
//   - data longer than [MaxDataSize], and data of 1 to 3 bytes;
//   - arguments of any length other than the canonical one: no trailing
//     and no missing bytes, for static and dynamic arguments alike;
//   - an address whose 12 high bytes are not zero;
//   - a bool other than 0 or 1;
//   - a uint8 (the Safe operation) whose 31 high bytes are not zero, and an
//     operation other than 0 (CALL) or 1 (DELEGATECALL), in a Safe
//     transaction and in a MultiSend entry alike;
//   - a bytes argument whose offset is not the canonical one: the size of
//     the head for the first dynamic argument, and for each later one the
//     end of the previous one's tail (so tails neither overlap, nor go
//     backwards, nor leave gaps);
//   - a bytes length that runs past the end of the arguments, or whose
//     data is not followed by the zero padding to a multiple of 32 bytes,
//     and padding that is not zero;
//   - in multiSend, packed transactions that do not split exactly into
//     entries of operation (1 byte), to (20 bytes), value (32 bytes), data
//     length (32 bytes) and data: a truncated entry, a data length past the
//     end, or trailing bytes (MultiSend would ignore or misread them);
//   - Safe transactions and MultiSends nested more than [MaxDepth] deep,
//     and more than [MaxMultiSendCalls] MultiSend entries in all;
//   - an inner call (of a Safe transaction or a MultiSend entry) that is
//     itself malformed: the error then names the path to it, for example
//     "calldata: multiSend: transactions: call 2: data: transfer: to: high
//     bytes not zero", where entries are numbered from 0.
//
// Integers of type uint256 may take any 256-bit value, so they are not
// checked beyond their length.
//
// The byte slices of a decoded Call (Data, Signatures, Args) share one
// private copy of the input, made by Decode: changing the input afterwards
// does not change the Call. Callers must treat them as read-only. They are
// nil when empty.
package calldata

import (
	"bytes"
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/ethtx"
)

// Caps on untrusted input. Each bounds the memory and time one Decode may
// take, well above what wallets send.
const (
	// MaxDataSize is the largest calldata accepted, the transaction data
	// cap of package ethtx.
	MaxDataSize = ethtx.MaxDataSize
	// MaxDepth is the most Safe transactions and MultiSends that may
	// enclose one another: a Safe transaction holding a MultiSend holding a
	// Safe transaction holding a MultiSend is as deep as it gets.
	MaxDepth = 4
	// MaxMultiSendCalls is the most MultiSend entries one Decode accepts,
	// counted over all the MultiSends it holds.
	MaxMultiSendCalls = 256
)

// Call is a decoded call. Its dynamic type is one of the pointer types of
// this package: [*NoCall], [*Unknown], [*ERC20Transfer], [*TransferFrom],
// [*Approve], [*IncreaseAllowance], [*SafeTransferFrom721],
// [*SafeTransferFrom1155], [*SetApprovalForAll], [*SafeExecTransaction] or
// [*MultiSend]. The interface is sealed, so a type switch over these types
// is exhaustive; a switch case of a non-pointer type does not compile.
type Call interface {
	// Method returns the canonical signature of the function called, such
	// as "transfer(address,uint256)", or "" for NoCall and Unknown.
	Method() string
	// Selector returns the first 4 bytes of the data: the function
	// selector, the Keccak-256 hash of Method truncated to 4 bytes for the
	// functions this package decodes. It is zero for NoCall.
	Selector() [4]byte

	isCall()
}

// Decode decodes data, the calldata of a transaction. It returns an error
// for malformed data, and [*Unknown] (without an error) for a function it
// does not decode. See the package documentation for what it decodes and
// what it refuses.
func Decode(data []byte) (Call, error) {
	if len(data) > MaxDataSize {
		return nil, fmt.Errorf("calldata: %d bytes, more than %d", len(data), MaxDataSize)
	}
	d := decoder{calls: MaxMultiSendCalls}
	c, err := d.decode(bytes.Clone(data), 0)
	if err != nil {
		return nil, fmt.Errorf("calldata: %w", err)
	}
	return c, nil
}

// decoder holds what one Decode has left of the call budget.
type decoder struct {
	calls int // MultiSend entries still allowed
}

// decode decodes data, which the caller owns, inside depth enclosing Safe
// transactions and MultiSends.
func (d *decoder) decode(data []byte, depth int) (Call, error) {
	if len(data) == 0 {
		return &NoCall{}, nil
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("truncated selector: %d of 4 bytes", len(data))
	}
	sel, b := [4]byte(data), data[4:]
	switch sel {
	case selTransfer:
		return decodeTransfer(b)
	case selTransferFrom:
		return decodeTransferFrom(b)
	case selApprove:
		return decodeApprove(b)
	case selIncreaseAllowance:
		return decodeIncreaseAllowance(b)
	case selSafeTransferFrom721:
		return decodeSafeTransferFrom721(b, false)
	case selSafeTransferFrom721Data:
		return decodeSafeTransferFrom721(b, true)
	case selSafeTransferFrom1155:
		return decodeSafeTransferFrom1155(b)
	case selSetApprovalForAll:
		return decodeSetApprovalForAll(b)
	case selExecTransaction:
		return d.decodeExecTransaction(b, depth)
	case selMultiSend:
		return d.decodeMultiSend(b, depth)
	}
	return &Unknown{ID: sel, Args: nilIfEmpty(b)}, nil
}

// Operation is how a Safe transaction or a MultiSend entry runs its call.
type Operation uint8

const (
	// OperationCall is a CALL: the code of the destination runs on the
	// destination's storage.
	OperationCall Operation = 0
	// OperationDelegateCall is a DELEGATECALL: the code of the destination
	// runs on the storage of the Safe (or of whoever runs the MultiSend),
	// with all of its authority. Safe uses it to run MultiSend batches; the
	// Bybit theft (2025) used it to replace a Safe's implementation.
	OperationDelegateCall Operation = 1
)

// String returns "CALL", "DELEGATECALL", or the number for other values
// (which Decode never returns).
func (o Operation) String() string {
	switch o {
	case OperationCall:
		return "CALL"
	case OperationDelegateCall:
		return "DELEGATECALL"
	}
	return fmt.Sprintf("Operation(%d)", uint8(o))
}

// operation checks that v is an Operation.
func operation(v uint8) (Operation, error) {
	if v > uint8(OperationDelegateCall) {
		return 0, fmt.Errorf("%d, want 0 (CALL) or 1 (DELEGATECALL)", v)
	}
	return Operation(v), nil
}

// NoCall is empty calldata: a plain transfer of ether, or a call of the
// receive or fallback function if the destination is a contract.
type NoCall struct{}

// Unknown is a call of a function this package does not decode.
type Unknown struct {
	// ID is the selector, the first 4 bytes of the data.
	ID [4]byte
	// Args is the rest of the data, not decoded (nil if empty).
	Args []byte
}

// ERC20Transfer is transfer(address to, uint256 amount) (ERC-20).
type ERC20Transfer struct {
	To     ethtx.Address
	Amount *big.Int
}

// TransferFrom is transferFrom(address from, address to, uint256 value):
// for an ERC-20 contract, Value is an amount of tokens; for an ERC-721
// contract, it is a token id.
type TransferFrom struct {
	From, To ethtx.Address
	Value    *big.Int
}

// Approve is approve(address spender, uint256 amount): for an ERC-20
// contract, Amount is the allowance Spender is given; for an ERC-721
// contract, it is the id of the token Spender may then transfer.
type Approve struct {
	Spender ethtx.Address
	Amount  *big.Int
}

// IncreaseAllowance is increaseAllowance(address spender, uint256
// addedValue) (OpenZeppelin ERC-20): Added is added to the allowance.
type IncreaseAllowance struct {
	Spender ethtx.Address
	Added   *big.Int
}

// SafeTransferFrom721 is the ERC-721 safeTransferFrom(address from, address
// to, uint256 tokenId), or, if WithData, safeTransferFrom(address from,
// address to, uint256 tokenId, bytes data), whose Data is passed to the
// recipient's onERC721Received.
type SafeTransferFrom721 struct {
	From, To ethtx.Address
	TokenID  *big.Int
	Data     []byte
	WithData bool
}

// SafeTransferFrom1155 is the ERC-1155 safeTransferFrom(address from,
// address to, uint256 id, uint256 amount, bytes data).
type SafeTransferFrom1155 struct {
	From, To ethtx.Address
	ID       *big.Int
	Amount   *big.Int
	Data     []byte
}

// SetApprovalForAll is setApprovalForAll(address operator, bool approved)
// (ERC-721 and ERC-1155): Operator may then transfer all of the caller's
// tokens of the contract, or no longer may.
type SetApprovalForAll struct {
	Operator ethtx.Address
	Approved bool
}

// SafeExecTransaction is the Safe's execTransaction(address to, uint256
// value, bytes data, uint8 operation, uint256 safeTxGas, uint256 baseGas,
// uint256 gasPrice, address gasToken, address refundReceiver, bytes
// signatures): the Safe runs Inner, the call that Data encodes, on To with
// Value wei, as Operation says.
type SafeExecTransaction struct {
	To             ethtx.Address
	Value          *big.Int
	Data           []byte
	Operation      Operation
	SafeTxGas      *big.Int
	BaseGas        *big.Int
	GasPrice       *big.Int
	GasToken       ethtx.Address
	RefundReceiver ethtx.Address
	Signatures     []byte

	// Inner is Data decoded, never nil.
	Inner Call
}

// MultiSend is multiSend(bytes transactions), of the Safe's MultiSend and
// MultiSendCallOnly libraries, with transactions unpacked into Calls.
// (MultiSendCallOnly reverts on a DELEGATECALL entry; MultiSend runs it.)
type MultiSend struct {
	Calls []MultiSendCall
}

// MultiSendCall is one entry of a MultiSend: operation (1 byte), to (20
// bytes), value (32 bytes), data length (32 bytes) and data, packed.
type MultiSendCall struct {
	Operation Operation
	// To is the destination. The MultiSend and MultiSendCallOnly of Safe
	// 1.5.0 run an entry whose To is zero against the Safe itself.
	To    ethtx.Address
	Value *big.Int
	Data  []byte
	// Call is Data decoded, never nil.
	Call Call
}

// Canonical signatures of the functions decoded.
const (
	sigTransfer                = "transfer(address,uint256)"
	sigTransferFrom            = "transferFrom(address,address,uint256)"
	sigApprove                 = "approve(address,uint256)"
	sigIncreaseAllowance       = "increaseAllowance(address,uint256)"
	sigSafeTransferFrom721     = "safeTransferFrom(address,address,uint256)"
	sigSafeTransferFrom721Data = "safeTransferFrom(address,address,uint256,bytes)"
	sigSafeTransferFrom1155    = "safeTransferFrom(address,address,uint256,uint256,bytes)"
	sigSetApprovalForAll       = "setApprovalForAll(address,bool)"
	sigExecTransaction         = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
	sigMultiSend               = "multiSend(bytes)"
)

// Selectors, computed from the signatures; the tests check them against
// their well-known values.
var (
	selTransfer                = selector(sigTransfer)
	selTransferFrom            = selector(sigTransferFrom)
	selApprove                 = selector(sigApprove)
	selIncreaseAllowance       = selector(sigIncreaseAllowance)
	selSafeTransferFrom721     = selector(sigSafeTransferFrom721)
	selSafeTransferFrom721Data = selector(sigSafeTransferFrom721Data)
	selSafeTransferFrom1155    = selector(sigSafeTransferFrom1155)
	selSetApprovalForAll       = selector(sigSetApprovalForAll)
	selExecTransaction         = selector(sigExecTransaction)
	selMultiSend               = selector(sigMultiSend)
)

func (*NoCall) Method() string               { return "" }
func (*Unknown) Method() string              { return "" }
func (*ERC20Transfer) Method() string        { return sigTransfer }
func (*TransferFrom) Method() string         { return sigTransferFrom }
func (*Approve) Method() string              { return sigApprove }
func (*IncreaseAllowance) Method() string    { return sigIncreaseAllowance }
func (*SafeTransferFrom1155) Method() string { return sigSafeTransferFrom1155 }
func (*SetApprovalForAll) Method() string    { return sigSetApprovalForAll }
func (*SafeExecTransaction) Method() string  { return sigExecTransaction }
func (*MultiSend) Method() string            { return sigMultiSend }

func (c *SafeTransferFrom721) Method() string {
	if c.WithData {
		return sigSafeTransferFrom721Data
	}
	return sigSafeTransferFrom721
}

func (*NoCall) Selector() [4]byte               { return [4]byte{} }
func (c *Unknown) Selector() [4]byte            { return c.ID }
func (*ERC20Transfer) Selector() [4]byte        { return selTransfer }
func (*TransferFrom) Selector() [4]byte         { return selTransferFrom }
func (*Approve) Selector() [4]byte              { return selApprove }
func (*IncreaseAllowance) Selector() [4]byte    { return selIncreaseAllowance }
func (*SafeTransferFrom1155) Selector() [4]byte { return selSafeTransferFrom1155 }
func (*SetApprovalForAll) Selector() [4]byte    { return selSetApprovalForAll }
func (*SafeExecTransaction) Selector() [4]byte  { return selExecTransaction }
func (*MultiSend) Selector() [4]byte            { return selMultiSend }

func (c *SafeTransferFrom721) Selector() [4]byte {
	if c.WithData {
		return selSafeTransferFrom721Data
	}
	return selSafeTransferFrom721
}

func (*NoCall) isCall()               {}
func (*Unknown) isCall()              {}
func (*ERC20Transfer) isCall()        {}
func (*TransferFrom) isCall()         {}
func (*Approve) isCall()              {}
func (*IncreaseAllowance) isCall()    {}
func (*SafeTransferFrom721) isCall()  {}
func (*SafeTransferFrom1155) isCall() {}
func (*SetApprovalForAll) isCall()    {}
func (*SafeExecTransaction) isCall()  {}
func (*MultiSend) isCall()            {}
