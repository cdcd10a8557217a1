package enclave

import "crypto/rand"

// cryptoRand is the default seed source outside Nitro (and the fallback the
// dev stack uses until the NSM seam exists).
var cryptoRand = rand.Reader
