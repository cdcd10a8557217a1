package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// benchRecords is the size of the log BenchmarkVerify1M verifies.
const benchRecords = 1_000_000

// benchBatch is how many records share a signature in the benchmark log:
// the enclave under load signs the last record of each batch it hands the
// host, so a signature covers several records.
const benchBatch = 8

var bench1M struct {
	once sync.Once
	path string
	pub  []byte
	head Head
	err  error
}

// benchLog writes a log of benchRecords records to a temporary file once
// per process, signing every benchBatch-th record.
func benchLog(b *testing.B) (string, []byte, Head) {
	bench1M.once.Do(func() {
		dir, err := os.MkdirTemp("", "audit-bench-")
		if err != nil {
			bench1M.err = err
			return
		}
		s := testSigner(b, 7)
		c := NewChain(s, Head{})
		var buf bytes.Buffer
		for i := 1; i <= benchRecords; i++ {
			r := sampleDecision(i)
			if i == 1 {
				r = Record{TimeMS: 1_700_000_000_000, Kind: KindGenesis, Decision: "created"}
			}
			_, line, err := c.Append(r, i%benchBatch == 0 || i == benchRecords)
			if err != nil {
				bench1M.err = err
				return
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
		bench1M.path = filepath.Join(dir, "audit.log")
		bench1M.err = os.WriteFile(bench1M.path, buf.Bytes(), 0o600)
		bench1M.pub = s.PublicKey()
		bench1M.head = c.Head()
	})
	if bench1M.err != nil {
		b.Fatal(bench1M.err)
	}
	return bench1M.path, bench1M.pub, bench1M.head
}

// BenchmarkVerify1M verifies a log of one million records from a file:
// the hash chain of every record, signatures at checkpoints (the default),
// or every signature in parallel (all_signatures).
func BenchmarkVerify1M(b *testing.B) {
	path, pub, head := benchLog(b)
	for _, bc := range []struct {
		name string
		opts VerifyOptions
	}{
		{"checkpoints", VerifyOptions{ExpectHead: &head}},
		{"all_signatures", VerifyOptions{ExpectHead: &head, AllSignatures: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(fi.Size())
			for b.Loop() {
				rep, err := VerifyFiles([]string{path}, pub, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Records != benchRecords {
					b.Fatalf("%d records", rep.Records)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRecords, "ns/record")
		})
	}
}

// BenchmarkChainAppend is the enclave's cost of a record, signed (one per
// batch) or not.
func BenchmarkChainAppend(b *testing.B) {
	for _, sign := range []bool{false, true} {
		name := "unsigned"
		if sign {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) {
			c := NewChain(testSigner(b, 1), Head{})
			r := sampleDecision(2)
			for b.Loop() {
				if _, _, err := c.Append(r, sign); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
