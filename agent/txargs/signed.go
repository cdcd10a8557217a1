package txargs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/nitrosign/nitrosign/ethtx"
)

// SignedJSON returns the signed transaction as go-ethereum's RPC writes it
// (types.Transaction's MarshalJSON: what eth_signTransaction answers in
// its "tx" member, Clef's account_signTransaction too, and what
// types.Transaction's UnmarshalJSON reads): the members in go-ethereum's
// order, type, chainId, nonce, to, gas, gasPrice, maxPriorityFeePerGas,
// maxFeePerGas, maxFeePerBlobGas (blob), value, input, accessList
// (typed), blobVersionedHashes (blob), authorizationList (EIP-7702), v, r,
// s, yParity (typed) and hash; a fee member the type does not have is
// null, as are to for a contract creation. v is the EIP-155 v
// (chainId*2+35+yParity) of a legacy transaction and the y parity of a
// typed one; addresses are lower case, as go-ethereum writes them
// (crosscheck/txargs compares the bytes). A legacy chain id above about
// 2^255 makes a v of more than 256 bits, which go-ethereum writes too but
// does not read back; no chain has such an id.
//
// tx must be one that ethtx encodes (a Tx from [Args.Tx] or
// ethtx.DecodeUnsigned); a signature with a y parity other than 0 or 1 is
// refused.
func SignedJSON(tx *ethtx.Tx, sig ethtx.Signature) ([]byte, error) {
	if tx == nil {
		return nil, errors.New("txargs: SignedJSON: nil transaction")
	}
	if sig[64] > 1 {
		return nil, fmt.Errorf("txargs: SignedJSON: signature y parity %d is not 0 or 1", sig[64])
	}
	if err := encodable(tx); err != nil {
		return nil, fmt.Errorf("txargs: SignedJSON: %w", err)
	}
	if _, err := ethtx.DecodeUnsigned(tx.EncodeUnsigned()); err != nil {
		return nil, fmt.Errorf("txargs: SignedJSON: %w", err)
	}
	hash := ethtx.TransactionHash(tx.EncodeSigned(sig))
	typed := tx.Type != ethtx.TypeLegacy

	b := make([]byte, 0, 512+2*len(tx.Data))
	b = append(b, `{"type":`...)
	b = appendQuantity(b, new(big.Int).SetUint64(uint64(tx.Type)))
	b = append(b, `,"chainId":`...)
	b = appendQuantity(b, tx.ChainID)
	b = append(b, `,"nonce":`...)
	b = appendQuantity(b, new(big.Int).SetUint64(tx.Nonce))
	b = append(b, `,"to":`...)
	if tx.To == nil {
		b = append(b, "null"...)
	} else {
		b = appendHex(b, tx.To[:])
	}
	b = append(b, `,"gas":`...)
	b = appendQuantity(b, new(big.Int).SetUint64(tx.GasLimit))
	b = append(b, `,"gasPrice":`...)
	b = appendQuantity(b, tx.GasPrice)
	b = append(b, `,"maxPriorityFeePerGas":`...)
	b = appendQuantity(b, tx.MaxPriorityFeePerGas)
	b = append(b, `,"maxFeePerGas":`...)
	b = appendQuantity(b, tx.MaxFeePerGas)
	if tx.Type == ethtx.TypeBlob {
		b = append(b, `,"maxFeePerBlobGas":`...)
		b = appendQuantity(b, tx.MaxFeePerBlobGas)
	}
	b = append(b, `,"value":`...)
	b = appendQuantity(b, tx.Value)
	b = append(b, `,"input":`...)
	b = appendHex(b, tx.Data)
	if typed {
		b = append(b, `,"accessList":[`...)
		for i, e := range tx.AccessList {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"address":`...)
			b = appendHex(b, e.Address[:])
			b = append(b, `,"storageKeys":[`...)
			for j, k := range e.StorageKeys {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendHex(b, k[:])
			}
			b = append(b, "]}"...)
		}
		b = append(b, ']')
	}
	if tx.Type == ethtx.TypeBlob {
		b = append(b, `,"blobVersionedHashes":[`...)
		for i, h := range tx.BlobVersionedHashes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendHex(b, h[:])
		}
		b = append(b, ']')
	}
	if tx.Type == ethtx.TypeSetCode {
		b = append(b, `,"authorizationList":[`...)
		for i, a := range tx.AuthorizationList {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"chainId":`...)
			b = appendQuantity(b, a.ChainID)
			b = append(b, `,"address":`...)
			b = appendHex(b, a.Address[:])
			b = append(b, `,"nonce":`...)
			b = appendQuantity(b, new(big.Int).SetUint64(a.Nonce))
			b = append(b, `,"yParity":`...)
			b = appendQuantity(b, big.NewInt(int64(a.YParity)))
			b = append(b, `,"r":`...)
			b = appendQuantity(b, new(big.Int).SetBytes(a.R[:]))
			b = append(b, `,"s":`...)
			b = appendQuantity(b, new(big.Int).SetBytes(a.S[:]))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	v := big.NewInt(int64(sig[64]))
	if !typed {
		// EIP-155: v = chainId*2 + 35 + yParity.
		v.Add(v, new(big.Int).Add(new(big.Int).Lsh(tx.ChainID, 1), big.NewInt(35)))
	}
	b = append(b, `,"v":`...)
	b = appendQuantity(b, v)
	b = append(b, `,"r":`...)
	b = appendQuantity(b, new(big.Int).SetBytes(sig[:32]))
	b = append(b, `,"s":`...)
	b = appendQuantity(b, new(big.Int).SetBytes(sig[32:64]))
	if typed {
		b = append(b, `,"yParity":`...)
		b = appendQuantity(b, big.NewInt(int64(sig[64])))
	}
	b = append(b, `,"hash":`...)
	b = appendHex(b, hash[:])
	b = append(b, '}')
	return b, nil
}

// appendQuantity appends x as a hexutil quantity string, or null when nil.
func appendQuantity(b []byte, x *big.Int) []byte {
	if x == nil {
		return append(b, "null"...)
	}
	b = append(b, `"0x`...)
	b = x.Append(b, 16)
	return append(b, '"')
}

// appendHex appends bytes as a 0x-prefixed lower-case hex string.
func appendHex(b, data []byte) []byte {
	b = append(b, `"0x`...)
	b = hex.AppendEncode(b, data)
	return append(b, '"')
}

// encodable refuses what ethtx's encoders panic on: a type it does not
// encode, a negative or missing chain id, negative integers, and a blob or
// EIP-7702 transaction without a destination.
func encodable(tx *ethtx.Tx) error {
	if !supported(uint64(tx.Type)) {
		return fmt.Errorf("transaction type 0x%02x is not supported", uint8(tx.Type))
	}
	if tx.ChainID == nil || tx.ChainID.Sign() <= 0 {
		return errors.New("chain id must be at least 1")
	}
	if tx.To == nil && (tx.Type == ethtx.TypeBlob || tx.Type == ethtx.TypeSetCode) {
		return fmt.Errorf("an %s transaction needs a destination", tx.Type)
	}
	ints := []*big.Int{tx.GasPrice, tx.MaxPriorityFeePerGas, tx.MaxFeePerGas, tx.Value, tx.MaxFeePerBlobGas}
	for _, a := range tx.AuthorizationList {
		ints = append(ints, a.ChainID)
	}
	for _, x := range ints {
		if x != nil && x.Sign() < 0 {
			return errors.New("negative integer field")
		}
	}
	return nil
}
