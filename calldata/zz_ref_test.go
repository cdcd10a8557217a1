package calldata

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestZZRefCalls(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := sha256.New()
	for range 300 {
		for _, f := range functions {
			c := f.gen(r, 0)
			h.Write(encode(c))
			h.Write([]byte(describe(c)))
		}
	}
	fmt.Printf("REF %x\n", h.Sum(nil))
}
