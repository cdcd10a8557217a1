package ethtx

import (
	"bytes"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	gethrlp "github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// This file checks ethtx against go-ethereum, an independent
// implementation, on random transactions of every type.

func gethAddress(a *ethtx.Address) *common.Address {
	if a == nil {
		return nil
	}
	g := common.Address(*a)
	return &g
}

func gethAccessList(al ethtx.AccessList) types.AccessList {
	var g types.AccessList
	for _, e := range al {
		keys := make([]common.Hash, len(e.StorageKeys))
		for i, k := range e.StorageKeys {
			keys[i] = common.Hash(k)
		}
		g = append(g, types.AccessTuple{Address: common.Address(e.Address), StorageKeys: keys})
	}
	return g
}

func u256(x *big.Int) *uint256.Int { return uint256.MustFromBig(x) }

func gethAuthorization(a ethtx.Authorization) types.SetCodeAuthorization {
	g := types.SetCodeAuthorization{ChainID: *u256(a.ChainID), Address: common.Address(a.Address), Nonce: a.Nonce, V: a.YParity}
	g.R.SetBytes32(a.R[:])
	g.S.SetBytes32(a.S[:])
	return g
}

// toGeth converts tx to go-ethereum's representation.
func toGeth(tx *ethtx.Tx) *types.Transaction {
	switch tx.Type {
	case ethtx.TypeLegacy:
		return types.NewTx(&types.LegacyTx{
			Nonce: tx.Nonce, GasPrice: tx.GasPrice, Gas: tx.GasLimit, To: gethAddress(tx.To), Value: tx.Value, Data: tx.Data,
		})
	case ethtx.TypeAccessList:
		return types.NewTx(&types.AccessListTx{
			ChainID: tx.ChainID, Nonce: tx.Nonce, GasPrice: tx.GasPrice, Gas: tx.GasLimit, To: gethAddress(tx.To),
			Value: tx.Value, Data: tx.Data, AccessList: gethAccessList(tx.AccessList),
		})
	case ethtx.TypeDynamicFee:
		return types.NewTx(&types.DynamicFeeTx{
			ChainID: tx.ChainID, Nonce: tx.Nonce, GasTipCap: tx.MaxPriorityFeePerGas, GasFeeCap: tx.MaxFeePerGas,
			Gas: tx.GasLimit, To: gethAddress(tx.To), Value: tx.Value, Data: tx.Data, AccessList: gethAccessList(tx.AccessList),
		})
	case ethtx.TypeBlob:
		hashes := make([]common.Hash, len(tx.BlobVersionedHashes))
		for i, h := range tx.BlobVersionedHashes {
			hashes[i] = common.Hash(h)
		}
		return types.NewTx(&types.BlobTx{
			ChainID: u256(tx.ChainID), Nonce: tx.Nonce, GasTipCap: u256(tx.MaxPriorityFeePerGas), GasFeeCap: u256(tx.MaxFeePerGas),
			Gas: tx.GasLimit, To: common.Address(*tx.To), Value: u256(tx.Value), Data: tx.Data,
			AccessList: gethAccessList(tx.AccessList), BlobFeeCap: u256(tx.MaxFeePerBlobGas), BlobHashes: hashes,
		})
	case ethtx.TypeSetCode:
		auths := make([]types.SetCodeAuthorization, len(tx.AuthorizationList))
		for i, a := range tx.AuthorizationList {
			auths[i] = gethAuthorization(a)
		}
		return types.NewTx(&types.SetCodeTx{
			ChainID: u256(tx.ChainID), Nonce: tx.Nonce, GasTipCap: u256(tx.MaxPriorityFeePerGas), GasFeeCap: u256(tx.MaxFeePerGas),
			Gas: tx.GasLimit, To: common.Address(*tx.To), Value: u256(tx.Value), Data: tx.Data,
			AccessList: gethAccessList(tx.AccessList), AuthList: auths,
		})
	}
	panic(fmt.Sprintf("toGeth: type %v", tx.Type))
}

// gethSigner is the signer go-ethereum uses for tx: EIP-155 for a legacy
// transaction, the latest one for the others.
func gethSigner(tx *ethtx.Tx) types.Signer {
	if tx.Type == ethtx.TypeLegacy {
		return types.NewEIP155Signer(tx.ChainID)
	}
	return types.LatestSignerForChainID(tx.ChainID)
}

// The unsigned transactions as go-ethereum's RLP decoder sees them: the
// field lists of its transaction types, without the signature values.
type (
	gethLegacyUnsigned struct {
		Nonce    uint64
		GasPrice *big.Int
		Gas      uint64
		To       *common.Address `rlp:"nil"`
		Value    *big.Int
		Data     []byte
		ChainID  *big.Int
		R, S     uint64
	}
	gethAccessListUnsigned struct {
		ChainID    *big.Int
		Nonce      uint64
		GasPrice   *big.Int
		Gas        uint64
		To         *common.Address `rlp:"nil"`
		Value      *big.Int
		Data       []byte
		AccessList types.AccessList
	}
	gethDynamicFeeUnsigned struct {
		ChainID    *big.Int
		Nonce      uint64
		GasTipCap  *big.Int
		GasFeeCap  *big.Int
		Gas        uint64
		To         *common.Address `rlp:"nil"`
		Value      *big.Int
		Data       []byte
		AccessList types.AccessList
	}
	gethBlobUnsigned struct {
		ChainID    *uint256.Int
		Nonce      uint64
		GasTipCap  *uint256.Int
		GasFeeCap  *uint256.Int
		Gas        uint64
		To         common.Address
		Value      *uint256.Int
		Data       []byte
		AccessList types.AccessList
		BlobFeeCap *uint256.Int
		BlobHashes []common.Hash
	}
	gethSetCodeUnsigned struct {
		ChainID    *uint256.Int
		Nonce      uint64
		GasTipCap  *uint256.Int
		GasFeeCap  *uint256.Int
		Gas        uint64
		To         common.Address
		Value      *uint256.Int
		Data       []byte
		AccessList types.AccessList
		AuthList   []types.SetCodeAuthorization
	}
)

// gethDecodeUnsigned decodes an unsigned transaction of type typ with
// go-ethereum's RLP decoder, and returns it as a go-ethereum transaction
// and its chain id.
func gethDecodeUnsigned(typ ethtx.Type, b []byte) (*types.Transaction, *big.Int, error) {
	if typ != ethtx.TypeLegacy {
		if len(b) == 0 || b[0] != byte(typ) {
			return nil, nil, fmt.Errorf("type byte %x", b[:1])
		}
		b = b[1:]
	}
	switch typ {
	case ethtx.TypeLegacy:
		var u gethLegacyUnsigned
		if err := gethrlp.DecodeBytes(b, &u); err != nil {
			return nil, nil, err
		}
		if u.R != 0 || u.S != 0 {
			return nil, nil, fmt.Errorf("r, s = %d, %d", u.R, u.S)
		}
		return types.NewTx(&types.LegacyTx{Nonce: u.Nonce, GasPrice: u.GasPrice, Gas: u.Gas, To: u.To, Value: u.Value, Data: u.Data}), u.ChainID, nil
	case ethtx.TypeAccessList:
		var u gethAccessListUnsigned
		if err := gethrlp.DecodeBytes(b, &u); err != nil {
			return nil, nil, err
		}
		return types.NewTx(&types.AccessListTx{ChainID: u.ChainID, Nonce: u.Nonce, GasPrice: u.GasPrice, Gas: u.Gas, To: u.To,
			Value: u.Value, Data: u.Data, AccessList: u.AccessList}), u.ChainID, nil
	case ethtx.TypeDynamicFee:
		var u gethDynamicFeeUnsigned
		if err := gethrlp.DecodeBytes(b, &u); err != nil {
			return nil, nil, err
		}
		return types.NewTx(&types.DynamicFeeTx{ChainID: u.ChainID, Nonce: u.Nonce, GasTipCap: u.GasTipCap, GasFeeCap: u.GasFeeCap,
			Gas: u.Gas, To: u.To, Value: u.Value, Data: u.Data, AccessList: u.AccessList}), u.ChainID, nil
	case ethtx.TypeBlob:
		var u gethBlobUnsigned
		if err := gethrlp.DecodeBytes(b, &u); err != nil {
			return nil, nil, err
		}
		return types.NewTx(&types.BlobTx{ChainID: u.ChainID, Nonce: u.Nonce, GasTipCap: u.GasTipCap, GasFeeCap: u.GasFeeCap,
			Gas: u.Gas, To: u.To, Value: u.Value, Data: u.Data, AccessList: u.AccessList, BlobFeeCap: u.BlobFeeCap,
			BlobHashes: u.BlobHashes}), u.ChainID.ToBig(), nil
	case ethtx.TypeSetCode:
		var u gethSetCodeUnsigned
		if err := gethrlp.DecodeBytes(b, &u); err != nil {
			return nil, nil, err
		}
		return types.NewTx(&types.SetCodeTx{ChainID: u.ChainID, Nonce: u.Nonce, GasTipCap: u.GasTipCap, GasFeeCap: u.GasFeeCap,
			Gas: u.Gas, To: u.To, Value: u.Value, Data: u.Data, AccessList: u.AccessList, AuthList: u.AuthList}), u.ChainID.ToBig(), nil
	}
	return nil, nil, fmt.Errorf("type %v", typ)
}

// TestCrossCheckGoEthereum compares decoding, hashing, signing, encoding,
// sender recovery and EIP-7702 authority recovery with go-ethereum on 2,000
// random transactions of every type (10,000 in all).
func TestCrossCheckGoEthereum(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 80
	}
	for _, typ := range testgen.TxTypes {
		t.Run(typ.String(), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(2718, uint64(typ)))
			for i := range n {
				crossCheck(t, r, i, testgen.Tx(r, typ))
			}
		})
	}
}

// TestCrossCheckLegacyChainIDs cross-checks legacy transactions whose
// EIP-155 v = chainId*2 + 35 + yParity is around the 64-bit boundary, where
// EncodeSigned changes from machine integers to big ones.
func TestCrossCheckLegacyChainIDs(t *testing.T) {
	r := rand.New(rand.NewPCG(155, 155))
	pow2 := func(n uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), n) }
	add := func(x *big.Int, d int64) *big.Int { return new(big.Int).Add(x, big.NewInt(d)) }
	ids := []*big.Int{
		big.NewInt(1), big.NewInt(56), big.NewInt(11155111),
		add(pow2(62), -1), pow2(62), add(pow2(63), -18), add(pow2(63), -17), add(pow2(63), -1), pow2(63),
		add(pow2(64), -1), pow2(64), add(pow2(255), -1), add(pow2(256), -1),
	}
	for i, id := range ids {
		for j := range 4 {
			tx := testgen.Tx(r, ethtx.TypeLegacy)
			tx.ChainID = id
			crossCheck(t, r, 4*i+j, tx)
		}
	}
}

func crossCheck(t *testing.T, r *rand.Rand, i int, want *ethtx.Tx) {
	t.Helper()
	unsigned := want.EncodeUnsigned()
	input := bytes.Clone(unsigned)
	tx, err := ethtx.DecodeUnsigned(input)
	if err != nil {
		t.Fatalf("tx %d: DecodeUnsigned(EncodeUnsigned()) error = %v", i, err)
	}
	// The Tx does not alias its input.
	for j := range input {
		input[j] ^= 0x55
	}
	if re := tx.EncodeUnsigned(); !bytes.Equal(re, unsigned) {
		t.Fatalf("tx %d: re-encoding differs:\n got %x\nwant %x", i, re, unsigned)
	}

	gtx := toGeth(want)
	signer := gethSigner(want)
	hash := tx.SigningHash()
	if gh := signer.Hash(gtx); hash != [32]byte(gh) {
		t.Fatalf("tx %d: SigningHash = %x, go-ethereum %x", i, hash, gh)
	}

	// go-ethereum's RLP decoder reads our unsigned encoding as the same
	// transaction.
	back, chainID, err := gethDecodeUnsigned(want.Type, unsigned)
	if err != nil {
		t.Fatalf("tx %d: go-ethereum cannot decode EncodeUnsigned output: %v", i, err)
	}
	if chainID.Cmp(want.ChainID) != 0 || signer.Hash(back) != signer.Hash(gtx) {
		t.Fatalf("tx %d: go-ethereum decodes EncodeUnsigned output to another transaction", i)
	}

	// Every fourth transaction is really signed and its sender recovered
	// by both implementations; the others carry random r and s, often
	// with leading zero bytes, to exercise the encoding of the signature
	// values, which go-ethereum does not check when encoding.
	real := i%4 == 0
	var sig ethtx.Signature
	var priv *secp256k1.PrivateKey
	if real {
		priv = testgen.Key(r)
		sig = ethtx.Sign(priv, hash)
	} else {
		copy(sig[:], testgen.Bytes(r, 64))
		clear(sig[:r.IntN(3)])
		clear(sig[32 : 32+r.IntN(3)])
		sig[64] = byte(r.IntN(2))
	}
	gsigned, err := gtx.WithSignature(signer, sig[:])
	if err != nil {
		t.Fatalf("tx %d: go-ethereum WithSignature: %v", i, err)
	}
	gbin, err := gsigned.MarshalBinary()
	if err != nil {
		t.Fatalf("tx %d: go-ethereum MarshalBinary: %v", i, err)
	}
	signed := tx.EncodeSigned(sig)
	if !bytes.Equal(signed, gbin) {
		t.Fatalf("tx %d: EncodeSigned differs from go-ethereum:\n got %x\nwant %x", i, signed, gbin)
	}
	if th := ethtx.TransactionHash(signed); th != [32]byte(gsigned.Hash()) {
		t.Fatalf("tx %d: TransactionHash = %x, go-ethereum %x", i, th, gsigned.Hash())
	}

	if real {
		from := ethtx.PubkeyToAddress(priv.PubKey())
		gfrom, err := types.Sender(signer, gsigned)
		if err != nil {
			t.Fatalf("tx %d: go-ethereum Sender: %v", i, err)
		}
		if from != ethtx.Address(gfrom) {
			t.Fatalf("tx %d: PubkeyToAddress = %s, go-ethereum Sender = %s", i, from, gfrom)
		}
		if got, err := ethtx.RecoverAddress(hash, sig); err != nil || got != from {
			t.Fatalf("tx %d: RecoverAddress = %s, %v; want %s", i, got, err, from)
		}
	}

	// go-ethereum decodes what we sign, to the same transaction.
	var gback types.Transaction
	if err := gback.UnmarshalBinary(signed); err != nil {
		t.Fatalf("tx %d: go-ethereum cannot decode EncodeSigned output: %v", i, err)
	}
	if gback.Hash() != gsigned.Hash() {
		t.Fatalf("tx %d: go-ethereum decodes our encoding to a different transaction", i)
	}

	for j, a := range tx.AuthorizationList {
		ga := gethAuthorization(a)
		if h := a.SigningHash(); h != [32]byte(ga.SigHash()) {
			t.Fatalf("tx %d: authorization %d: SigningHash = %x, go-ethereum %x", i, j, h, ga.SigHash())
		}
		got, err := a.Authority()
		gwant, gerr := ga.Authority()
		if (err == nil) != (gerr == nil) || got != ethtx.Address(gwant) {
			t.Fatalf("tx %d: authorization %d: Authority = %s, %v; go-ethereum %s, %v", i, j, got, err, gwant, gerr)
		}
	}
}

// TestAuthorityCrossCheck compares Authority with go-ethereum's on
// authorizations signed by real keys, and on their high-S twins, which
// EIP-7702 refuses.
func TestAuthorityCrossCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(7702, 5))
	for i := range 100 {
		priv := testgen.Key(r)
		a := testgen.Authorization(r)
		sig := ethtx.Sign(priv, a.SigningHash())
		a.R, a.S, a.YParity = [32]byte(sig[:32]), [32]byte(sig[32:64]), sig[64]
		want := ethtx.PubkeyToAddress(priv.PubKey())
		got, err := a.Authority()
		if err != nil || got != want {
			t.Fatalf("authorization %d: Authority = %s, %v; want %s", i, got, err, want)
		}
		ga := gethAuthorization(a)
		if gw, err := ga.Authority(); err != nil || ethtx.Address(gw) != want {
			t.Fatalf("authorization %d: go-ethereum Authority = %s, %v; want %s", i, gw, err, want)
		}

		// The high-S twin: (r, n-s) with the parity flipped.
		twin := a
		new(big.Int).Sub(curveN, new(big.Int).SetBytes(a.S[:])).FillBytes(twin.S[:])
		twin.YParity ^= 1
		if _, err := twin.Authority(); err == nil || err.Error() != "ethtx: authorization: signature: s is above n/2 (EIP-2)" {
			t.Fatalf("authorization %d: high-S twin: error = %v", i, err)
		}
		gt := gethAuthorization(twin)
		if _, err := gt.Authority(); err == nil {
			t.Fatalf("authorization %d: go-ethereum accepts the high-S twin", i)
		}
	}
}
