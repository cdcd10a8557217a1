package chaos

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/audit/logfile"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/stamp"
)

// Report is what Check found.
type Report struct {
	// Answered is the number of 200 answers checked; Persisted of them
	// have their exact record in the log; Lost lists the others.
	Answered, Persisted int
	Lost                []Lost
	// Records is the number of records in the persisted log (lines read,
	// whether or not they verify).
	Records int
	// LogErr is why the log does not verify (audit.VerifyFiles, every
	// signature checked), nil when it does; ForkedSeqs lists the sequence
	// numbers the log holds more than one authentic record for.
	LogErr     error
	ForkedSeqs []uint64
	// Files are the log files read, in order.
	Files []string
}

// Lost is a 200 answer whose record is not in the persisted log.
type Lost struct {
	Seq    uint64
	Reason string
}

// OK reports whether every 200 answer has its record and the log verifies.
func (r *Report) OK() bool {
	return r.Answered == r.Persisted && len(r.Lost) == 0 && r.LogErr == nil && len(r.ForkedSeqs) == 0
}

// String is the report in a few lines: the figures first.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "answers 200 received: %d, of which persisted: %d, missing: %d; log: %d records in %d files",
		r.Answered, r.Persisted, len(r.Lost), r.Records, len(r.Files))
	if r.LogErr != nil {
		fmt.Fprintf(&b, "\nthe log does not verify: %v", r.LogErr)
	} else {
		b.WriteString("\nthe log verifies (audit.VerifyFiles, every signature)")
	}
	if len(r.ForkedSeqs) > 0 {
		fmt.Fprintf(&b, "\nsequence numbers with two authentic records (forked): %d, first %v", len(r.ForkedSeqs), r.ForkedSeqs[:min(10, len(r.ForkedSeqs))])
	}
	for i, l := range r.Lost {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(r.Lost)-10)
			break
		}
		fmt.Fprintf(&b, "\n  missing: seq %d: %s", l.Seq, l.Reason)
	}
	return b.String()
}

// verifyLog finds the audit log in dataDir (the key in host.AuditKeyFile,
// the files by package audit/logfile) and verifies it whole, every
// signature checked, as nitrosign audit verify --all-signatures does. It
// returns the files, the audit key and the verification's error (nil when
// the log verifies); err is for a log it cannot find.
func verifyLog(dataDir string) (files []string, pub ed25519.PublicKey, logErr, err error) {
	keyHex, err := os.ReadFile(filepath.Join(dataDir, host.AuditKeyFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("chaos: the audit key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(keyHex)))
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, nil, nil, fmt.Errorf("chaos: %s does not hold an audit key", host.AuditKeyFile)
	}
	pub = ed25519.PublicKey(key)
	sealed, live, err := logfile.Files(dataDir, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("chaos: %w", err)
	}
	files = append([]string{}, sealed...)
	if live != "" {
		files = append(files, live)
	} else {
		files = append(files, os.DevNull) // as nitrosign audit verify does
	}
	_, logErr = audit.VerifyFiles(files, pub, audit.VerifyOptions{AllSignatures: true})
	return files, pub, logErr, nil
}

// Check reads the audit log that a host keeps in dataDir (the log of the
// audit key it recorded at unseal, host.AuditKeyFile) and checks, for every
// 200 answer among answers, that the record at its audit_seq is in the log,
// authentic (in the batch of a tree head signed by the audit key, or signed
// itself), a decision "signed" for the same
// signing key and client, whose request_digest is the SHA-256 of the exact
// body the client sent; and that the whole log verifies with
// audit.VerifyFiles as `nitrosign audit verify --dir` runs it, every
// signature checked. client is the stamp key the requests were stamped
// with. Read it once the host is stopped (a live log may end in a write in
// progress). An error means the log could not be read at all.
func Check(dataDir string, client stamp.PublicKey, answers []Answer) (*Report, error) {
	files, pub, logErr, err := verifyLog(dataDir)
	if err != nil {
		return nil, err
	}
	r := &Report{Files: files, LogErr: logErr}

	// Every authentic record, by sequence number (more than one when the
	// log is forked): a signed record whose signature verifies, or a
	// record in the batch of such a tree head, whose root its batch gives.
	var all [][]byte
	for _, path := range files {
		if err := eachLine(path, func(line []byte) {
			all = append(all, bytes.Clone(line))
		}); err != nil {
			return nil, err
		}
	}
	r.Records = len(all)
	authentic := make([]bool, len(all))
	for i, line := range all {
		if _, err := audit.VerifyRecord(line, pub); err != nil {
			continue // unsigned (see its tree head), or VerifyFiles names it
		}
		authentic[i] = true
		th, err := audit.ParseTreeHead(line, pub)
		if err != nil || uint64(i) < th.Size {
			continue
		}
		batch := all[uint64(i)-th.Size : i]
		leaves := make([][32]byte, len(batch))
		for j, l := range batch {
			leaves[j] = audit.LeafHash(l)
		}
		if audit.MerkleRoot(leaves) == th.Root {
			for j := range batch {
				authentic[uint64(i)-th.Size+uint64(j)] = true
			}
		}
	}
	bySeq := map[uint64][]audit.Record{}
	for i, line := range all {
		if !authentic[i] {
			continue
		}
		rec, err := audit.Unmarshal(line)
		if err != nil {
			continue
		}
		dup := false
		for _, o := range bySeq[rec.Seq] {
			dup = dup || o.Hash() == rec.Hash() // a verbatim duplicate: VerifyFiles names it
		}
		if dup {
			continue
		}
		if len(bySeq[rec.Seq]) == 1 {
			r.ForkedSeqs = append(r.ForkedSeqs, rec.Seq)
		}
		bySeq[rec.Seq] = append(bySeq[rec.Seq], rec)
	}

	clientID := client.String()
	for _, a := range answers {
		if a.Status != http.StatusOK || a.Sign == nil {
			continue
		}
		r.Answered++
		seq := a.Sign.AuditSeq
		digest := sha256.Sum256(a.Body)
		recs := bySeq[seq]
		if len(recs) == 0 {
			r.Lost = append(r.Lost, Lost{Seq: seq, Reason: "no record with this sequence number in the log"})
			continue
		}
		var why []string
		found := false
		for _, rec := range recs {
			switch {
			case rec.Kind != audit.KindDecision || rec.Decision != audit.DecisionSigned:
				why = append(why, fmt.Sprintf("the record is a %s %q", rec.Kind, rec.Decision))
			case !bytes.Equal(rec.RequestDigest, digest[:]):
				why = append(why, fmt.Sprintf("the record decides request %x, this body is %x", rec.RequestDigest, digest))
			case rec.Key != a.Key || rec.Client != clientID:
				why = append(why, fmt.Sprintf("the record is of key %q client %q", rec.Key, rec.Client))
			default:
				found = true
			}
		}
		if found {
			r.Persisted++
			continue
		}
		r.Lost = append(r.Lost, Lost{Seq: seq, Reason: strings.Join(why, "; ")})
	}
	return r, nil
}

// eachLine calls f with each complete line of path, without its newline
// (a last line without one is a write in progress: not a record).
func eachLine(path string, f func([]byte)) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("chaos: %s: %w", path, err)
		}
		f(line[:len(line)-1])
	}
}
