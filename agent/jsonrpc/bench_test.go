package jsonrpc

import (
	"strings"
	"testing"
)

const benchSign = `{"jsonrpc":"2.0","method":"eth_signTransaction","params":[{"from":"0xfe3b557e8fb62b89f4916b721be55ceb828dbd73","to":"0xd46e8dd67c5d32be8058bb8eb970870f07244567","gas":"0x76c0","gasPrice":"0x9184e72a000","value":"0x9184e72a","nonce":"0x0","data":"0x"}],"id":1}`

// BenchmarkDecode is one eth_signTransaction request, the agent's common case.
func BenchmarkDecode(b *testing.B) {
	body := []byte(benchSign)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if reqs, _, err := Decode(body); err != nil || reqs[0].Invalid != nil {
			b.Fatal(err, reqs[0].Invalid)
		}
	}
}

// BenchmarkDecodeBatch is a batch of MaxBatch such requests.
func BenchmarkDecodeBatch(b *testing.B) {
	body := []byte("[" + strings.TrimSuffix(strings.Repeat(benchSign+",", MaxBatch), ",") + "]")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
