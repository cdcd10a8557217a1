package audit

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// Proof is the evidence that one record is in an audit log, in the form
// `nitrosign audit prove` writes and `nitrosign audit check-proof` reads:
// the record's line, the line of the signed tree head of its batch, and
// the record's RFC 6962 audit path in that batch. Whoever holds the audit
// key (from an attestation) checks it with VerifyProof and nothing else:
// not the log, not the host. A record signed itself (an event, a boot or
// genesis record) needs no tree: its Proof has no tree head and an empty
// path, and its own signature is the evidence.
//
// The lines are JSON strings holding the exact bytes of the log's lines,
// so that the leaf hash and the signatures are computed over what was
// written; the path's hashes are lower-case hex.
type Proof struct {
	Record   string   `json:"record"`
	TreeHead string   `json:"tree_head,omitempty"`
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	Path     []string `json:"path"`
}

// MaxProofSize caps the encoded Proof ParseProof accepts: two records,
// JSON-escaped (at most six bytes per byte), and a path of at most
// log2(MaxBatch) hashes.
const MaxProofSize = 2*6*MaxRecordSize + 4096

// ParseProof decodes a Proof strictly (unknown or duplicate members, a
// wrong type, trailing data or more than MaxProofSize bytes are refused);
// VerifyProof checks what it says.
func ParseProof(data []byte) (*Proof, error) {
	var p Proof
	if err := strictjson.Unmarshal(data, &p, MaxProofSize); err != nil {
		return nil, fmt.Errorf("audit: proof: %w", err)
	}
	return &p, nil
}

// VerifyProof checks p against the audit key pub and returns the record it
// proves, and the tree head when there is one: for a record in a batch,
// VerifyInclusion (the head's signature and form, the record's place in
// the batch, the path to the head's root); for a record without a tree
// head, the record's own signature.
func VerifyProof(p *Proof, pub ed25519.PublicKey) (Record, *TreeHead, error) {
	line := []byte(p.Record)
	if p.TreeHead == "" {
		if len(p.Path) != 0 || p.Index != 0 || p.Size != 0 {
			return Record{}, nil, errors.New("audit: proof: a path without a tree head")
		}
		rec, err := VerifyRecord(line, pub)
		if err != nil {
			return Record{}, nil, err
		}
		if !rec.Signed() {
			return Record{}, nil, fmt.Errorf("audit: proof: record %d is not signed, and the proof has no tree head", rec.Seq)
		}
		return rec, nil, nil
	}
	if len(p.Path) > 8 { // log2(MaxBatch) rounded up
		return Record{}, nil, fmt.Errorf("audit: proof: a path of %d hashes (a batch of at most %d records needs at most 8)", len(p.Path), MaxBatch)
	}
	path := make([][32]byte, len(p.Path))
	for i, h := range p.Path {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 || hex.EncodeToString(b) != h {
			return Record{}, nil, fmt.Errorf("audit: proof: path[%d] is not 64 lower-case hex digits", i)
		}
		path[i] = [32]byte(b)
	}
	rec, t, err := VerifyInclusion(line, []byte(p.TreeHead), path, pub)
	if err != nil {
		return Record{}, nil, err
	}
	if p.Index != rec.Seq-t.First || p.Size != t.Size {
		return Record{}, nil, fmt.Errorf("audit: proof: index %d of %d does not match record %d in tree head %d (index %d of %d)", p.Index, p.Size, rec.Seq, t.Seq, rec.Seq-t.First, t.Size)
	}
	return rec, &t, nil
}

// ProveFiles reads the log in paths (segments in order, as VerifyFiles
// takes them) and returns the proof of record seq: the batch that holds
// it and the tree head that closes it, or the record alone when it is
// signed itself and no tree head covers it. It does not verify the log
// (VerifyFiles does): the proof it returns is checked with VerifyProof
// against pub before it is returned, so it never hands out a proof that
// does not hold. A record that no signature covers, alone or through a
// tree head (the unsigned tail of a log, or records of an earlier enclave
// run after its last tree head, which only the chain authenticates), has
// no proof: say so.
func ProveFiles(paths []string, pub ed25519.PublicKey, seq uint64) (*Proof, error) {
	if len(paths) == 0 {
		return nil, errors.New("audit: no files to read")
	}
	src := fileSource(paths, MaxRecordSize)
	defer src.close()
	// batch holds the lines since the last tree head or rotate record (at
	// most MaxBatch: a longer run cannot be one head's batch, and its
	// oldest lines are dropped), with their seqs.
	type entry struct {
		seq  uint64
		line []byte
	}
	var batch []entry
	var self *Proof // the record, when it is signed itself
	for {
		it, err := src.next()
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if it == nil {
			break
		}
		if it.eof {
			continue
		}
		if it.err != nil {
			return nil, fmt.Errorf("audit: %s line %d: %w", paths[it.file], it.line, it.err)
		}
		rec, err := Unmarshal(it.raw)
		if err != nil {
			return nil, fmt.Errorf("audit: %s line %d: %w", paths[it.file], it.line, err)
		}
		switch {
		case rec.Kind == KindTreeHead:
			t, err := treeHeadOf(&rec)
			if err == nil && seq >= t.First && seq <= t.Last() {
				lines := make([][]byte, 0, t.Size)
				for _, e := range batch {
					if e.seq >= t.First {
						lines = append(lines, e.line)
					}
				}
				if uint64(len(lines)) != t.Size || batch[len(batch)-1].seq != t.Seq-1 {
					return nil, fmt.Errorf("audit: tree head %d covers records %d to %d, which the files do not hold in order (run audit verify)", t.Seq, t.First, t.Last())
				}
				return checked(lines, seq-t.First, it.raw, pub)
			}
			batch = batch[:0]
		case rec.Kind == KindRotate:
			batch = batch[:0]
		default:
			if len(batch) == MaxBatch {
				batch = append(batch[:0], batch[1:]...)
			}
			batch = append(batch, entry{rec.Seq, append([]byte(nil), it.raw...)})
		}
		if rec.Seq == seq && rec.Signed() {
			self = &Proof{Record: string(it.raw), Path: []string{}}
		}
	}
	if self != nil {
		if _, _, err := VerifyProof(self, pub); err != nil {
			return nil, err
		}
		return self, nil
	}
	return nil, fmt.Errorf("audit: no signature covers record %d in these files: it is not there, or it is in no tree head (the unsigned tail, or a record of an earlier enclave run after its last tree head, which audit verify checks through the chain)", seq)
}

// checked makes the proof of lines[index] under the tree head line head,
// and verifies it.
func checked(lines [][]byte, index uint64, head []byte, pub ed25519.PublicKey) (*Proof, error) {
	path, err := InclusionProof(lines, int(index))
	if err != nil {
		return nil, err
	}
	p := &Proof{Record: string(lines[index]), TreeHead: string(head), Index: index, Size: uint64(len(lines)), Path: make([]string, len(path))}
	for i, h := range path {
		p.Path[i] = hex.EncodeToString(h[:])
	}
	if _, _, err := VerifyProof(p, pub); err != nil {
		return nil, err
	}
	return p, nil
}
