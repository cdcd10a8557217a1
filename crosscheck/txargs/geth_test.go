package txargs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/holiman/uint256"
	"github.com/nitrosign/nitrosign/agent/txargs"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

const perType = 120 // random transactions of each type, per test (large data makes each costly under -race)

func u256(x *big.Int) *uint256.Int { return uint256.MustFromBig(x) }

func gethAccessList(al ethtx.AccessList) types.AccessList {
	g := types.AccessList{}
	for _, e := range al {
		keys := make([]common.Hash, len(e.StorageKeys))
		for i, k := range e.StorageKeys {
			keys[i] = common.Hash(k)
		}
		g = append(g, types.AccessTuple{Address: common.Address(e.Address), StorageKeys: keys})
	}
	return g
}

func gethHashes(hs [][32]byte) []common.Hash {
	g := make([]common.Hash, len(hs))
	for i, h := range hs {
		g[i] = common.Hash(h)
	}
	return g
}

func gethAuths(as []ethtx.Authorization) []types.SetCodeAuthorization {
	g := make([]types.SetCodeAuthorization, len(as))
	for i, a := range as {
		g[i] = types.SetCodeAuthorization{ChainID: *u256(a.ChainID), Address: common.Address(a.Address), Nonce: a.Nonce, V: a.YParity}
		g[i].R.SetBytes32(a.R[:])
		g[i].S.SetBytes32(a.S[:])
	}
	return g
}

// toGeth is tx as go-ethereum's transaction.
func toGeth(tx *ethtx.Tx) *types.Transaction {
	var to *common.Address
	if tx.To != nil {
		a := common.Address(*tx.To)
		to = &a
	}
	switch tx.Type {
	case ethtx.TypeLegacy:
		return types.NewTx(&types.LegacyTx{Nonce: tx.Nonce, GasPrice: tx.GasPrice, Gas: tx.GasLimit, To: to, Value: tx.Value, Data: tx.Data})
	case ethtx.TypeAccessList:
		return types.NewTx(&types.AccessListTx{ChainID: tx.ChainID, Nonce: tx.Nonce, GasPrice: tx.GasPrice, Gas: tx.GasLimit, To: to, Value: tx.Value, Data: tx.Data, AccessList: gethAccessList(tx.AccessList)})
	case ethtx.TypeDynamicFee:
		return types.NewTx(&types.DynamicFeeTx{ChainID: tx.ChainID, Nonce: tx.Nonce, GasTipCap: tx.MaxPriorityFeePerGas, GasFeeCap: tx.MaxFeePerGas, Gas: tx.GasLimit, To: to, Value: tx.Value, Data: tx.Data, AccessList: gethAccessList(tx.AccessList)})
	case ethtx.TypeBlob:
		return types.NewTx(&types.BlobTx{ChainID: u256(tx.ChainID), Nonce: tx.Nonce, GasTipCap: u256(tx.MaxPriorityFeePerGas), GasFeeCap: u256(tx.MaxFeePerGas), Gas: tx.GasLimit, To: *to, Value: u256(tx.Value), Data: tx.Data, AccessList: gethAccessList(tx.AccessList), BlobFeeCap: u256(tx.MaxFeePerBlobGas), BlobHashes: gethHashes(tx.BlobVersionedHashes)})
	case ethtx.TypeSetCode:
		return types.NewTx(&types.SetCodeTx{ChainID: u256(tx.ChainID), Nonce: tx.Nonce, GasTipCap: u256(tx.MaxPriorityFeePerGas), GasFeeCap: u256(tx.MaxFeePerGas), Gas: tx.GasLimit, To: *to, Value: u256(tx.Value), Data: tx.Data, AccessList: gethAccessList(tx.AccessList), AuthList: gethAuths(tx.AuthorizationList)})
	}
	panic(fmt.Sprintf("toGeth: type %v", tx.Type))
}

// sendTxArgs is what go-ethereum's accounts/external backend sends to
// account_signTransaction for gtx on chain chainID (its SignTx, without
// blobs). The chain id is passed, as SignTx's is: an unsigned legacy
// transaction has none (go-ethereum's ChainId derives one from v).
func sendTxArgs(gtx *types.Transaction, chainID *big.Int, from common.Address) *apitypes.SendTxArgs {
	data := hexutil.Bytes(gtx.Data())
	args := &apitypes.SendTxArgs{
		From:    common.NewMixedcaseAddress(from),
		Input:   &data,
		Nonce:   hexutil.Uint64(gtx.Nonce()),
		Value:   hexutil.Big(*gtx.Value()),
		Gas:     hexutil.Uint64(gtx.Gas()),
		ChainID: (*hexutil.Big)(chainID),
	}
	if gtx.To() != nil {
		to := common.NewMixedcaseAddress(*gtx.To())
		args.To = &to
	}
	switch gtx.Type() {
	case types.LegacyTxType, types.AccessListTxType:
		args.GasPrice = (*hexutil.Big)(gtx.GasPrice())
	default:
		args.MaxFeePerGas = (*hexutil.Big)(gtx.GasFeeCap())
		args.MaxPriorityFeePerGas = (*hexutil.Big)(gtx.GasTipCap())
	}
	if gtx.Type() != types.LegacyTxType {
		al := gtx.AccessList()
		args.AccessList = &al
	}
	if gtx.Type() == types.BlobTxType {
		args.BlobHashes = gtx.BlobHashes()
		args.BlobFeeCap = (*hexutil.Big)(gtx.BlobGasFeeCap())
	}
	return args
}

// transactionArgs has the members of go-ethereum's node API
// TransactionArgs (internal/ethapi, not importable), with its types, so
// that go-ethereum's encoders write them; type is sent as ethers does.
type transactionArgs struct {
	From                 *common.Address              `json:"from"`
	To                   *common.Address              `json:"to"`
	Gas                  *hexutil.Uint64              `json:"gas"`
	GasPrice             *hexutil.Big                 `json:"gasPrice"`
	MaxFeePerGas         *hexutil.Big                 `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *hexutil.Big                 `json:"maxPriorityFeePerGas"`
	Value                *hexutil.Big                 `json:"value"`
	Nonce                *hexutil.Uint64              `json:"nonce"`
	Data                 *hexutil.Bytes               `json:"data"`
	Input                *hexutil.Bytes               `json:"input"`
	AccessList           *types.AccessList            `json:"accessList,omitempty"`
	ChainID              *hexutil.Big                 `json:"chainId,omitempty"`
	BlobFeeCap           *hexutil.Big                 `json:"maxFeePerBlobGas"`
	BlobHashes           []common.Hash                `json:"blobVersionedHashes,omitempty"`
	AuthorizationList    []types.SetCodeAuthorization `json:"authorizationList"`
	Type                 *hexutil.Uint64              `json:"type,omitempty"`
}

func nodeArgs(gtx *types.Transaction, chainID *big.Int, from common.Address, withType bool) *transactionArgs {
	data := hexutil.Bytes(gtx.Data())
	gas, nonce := hexutil.Uint64(gtx.Gas()), hexutil.Uint64(gtx.Nonce())
	a := &transactionArgs{From: &from, To: gtx.To(), Gas: &gas, Nonce: &nonce, Value: (*hexutil.Big)(gtx.Value()), ChainID: (*hexutil.Big)(chainID), Input: &data, Data: &data}
	switch gtx.Type() {
	case types.LegacyTxType, types.AccessListTxType:
		a.GasPrice = (*hexutil.Big)(gtx.GasPrice())
	default:
		a.MaxFeePerGas = (*hexutil.Big)(gtx.GasFeeCap())
		a.MaxPriorityFeePerGas = (*hexutil.Big)(gtx.GasTipCap())
	}
	if gtx.Type() != types.LegacyTxType {
		al := gtx.AccessList()
		a.AccessList = &al
	}
	if gtx.Type() == types.BlobTxType {
		a.BlobHashes = gtx.BlobHashes()
		a.BlobFeeCap = (*hexutil.Big)(gtx.BlobGasFeeCap())
	}
	if gtx.Type() == types.SetCodeTxType {
		a.AuthorizationList = gtx.SetCodeAuthorizations()
	}
	if withType {
		t := hexutil.Uint64(gtx.Type())
		a.Type = &t
	}
	return a
}

// randomTx is a random transaction that go-ethereum's wallet would build:
// a creation carries code, maxFeePerGas is at least the tip.
func randomTx(r *rand.Rand, typ ethtx.Type) *ethtx.Tx {
	tx := testgen.Tx(r, typ)
	if tx.To == nil && len(tx.Data) == 0 {
		tx.Data = []byte{0x60}
	}
	if tx.MaxFeePerGas != nil && tx.MaxFeePerGas.Cmp(tx.MaxPriorityFeePerGas) < 0 {
		tx.MaxFeePerGas, tx.MaxPriorityFeePerGas = tx.MaxPriorityFeePerGas, tx.MaxFeePerGas
	}
	return tx
}

// TestParseGethArgs: the objects go-ethereum marshals, parsed by txargs,
// give go-ethereum's transaction: the same signing hash as go-ethereum's
// signer computes, and for SendTxArgs the transaction its ToTransaction
// builds from the same object.
func TestParseGethArgs(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 3))
	from := common.Address(testgen.Bytes(r, 20))
	for _, typ := range testgen.TxTypes {
		for i := range perType {
			want := randomTx(r, typ)
			gtx := toGeth(want)
			signer := types.LatestSignerForChainID(want.ChainID)
			if typ == ethtx.TypeLegacy {
				signer = types.NewEIP155Signer(want.ChainID)
			}
			gethHash := signer.Hash(gtx)

			var objects = map[string]any{
				"TransactionArgs":      nodeArgs(gtx, want.ChainID, from, false),
				"TransactionArgs+type": nodeArgs(gtx, want.ChainID, from, true),
			}
			if typ != ethtx.TypeSetCode { // SendTxArgs has no authorization list
				objects["SendTxArgs"] = sendTxArgs(gtx, want.ChainID, from)
			}
			for name, obj := range objects {
				raw, err := json.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				a, err := txargs.Parse(raw)
				if err != nil {
					t.Fatalf("%s #%d %s: Parse: %v\n%s", typ, i, name, err, raw)
				}
				if a.From == nil || common.Address(*a.From) != from {
					t.Fatalf("%s #%d %s: from %v", typ, i, name, a.From)
				}
				got, err := a.Tx()
				if err != nil {
					t.Fatalf("%s #%d %s: Tx: %v\n%s", typ, i, name, err, raw)
				}
				if got.Type != typ {
					t.Fatalf("%s #%d %s: type %v", typ, i, name, got.Type)
				}
				if h := got.SigningHash(); h != [32]byte(gethHash) {
					t.Fatalf("%s #%d %s: signing hash %x, go-ethereum %x\n%s", typ, i, name, h, gethHash, raw)
				}
				if name != "SendTxArgs" {
					continue
				}
				var back apitypes.SendTxArgs
				if err := json.Unmarshal(raw, &back); err != nil {
					t.Fatal(err)
				}
				built, err := back.ToTransaction()
				if err != nil {
					t.Fatal(err)
				}
				if h := signer.Hash(built); h != gethHash {
					t.Fatalf("%s #%d: go-ethereum's SendTxArgs.ToTransaction disagrees with itself", typ, i)
				}
			}
		}
	}
}

// TestSignedJSON: SignedJSON is byte for byte what go-ethereum's
// MarshalJSON writes for the transaction decoded from ethtx's signed
// encoding, and go-ethereum's UnmarshalJSON reads it back to that
// transaction.
func TestSignedJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 4))
	for _, typ := range testgen.TxTypes {
		for i := range perType {
			tx := randomTx(r, typ)
			sig := ethtx.Sign(testgen.Key(r), tx.SigningHash())
			signed := tx.EncodeSigned(sig)
			got, err := txargs.SignedJSON(tx, sig)
			if err != nil {
				t.Fatalf("%s #%d: %v", typ, i, err)
			}
			var fromBytes types.Transaction
			if err := fromBytes.UnmarshalBinary(signed); err != nil {
				t.Fatalf("%s #%d: go-ethereum refuses the signed encoding: %v", typ, i, err)
			}
			want, err := fromBytes.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s #%d: SignedJSON\n%s\ngo-ethereum\n%s", typ, i, got, want)
			}
			var fromJSON types.Transaction
			if v, _, _ := fromBytes.RawSignatureValues(); v.BitLen() > 256 {
				// A legacy chain id near 2^256 makes an EIP-155 v that
				// hexutil.Big cannot read: go-ethereum writes it, as
				// SignedJSON does, and refuses to read it back.
				if err := fromJSON.UnmarshalJSON(got); err == nil {
					t.Fatalf("%s #%d: go-ethereum read a v of %d bits", typ, i, v.BitLen())
				}
				continue
			}
			if err := fromJSON.UnmarshalJSON(got); err != nil {
				t.Fatalf("%s #%d: go-ethereum's UnmarshalJSON: %v\n%s", typ, i, err, got)
			}
			if fromJSON.Hash() != common.Hash(ethtx.TransactionHash(signed)) {
				t.Fatalf("%s #%d: hash %x, want %x", typ, i, fromJSON.Hash(), ethtx.TransactionHash(signed))
			}
			if enc, _ := fromJSON.MarshalBinary(); !bytes.Equal(enc, signed) {
				t.Fatalf("%s #%d: go-ethereum re-encodes the JSON differently", typ, i)
			}
		}
	}
}
