package abitest

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/abitest"
)

// TestPackGoEthereum packs random arguments of signatures of every
// argument type abitest supports with both, and compares the bytes.
func TestPackGoEthereum(t *testing.T) {
	sigs := []string{
		"deposit()",
		"withdraw(uint256)",
		"transfer(address,uint256)",
		"transferFrom(address,address,uint256)",
		"setApprovalForAll(address,bool)",
		"safeTransferFrom(address,address,uint256,bytes)",
		"safeTransferFrom(address,address,uint256,uint256,bytes)",
		"execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
		"multiSend(bytes)",
		"f(uint8,uint16,uint32,uint64,uint128,uint160,bytes,bytes,bool)",
	}
	r := rand.New(rand.NewPCG(4, 4))
	for _, sig := range sigs {
		var types []string
		if inner := sig[strings.IndexByte(sig, '(')+1 : len(sig)-1]; inner != "" {
			types = strings.Split(inner, ",")
		}
		var gargs abi.Arguments
		for _, typ := range types {
			at, err := abi.NewType(typ, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			gargs = append(gargs, abi.Argument{Type: at})
		}
		for i := range 200 {
			ours, theirs := make([]any, len(types)), make([]any, len(types))
			for j, typ := range types {
				ours[j], theirs[j] = randomArg(r, typ)
			}
			got, err := abitest.Pack(sig, ours...)
			if err != nil {
				t.Fatalf("%s #%d: %v", sig, i, err)
			}
			packed, err := gargs.Pack(theirs...)
			if err != nil {
				t.Fatalf("%s #%d: go-ethereum: %v", sig, i, err)
			}
			want := append(crypto.Keccak256([]byte(sig))[:4], packed...)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s #%d: Pack = %x\ngo-ethereum %x", sig, i, got, want)
			}
		}
	}
}

// randomArg returns a random value of typ as abitest takes it and as
// go-ethereum takes it.
func randomArg(r *rand.Rand, typ string) (ours, theirs any) {
	switch typ {
	case "address":
		var a ethtx.Address
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		return a, common.Address(a)
	case "bool":
		b := r.IntN(2) == 1
		return b, b
	case "bytes":
		b := make([]byte, []int{0, 1, 31, 32, 33, 64, 100}[r.IntN(7)])
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b, b
	case "uint8":
		v := uint8(r.Uint32())
		return v, v
	case "uint16":
		v := uint16(r.Uint32())
		return v, v
	case "uint32":
		v := r.Uint32()
		return v, v
	case "uint64":
		v := r.Uint64()
		return v, v
	}
	bits := map[string]uint{"uint128": 128, "uint160": 160, "uint256": 256}[typ]
	if bits == 0 {
		panic(typ)
	}
	b := make([]byte, bits/8)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	x := new(big.Int).SetBytes(b)
	x.Rsh(x, uint(r.IntN(int(bits)+1)))
	return x, new(big.Int).Set(x)
}
