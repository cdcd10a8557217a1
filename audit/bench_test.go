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

// benchBatch is how many lines of the benchmark log share a signature:
// batches of benchBatch-1 decisions, each closed by its signed tree head,
// as the enclave under load closes a batch at each poll of the host.
const benchBatch = 8

var bench1M struct {
	once sync.Once
	path string
	pub  []byte
	head Head
	err  error
}

// benchLog writes a log of benchRecords records to a temporary file once
// per process: the genesis record, then batches of decisions, each closed
// by its tree head.
func benchLog(b *testing.B) (string, []byte, Head) {
	bench1M.once.Do(func() {
		dir, err := os.MkdirTemp("", "audit-bench-")
		if err != nil {
			bench1M.err = err
			return
		}
		s := testSigner(b, 7)
		var buf bytes.Buffer
		n := 0
		c := NewChainWith(s, Head{}, ChainOptions{OnAppend: func(_ Record, line []byte) {
			buf.Write(line)
			buf.WriteByte('\n')
			n++
		}})
		if _, _, err := c.Append(Record{TimeMS: 1_700_000_000_000, Kind: KindGenesis, Decision: "created"}, false); err != nil {
			bench1M.err = err
			return
		}
		for n < benchRecords {
			var err error
			if n%benchBatch == benchBatch-1 || n == benchRecords-1 {
				_, _, _, err = c.CloseBatch(Record{TimeMS: 1_700_000_000_000})
			} else {
				_, _, err = c.Append(sampleDecision(n+1), false)
			}
			if err != nil {
				bench1M.err = err
				return
			}
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
// the hash chain of every record, the root of every tree head (a second
// SHA-256 of every line, its leaf hash), signatures at checkpoints (the
// default), or every signature in parallel (all_signatures).
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
				if rep.Records != benchRecords || rep.RootsChecked != benchRecords/benchBatch {
					b.Fatalf("%d records, %d roots checked", rep.Records, rep.RootsChecked)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRecords, "ns/record")
		})
	}
}

// BenchmarkChainAppend is the enclave's cost of a record: a decision
// (unsigned: its line, its hash and its leaf hash), a signed record (an
// event), and a decision with its share of a tree head in batches of 8.
func BenchmarkChainAppend(b *testing.B) {
	for _, bc := range []struct {
		name  string
		sign  bool
		batch int
	}{{"unsigned", false, 0}, {"signed", true, 0}, {"batches_of_8", false, 8}} {
		b.Run(bc.name, func(b *testing.B) {
			c := NewChain(testSigner(b, 1), Head{})
			r := sampleDecision(2)
			i := 0
			for b.Loop() {
				if _, _, err := c.Append(r, bc.sign); err != nil {
					b.Fatal(err)
				}
				if i++; bc.batch > 0 && i%bc.batch == 0 {
					if _, _, _, err := c.CloseBatch(r); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkEncodeRecord is the encoding of a decision record's line, as the
// chain makes it for every request: its exact length (recordLen, which
// scans every string for escapes) and the line itself, in one buffer of
// that size.
func BenchmarkEncodeRecord(b *testing.B) {
	r := sampleDecision(2)
	r.Seq = 2
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeRecord(&r, true)
	}
}
