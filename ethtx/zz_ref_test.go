package ethtx

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestZZRefTxs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := sha256.New()
	for range 300 {
		for _, typ := range allTypes {
			tx := randomTx(r, typ)
			h.Write(tx.EncodeUnsigned())
			for _, a := range tx.AuthorizationList {
				h.Write(a.R[:])
				h.Write(a.S[:])
				h.Write([]byte{a.YParity})
			}
		}
	}
	fmt.Printf("REF %x\n", h.Sum(nil))
}
