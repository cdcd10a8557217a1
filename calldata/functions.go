package calldata

import (
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/ethtx"
)

func decodeTransfer(b []byte) (Call, error) {
	a, err := newArgs("transfer", b, 2, 0)
	if err != nil {
		return nil, err
	}
	to, err := a.address(0, "to")
	if err != nil {
		return nil, err
	}
	return &ERC20Transfer{To: to, Amount: a.uint256(1)}, nil
}

func decodeTransferFrom(b []byte) (Call, error) {
	a, err := newArgs("transferFrom", b, 3, 0)
	if err != nil {
		return nil, err
	}
	from, to, err := fromTo(&a)
	if err != nil {
		return nil, err
	}
	return &TransferFrom{From: from, To: to, Value: a.uint256(2)}, nil
}

func decodeApprove(b []byte) (Call, error) {
	a, err := newArgs("approve", b, 2, 0)
	if err != nil {
		return nil, err
	}
	spender, err := a.address(0, "spender")
	if err != nil {
		return nil, err
	}
	return &Approve{Spender: spender, Amount: a.uint256(1)}, nil
}

func decodeIncreaseAllowance(b []byte) (Call, error) {
	a, err := newArgs("increaseAllowance", b, 2, 0)
	if err != nil {
		return nil, err
	}
	spender, err := a.address(0, "spender")
	if err != nil {
		return nil, err
	}
	return &IncreaseAllowance{Spender: spender, Added: a.uint256(1)}, nil
}

func decodeSafeTransferFrom721(b []byte, withData bool) (Call, error) {
	var a args
	var err error
	if withData {
		a, err = newArgs("safeTransferFrom", b, 4, 1)
	} else {
		a, err = newArgs("safeTransferFrom", b, 3, 0)
	}
	if err != nil {
		return nil, err
	}
	from, to, err := fromTo(&a)
	if err != nil {
		return nil, err
	}
	c := &SafeTransferFrom721{From: from, To: to, TokenID: a.uint256(2), WithData: withData}
	if withData {
		if c.Data, err = a.bytes(3, "data"); err != nil {
			return nil, err
		}
		if err := a.end(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func decodeSafeTransferFrom1155(b []byte) (Call, error) {
	a, err := newArgs("safeTransferFrom", b, 5, 1)
	if err != nil {
		return nil, err
	}
	from, to, err := fromTo(&a)
	if err != nil {
		return nil, err
	}
	c := &SafeTransferFrom1155{From: from, To: to, ID: a.uint256(2), Amount: a.uint256(3)}
	if c.Data, err = a.bytes(4, "data"); err != nil {
		return nil, err
	}
	if err := a.end(); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeSetApprovalForAll(b []byte) (Call, error) {
	a, err := newArgs("setApprovalForAll", b, 2, 0)
	if err != nil {
		return nil, err
	}
	operator, err := a.address(0, "operator")
	if err != nil {
		return nil, err
	}
	approved, err := a.bool(1, "approved")
	if err != nil {
		return nil, err
	}
	return &SetApprovalForAll{Operator: operator, Approved: approved}, nil
}

// fromTo reads the from and to addresses that head the transfer functions.
func fromTo(a *args) (from, to ethtx.Address, err error) {
	if from, err = a.address(0, "from"); err != nil {
		return
	}
	to, err = a.address(1, "to")
	return
}

func (d *decoder) decodeExecTransaction(b []byte, depth int) (Call, error) {
	const fn = "execTransaction"
	if depth >= MaxDepth {
		return nil, fmt.Errorf("%s: nested more than %d deep", fn, MaxDepth)
	}
	a, err := newArgs(fn, b, 10, 2)
	if err != nil {
		return nil, err
	}
	c := &SafeExecTransaction{Value: a.uint256(1)}
	if c.To, err = a.address(0, "to"); err != nil {
		return nil, err
	}
	if c.Data, err = a.bytes(2, "data"); err != nil {
		return nil, err
	}
	op, err := a.uint8(3, "operation")
	if err != nil {
		return nil, err
	}
	if c.Operation, err = operation(op); err != nil {
		return nil, a.errorf("operation", "%v", err)
	}
	c.SafeTxGas, c.BaseGas, c.GasPrice = a.uint256(4), a.uint256(5), a.uint256(6)
	if c.GasToken, err = a.address(7, "gasToken"); err != nil {
		return nil, err
	}
	if c.RefundReceiver, err = a.address(8, "refundReceiver"); err != nil {
		return nil, err
	}
	if c.Signatures, err = a.bytes(9, "signatures"); err != nil {
		return nil, err
	}
	if err := a.end(); err != nil {
		return nil, err
	}
	if c.Inner, err = d.decode(c.Data, depth+1); err != nil {
		return nil, fmt.Errorf("%s: data: %w", fn, err)
	}
	return c, nil
}

// multiSendHeader is the size of a MultiSend entry without its data:
// operation, to, value and data length.
const multiSendHeader = 1 + 20 + 32 + 32

func (d *decoder) decodeMultiSend(b []byte, depth int) (Call, error) {
	const fn = "multiSend"
	if depth >= MaxDepth {
		return nil, fmt.Errorf("%s: nested more than %d deep", fn, MaxDepth)
	}
	a, err := newArgs(fn, b, 1, 1)
	if err != nil {
		return nil, err
	}
	txs, err := a.bytes(0, "transactions")
	if err != nil {
		return nil, err
	}
	if err := a.end(); err != nil {
		return nil, err
	}
	// Each entry takes at least multiSendHeader bytes.
	c := &MultiSend{Calls: make([]MultiSendCall, 0, min(len(txs)/multiSendHeader, d.calls))}
	for i := 0; len(txs) > 0; i++ {
		if d.calls == 0 {
			return nil, entryError(i, "more than %d calls in all", MaxMultiSendCalls)
		}
		d.calls--
		if len(txs) < multiSendHeader {
			return nil, entryError(i, "truncated: %d bytes left, want at least %d", len(txs), multiSendHeader)
		}
		op, err := operation(txs[0])
		if err != nil {
			return nil, entryError(i, "operation: %v", err)
		}
		e := MultiSendCall{
			Operation: op,
			To:        ethtx.Address(txs[1:21]),
			Value:     new(big.Int).SetBytes(txs[21:53]),
		}
		lw, rest := txs[53:85], txs[85:]
		n, ok := smallInt(lw)
		if !ok || n > len(rest) {
			return nil, entryError(i, "data length %s exceeds the %d bytes left", hexWord(lw), len(rest))
		}
		e.Data, txs = nilIfEmpty(rest[:n]), rest[n:]
		if e.Call, err = d.decode(e.Data, depth+1); err != nil {
			return nil, fmt.Errorf("multiSend: transactions: call %d: data: %w", i, err)
		}
		c.Calls = append(c.Calls, e)
	}
	return c, nil
}

// entryError returns an error about MultiSend entry i.
func entryError(i int, format string, v ...any) error {
	return fmt.Errorf("multiSend: transactions: call %d: %s", i, fmt.Sprintf(format, v...))
}
