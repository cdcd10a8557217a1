package chaos

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/stamp"
)

// Signature is a signature a client received, as CheckSignatures needs
// it: the audit sequence number the answer names and the SHA-256 of the
// exact body the client sent.
type Signature struct {
	Seq    uint64
	Digest [32]byte
}

// SignaturesReport is what CheckSignatures found.
type SignaturesReport struct {
	// Signatures is the number of signatures checked; Persisted of them
	// have their exact record in the log; Lost lists the others (at most
	// 100), LostCount counts them.
	Signatures, Persisted int
	Lost                  []Lost
	LostCount             int
	// Duplicates counts signatures that name a sequence number another
	// signature names too: two answers for one record.
	Duplicates int
	// Records is the number of records in the log, SignedRecords those of
	// them that are decisions "signed" by key for client: each must be
	// the record of exactly one signature.
	Records, SignedRecords int
	// LogErr is why the log does not verify (audit.VerifyFiles, every
	// signature checked), nil when it does.
	LogErr error
	// Files are the log files read, in order.
	Files []string
}

// OK reports whether every signature has its own record, every "signed"
// decision in the log is the record of a signature, and the log verifies.
func (r *SignaturesReport) OK() bool {
	return r.LogErr == nil && r.LostCount == 0 && r.Duplicates == 0 &&
		r.Persisted == r.Signatures && r.SignedRecords == r.Signatures
}

// String is the report in a few lines: the figures first.
func (r *SignaturesReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "signatures received: %d, with their record in the log: %d, missing: %d, answers naming the same record: %d; log: %d records in %d files, %d of them decisions \"signed\"",
		r.Signatures, r.Persisted, r.LostCount, r.Duplicates, r.Records, len(r.Files), r.SignedRecords)
	if r.LogErr != nil {
		fmt.Fprintf(&b, "\nthe log does not verify: %v", r.LogErr)
	} else {
		b.WriteString("\nthe log verifies (audit.VerifyFiles, every signature)")
	}
	for i, l := range r.Lost {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", r.LostCount-10)
			break
		}
		fmt.Fprintf(&b, "\n  missing: seq %d: %s", l.Seq, l.Reason)
	}
	return b.String()
}

// CheckSignatures is Check for long runs (`nitrosign soak`): it keeps no
// more than the signatures themselves in memory, and also proves the
// converse, that the log holds no "signed" decision for key and client
// that no signature answered. It reads the audit log that a host keeps in
// dataDir (as Check does), verifies it with audit.VerifyFiles, every
// signature checked, then reads it once more in order and matches each
// decision "signed" to the signature naming its sequence number, whose
// body digest must be the record's request_digest. The log's records,
// authenticated as a chain by the verification, are not verified again one
// by one. Read it once the host is stopped.
func CheckSignatures(dataDir string, client stamp.PublicKey, key string, sigs []Signature) (*SignaturesReport, error) {
	files, _, logErr, err := verifyLog(dataDir)
	if err != nil {
		return nil, err
	}
	r := &SignaturesReport{Files: files, Signatures: len(sigs), LogErr: logErr}

	sorted := slices.Clone(sigs)
	slices.SortFunc(sorted, func(a, b Signature) int { return cmp.Compare(a.Seq, b.Seq) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Seq == sorted[i-1].Seq {
			r.Duplicates++
		}
	}
	found := make([]bool, len(sorted))
	lose := func(seq uint64, why string) {
		r.LostCount++
		if len(r.Lost) < 100 {
			r.Lost = append(r.Lost, Lost{Seq: seq, Reason: why})
		}
	}
	clientID := client.String()
	for _, path := range files {
		if err := eachLine(path, func(line []byte) {
			r.Records++
			rec, err := audit.Unmarshal(line)
			if err != nil || rec.Kind != audit.KindDecision || rec.Decision != audit.DecisionSigned ||
				rec.Key != key || rec.Client != clientID {
				return // VerifyFiles names a bad line
			}
			r.SignedRecords++
			i, ok := slices.BinarySearchFunc(sorted, rec.Seq, func(s Signature, seq uint64) int { return cmp.Compare(s.Seq, seq) })
			if !ok {
				lose(rec.Seq, "a decision \"signed\" in the log that no answer received")
				return
			}
			if found[i] {
				lose(rec.Seq, "a second record with this sequence number")
				return
			}
			found[i] = true
			if !bytes.Equal(rec.RequestDigest, sorted[i].Digest[:]) {
				lose(rec.Seq, fmt.Sprintf("the record decides request %x, the answer's body is %x", rec.RequestDigest, sorted[i].Digest))
				return
			}
			r.Persisted++
		}); err != nil {
			return nil, err
		}
	}
	for i, f := range found {
		if !f {
			lose(sorted[i].Seq, "no decision \"signed\" for this key and client with this sequence number in the log")
		}
	}
	return r, nil
}
