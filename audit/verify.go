package audit

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// Kinds of problem an [*Error] names.
const (
	// Malformed: a line that is not a canonical record (including a line
	// over the size cap, an empty line, and a last line without newline).
	Malformed = "malformed"
	// Missing: records absent: a gap in the sequence numbers, a segment
	// that does not end with a rotate record, or a log that ends before the
	// known head.
	Missing = "missing"
	// Reordered: a record out of place: one that comes before a record it
	// should follow, or a verbatim duplicate.
	Reordered = "reordered"
	// Edited: a record whose bytes are not what the next record's prev
	// commits to, or a repeated sequence number carrying other content that
	// the audit key did not sign.
	Edited = "edited"
	// Forked: two different records, each authenticated by the audit key,
	// for the same sequence number: the enclave continued the log from an
	// older head (for example a replayed sealed state), or the log is not
	// the one the known head belongs to.
	Forked = "forked"
	// BadSignature: a record the chain commits to (no later record, or the
	// next one's prev matches it) whose signature does not verify under the
	// audit key: signed by another key, or forged.
	BadSignature = "bad_signature"
	// Unsigned: records after the last signed record of the log; nothing
	// authenticates them.
	Unsigned = "unsigned"
	// BadTreeHead: a tree head record that is not what the records before
	// it make: not signed, malformed, a root or previous-head hash that
	// the records it covers do not give, or a batch that overlaps the
	// previous one or leaves records out of every tree. Its signature
	// verifies (else the problem is BadSignature): only a faulty enclave
	// writes one.
	BadTreeHead = "bad_tree_head"
)

// Error names the first problem Verify found.
type Error struct {
	// Seq is the sequence number of the record at Line, except for Missing,
	// where it is the first missing sequence number, and Malformed, where it
	// is the sequence number expected at Line.
	Seq uint64
	// Line is the 1-based line number in the file (for Missing at the end
	// of a file, one past its last line).
	Line int
	// Path is the file, for VerifyFiles; empty for Verify.
	Path string
	// Kind is one of Malformed, Missing, Reordered, Edited, Forked,
	// BadSignature, Unsigned, BadTreeHead.
	Kind string
	// Err says what is wrong.
	Err error

	file int   // index of the file, until run names it in Path
	ord  int64 // index of the line across files, to order problems
}

func (e *Error) Error() string {
	where := fmt.Sprintf("line %d", e.Line)
	if e.Path != "" {
		where = e.Path + ":" + fmt.Sprint(e.Line)
	}
	return fmt.Sprintf("audit: %s (seq %d): %s: %s", where, e.Seq, e.Kind, strings.TrimPrefix(e.Err.Error(), "audit: "))
}

func (e *Error) Unwrap() error { return e.Err }

// VerifyOptions tunes Verify and VerifyFiles. The zero value verifies a
// whole log from its first record.
type VerifyOptions struct {
	// FromSeq is the sequence number of the first record, for a log that
	// starts mid-way (a segment, or records fetched from a given seq); zero
	// means 1.
	FromSeq uint64
	// FromHash is the hash of record FromSeq-1, which the first record's
	// prev must equal; it must be zero when FromSeq is at most 1.
	FromHash [32]byte
	// ExpectHead is a head known from outside the log (an attestation's
	// audit head, an earlier verified head, an S3 object name): the log must
	// reach it, and its record at ExpectHead.Seq must have that hash.
	// Without it, a log truncated after a signed record verifies (as what it
	// is: a shorter log); with it, truncation is Missing and a log from
	// another branch is Forked.
	ExpectHead *Head
	// MaxLineSize caps a line, without its newline; zero (or anything
	// larger) means MaxRecordSize.
	MaxLineSize int
	// AllSignatures verifies the signature of every signed record, in
	// parallel, rather than only at checkpoints (see the package
	// documentation). It finds records whose signature is wrong although
	// the chain commits to them, which only a faulty enclave writes.
	AllSignatures bool
	// Workers is the number of goroutines verifying signatures with
	// AllSignatures; zero means GOMAXPROCS.
	Workers int
}

// Kinds of [Warning]: findings in a log that verified (its chain is intact
// and authentic), each an event a security engineer must look at.
const (
	// WarnRollback: a boot record names rollbacks the enclave detected at
	// start (see [RollbackRules]); the enclave froze every key.
	WarnRollback = "rollback"
	// WarnCheckpointDecrease: a record's checkpoint member is below the
	// previous record's. The enclave carries the newest generation over
	// across restarts, so an honest log never decreases: the enclave
	// continued without knowing the checkpoint the log had recorded.
	WarnCheckpointDecrease = "checkpoint_decrease"
)

// MaxWarnings caps the warnings a Report lists; the others are counted
// (Report.WarningsOmitted).
const MaxWarnings = 1000

// Warning is a finding in a log that verified.
type Warning struct {
	// Seq and Line are the record's sequence number and 1-based line;
	// Path its file, for VerifyFiles.
	Seq  uint64
	Line int
	Path string
	// Kind is WarnRollback or WarnCheckpointDecrease.
	Kind string
	// Rules are the rollback rules the boot record names, the most severe
	// first (WarnRollback only).
	Rules []string
	// Msg gives the evidence.
	Msg string

	file int
}

func (w Warning) String() string {
	where := fmt.Sprintf("line %d", w.Line)
	if w.Path != "" {
		where = w.Path + ":" + fmt.Sprint(w.Line)
	}
	return fmt.Sprintf("%s (seq %d): %s: %s", where, w.Seq, w.Kind, w.Msg)
}

// Report describes a log that verified.
type Report struct {
	// Records is the number of records.
	Records int64
	// FirstSeq and LastSeq are the sequence numbers of the first and last
	// records (zero when there are none).
	FirstSeq, LastSeq uint64
	// Head is the head after the last record: the one to pin, to pass as
	// ExpectHead next time, or to continue from with FromSeq and FromHash.
	// For an empty log it is the head the log starts from.
	Head Head
	// Signed is the number of signed records (tree heads included);
	// SignaturesChecked, how many signatures were verified.
	Signed, SignaturesChecked int64
	// TreeHeads is the number of tree head records; RootsChecked, how many
	// of their Merkle roots were recomputed from the records (all but
	// those whose batch starts before the records verified, FromSeq).
	TreeHeads, RootsChecked int64
	// Rotated reports that the last record is a rotate record: a later
	// segment continues the log.
	Rotated bool
	// Segments describes each file (one, with an empty Path, for Verify).
	Segments []Segment
	// Warnings are the findings of a log that verified, in log order: boot
	// records naming a rollback, and decreases of the checkpoint member.
	// At most MaxWarnings; WarningsOmitted counts the others.
	Warnings        []Warning
	WarningsOmitted int
}

// Segment describes one file of a log.
type Segment struct {
	Path string
	// Records is the number of records in the file; FirstSeq the first's
	// sequence number (zero when there are none).
	Records  int64
	FirstSeq uint64
	// Head is the head after the file's last record (or, for an empty file,
	// the head it starts from).
	Head Head
}

// checkpointEvery is how many records the verifier reads between signature
// checks when not verifying all signatures, and checkpointBytes how many
// bytes of signed messages it holds at most until the next check.
const (
	checkpointEvery = 1024
	checkpointBytes = 8 << 20
)

// Verify reads a log (one record a line, each line ending in a newline) and
// checks that it is complete, in order, unedited, unforked and signed by
// pub, as the package documentation describes. It returns a report, or an
// [*Error] naming the first problem, or another error for bad options or
// when reading fails.
func Verify(r io.Reader, pub ed25519.PublicKey, opts VerifyOptions) (*Report, error) {
	v, err := newVerifier(pub, opts, []string{""}, false)
	if err != nil {
		return nil, err
	}
	v.src = readerSource(r, v.maxLine)
	return v.run()
}

// VerifyFiles verifies a log stored as segments, one file each, in order:
// the chain runs across files (each file's first record continues from the
// previous file's last), every file but the last must end with a rotate
// record, and the last must not, unless opts.ExpectHead says where the log
// ends (so a missing last segment is detected); an empty last file, the
// live segment just after a rotation, is fine. To verify a range of
// segments that ends with a rotated one, pass its head as ExpectHead.
func VerifyFiles(paths []string, pub ed25519.PublicKey, opts VerifyOptions) (*Report, error) {
	if len(paths) == 0 {
		return nil, errors.New("audit: no files to verify")
	}
	v, err := newVerifier(pub, opts, paths, true)
	if err != nil {
		return nil, err
	}
	v.src = fileSource(paths, v.maxLine)
	return v.run()
}

// position is where a record is.
type position struct {
	seq  uint64
	file int
	line int
	ord  int64
}

type verifier struct {
	pub      ed25519.PublicKey
	opts     VerifyOptions
	paths    []string
	files    bool // VerifyFiles: rotate records must end every file but the last
	maxLine  int
	src      *source
	fromSeq  uint64
	fromHash [32]byte

	n           int64    // records accepted
	last        position // the last record accepted
	lastHash    [32]byte
	lastRaw     []byte // its line
	lastSig     bool
	lastKind    string
	segs        []position // the first record accepted of each file
	segments    []Segment  // the files read
	fileStart   int64      // v.n when the current file started
	prefixes    []uint64   // the first 8 bytes of each accepted record's hash
	unsigned    position   // the first record after the last signed one,
	hasUnsigned bool       // if there is one
	signed      int64
	checked     atomic.Int64

	// Checkpoints: signed records whose signature is not yet checked.
	pending      []pendingSig
	pendingBytes int
	sinceCheck   int

	pool *sigPool // with AllSignatures

	expectHash *[32]byte // hash of record ExpectHead.Seq, once read

	lastCheckpoint  uint64 // the checkpoint member of the last record accepted
	warnings        []Warning
	warningsOmitted int

	// Tree heads: the last records accepted (hash, and leaf hash but for
	// tree heads) by seq modulo ringSize, enough for a tree head, the
	// MaxBatch records of its batch and the record before them.
	ring   [ringSize]ringEntry
	leaves leafHasher
	tree   compactRange
	// batchStart is where the next tree head's batch must start: after
	// the last tree head or rotate record, or at the last boot or genesis
	// record (an enclave run's first batch starts with it); 0 until one
	// of them is read.
	batchStart   uint64
	treeHeads    int64
	rootsChecked int64
}

const ringSize = MaxBatch + 2

type ringEntry struct {
	seq        uint64
	hash, leaf [32]byte
}

type pendingSig struct {
	position
	msg []byte
	sig [sigSize]byte
}

func newVerifier(pub ed25519.PublicKey, opts VerifyOptions, paths []string, files bool) (*verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: public key of %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	v := &verifier{pub: pub, opts: opts, paths: paths, files: files, fromSeq: opts.FromSeq, fromHash: opts.FromHash}
	if v.fromSeq == 0 {
		v.fromSeq = 1
	}
	switch {
	case v.fromSeq > MaxSafeInteger:
		return nil, fmt.Errorf("audit: FromSeq %d above %d", v.fromSeq, uint64(MaxSafeInteger))
	case v.fromSeq == 1 && v.fromHash != [32]byte{}:
		return nil, errors.New("audit: FromHash must be zero when verifying from seq 1")
	case opts.ExpectHead != nil && opts.ExpectHead.Seq < v.fromSeq-1:
		return nil, fmt.Errorf("audit: ExpectHead seq %d is before the log's start (seq %d)", opts.ExpectHead.Seq, v.fromSeq)
	case opts.MaxLineSize < 0:
		return nil, errors.New("audit: negative MaxLineSize")
	}
	v.maxLine = opts.MaxLineSize
	if v.maxLine == 0 || v.maxLine > MaxRecordSize {
		v.maxLine = MaxRecordSize
	}
	v.last = position{seq: v.fromSeq - 1, file: 0, line: 0, ord: -1}
	v.lastHash = v.fromHash
	if opts.ExpectHead != nil && opts.ExpectHead.Seq == v.fromSeq-1 {
		v.expectHash = &v.fromHash
	}
	if opts.AllSignatures {
		w := opts.Workers
		if w <= 0 {
			w = runtime.GOMAXPROCS(0)
		}
		v.pool = newSigPool(pub, w, &v.checked)
	}
	return v, nil
}

func (v *verifier) run() (*Report, error) {
	defer v.src.close()
	if v.pool != nil {
		defer v.pool.stop()
	}
	rep, err := v.loop()
	if e, ok := err.(*Error); ok && v.files {
		e.Path = v.paths[e.file]
	}
	return rep, err
}

func (v *verifier) newError(at position, kind string, format string, args ...any) *Error {
	return &Error{Seq: at.seq, Line: at.line, Kind: kind, Err: fmt.Errorf(format, args...), file: at.file, ord: at.ord}
}

func (v *verifier) loop() (*Report, error) {
	for {
		it, err := v.src.next()
		if err != nil {
			return nil, v.ioError(err)
		}
		if it == nil {
			break
		}
		if it.eof {
			if err := v.endOfFile(it); err != nil {
				return nil, err
			}
			continue
		}
		expected := v.last.seq + 1
		at := position{seq: expected, file: it.file, line: it.line, ord: it.ord}
		if it.err != nil {
			msg := strings.TrimPrefix(it.err.Error(), "audit: ")
			if it.raw != nil && json.Valid(it.raw) {
				msg += " (the line is JSON, but not a canonical record)"
			}
			return nil, v.fail(v.newError(at, Malformed, "%s", msg))
		}
		at.seq = it.p.rec.Seq
		switch {
		case it.p.rec.Seq == expected && it.p.rec.Prev == v.lastHash:
		case it.p.rec.Seq == expected:
			return nil, v.chainBreak(it, at)
		case it.p.rec.Seq > expected:
			return nil, v.gap(it, at, expected)
		default:
			return nil, v.repeat(it, at)
		}
		if err := v.accept(it, at); err != nil {
			return nil, err
		}
	}
	return v.finish()
}

func (v *verifier) ioError(err error) error {
	if v.files {
		return fmt.Errorf("audit: reading %s: %w", v.paths[min(max(v.src.cur, 0), len(v.paths)-1)], err)
	}
	return fmt.Errorf("audit: reading the log: %w", err)
}

// accept records a record that continues the chain.
func (v *verifier) accept(it *item, at position) error {
	e := &v.ring[at.seq%ringSize]
	e.seq, e.hash = at.seq, it.hash
	switch it.p.rec.Kind {
	case KindTreeHead:
		if err := v.treeHead(it, at); err != nil {
			return err
		}
	case KindRotate:
		v.batchStart = at.seq + 1
	case KindBoot, KindGenesis:
		v.batchStart = at.seq
		fallthrough
	default:
		v.leaves.leaf(it.raw, &e.leaf)
	}
	if len(v.segs) == 0 || v.segs[len(v.segs)-1].file != it.file {
		v.segs = append(v.segs, at)
	}
	v.prefixes = append(v.prefixes, binary.BigEndian.Uint64(it.hash[:8]))
	v.watch(it, at)
	v.n++
	v.last = at
	v.lastHash = it.hash
	v.lastRaw = append(v.lastRaw[:0], it.raw...)
	v.lastSig = it.p.signed
	v.lastKind = it.p.rec.Kind
	if h := v.opts.ExpectHead; h != nil && h.Seq == at.seq {
		hash := it.hash
		v.expectHash = &hash
	}
	if !it.p.signed {
		if !v.hasUnsigned {
			v.unsigned, v.hasUnsigned = at, true
		}
		v.sinceCheck++
		return nil
	}
	v.hasUnsigned = false
	v.signed++
	if v.pool != nil {
		v.pool.add(pendingSig{position: at, msg: it.p.message(it.raw), sig: it.p.sig})
		return nil
	}
	// Reuse the buffers of the entries of earlier checkpoints.
	if len(v.pending) < cap(v.pending) {
		v.pending = v.pending[:len(v.pending)+1]
	} else {
		v.pending = append(v.pending, pendingSig{})
	}
	ps := &v.pending[len(v.pending)-1]
	ps.position, ps.sig = at, it.p.sig
	ps.msg = it.p.appendMessage(ps.msg[:0], it.raw)
	v.pendingBytes += len(ps.msg)
	v.sinceCheck++
	if v.sinceCheck >= checkpointEvery || v.pendingBytes >= checkpointBytes {
		if e := v.firstBadSignature(math.MaxInt64); e != nil {
			return e
		}
		v.pending = v.pending[:0]
		v.pendingBytes = 0
		v.sinceCheck = 0
	}
	return nil
}

// treeHead checks a tree head record that continues the chain: its form,
// that its batch starts right after the previous tree head or rotate
// record, or at the record that starts an enclave run (a boot or genesis
// record: the records of the previous run after its last batch, if any,
// are in no tree, and authenticated by the boot record's signature), and,
// when the records of its batch were read, its root and previous-head
// hash. Its signature is checked with the other signed records.
func (v *verifier) treeHead(it *item, at position) error {
	bad := func(format string, args ...any) error {
		if it.p.signed && !v.sigOK(it.raw, &it.p) {
			return v.fail(v.badSignature(at))
		}
		return v.fail(v.newError(at, BadTreeHead, format, args...))
	}
	if !it.p.signed {
		return bad("tree head record %d is not signed", at.seq)
	}
	rec, err := Unmarshal(it.raw)
	if err != nil {
		return v.fail(v.newError(at, Malformed, "%s", strings.TrimPrefix(err.Error(), "audit: ")))
	}
	t, err := treeHeadOf(&rec)
	if err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), "audit: "))
	}
	switch {
	case t.First == v.batchStart, v.batchStart == 0 && t.First <= v.fromSeq:
	case v.batchStart == 0 || t.First < v.batchStart:
		return bad("tree head %d covers records %d to %d, but its batch starts at record %d", at.seq, t.First, t.Last(), max(v.batchStart, v.fromSeq))
	default:
		return bad("tree head %d covers records %d to %d: records %d to %d are in no tree", at.seq, t.First, t.Last(), v.batchStart, t.First-1)
	}
	v.batchStart = at.seq + 1
	v.treeHeads++
	if t.First < v.fromSeq {
		return nil // its first records were not read
	}
	prev := v.fromHash
	if t.First > v.fromSeq {
		prev = v.ring[(t.First-1)%ringSize].hash
	}
	v.tree.reset()
	for s := t.First; s < at.seq; s++ {
		v.tree.push(v.ring[s%ringSize].leaf)
	}
	v.rootsChecked++
	if root := v.tree.root(); root != t.Root {
		return bad("tree head %d states root %x for records %d to %d, but they hash to %x", at.seq, t.Root, t.First, t.Last(), root)
	}
	if prev != t.PrevHead {
		return bad("tree head %d states prev_head %x, but record %d hashes to %x", at.seq, t.PrevHead, t.First-1, prev)
	}
	return nil
}

// watch collects the warnings about an accepted record: a checkpoint member
// below the previous record's, and a boot record naming rollbacks (decoded
// in full: boot records are rare).
func (v *verifier) watch(it *item, at position) {
	ck := it.p.rec.Checkpoint
	if v.n > 0 && ck < v.lastCheckpoint {
		v.warn(Warning{Seq: at.seq, Line: at.line, file: at.file, Kind: WarnCheckpointDecrease,
			Msg: fmt.Sprintf("record %d says checkpoint generation %d was the newest the host had acknowledged storing, but record %d said %d: the enclave continued from an older state than the log had recorded", at.seq, ck, v.last.seq, v.lastCheckpoint)})
	}
	v.lastCheckpoint = ck
	if k := it.p.rec.Kind; k != KindBoot && k != KindGenesis {
		return
	}
	rec, err := Unmarshal(it.raw)
	if err != nil {
		return // not reached: the line parsed
	}
	rules := RollbackRules(rec)
	if len(rules) == 0 {
		return
	}
	parts := make([]string, 0, len(rules))
	for _, r := range rules {
		if ev := RollbackEvidence(rec, r); ev != "" {
			parts = append(parts, r+" ("+ev+")")
		} else {
			parts = append(parts, r)
		}
	}
	v.warn(Warning{Seq: at.seq, Line: at.line, file: at.file, Kind: WarnRollback, Rules: rules,
		Msg: "the enclave detected at start: " + strings.Join(parts, "; ")})
}

func (v *verifier) warn(w Warning) {
	if len(v.warnings) >= MaxWarnings {
		v.warningsOmitted++
		return
	}
	v.warnings = append(v.warnings, w)
}

// firstBadSignature returns a BadSignature error for the first signed record
// before ord whose signature does not verify, if any. At checkpoints only
// the last of the pending records is checked: when its signature verifies,
// the chain, intact up to it, commits to every record before it.
func (v *verifier) firstBadSignature(ord int64) *Error {
	if v.pool != nil {
		if bad := v.pool.wait(); bad != nil && bad.ord < ord {
			return v.badSignature(bad.position)
		}
		return nil
	}
	n := 0
	for n < len(v.pending) && v.pending[n].ord < ord {
		n++
	}
	if n == 0 || v.check(&v.pending[n-1]) {
		return nil
	}
	for i := range n {
		if !v.check(&v.pending[i]) {
			return v.badSignature(v.pending[i].position)
		}
	}
	return nil // not reached: pending[n-1] failed
}

func (v *verifier) check(p *pendingSig) bool {
	v.checked.Add(1)
	return ed25519.Verify(v.pub, p.msg, p.sig[:])
}

func (v *verifier) badSignature(at position) *Error {
	return v.newError(at, BadSignature, "record %d: signature does not verify under the audit key (signed by another key, or forged)", at.seq)
}

// fail returns e, unless an earlier signed record has a bad signature.
func (v *verifier) fail(e *Error) *Error {
	if bad := v.firstBadSignature(e.ord); bad != nil {
		return bad
	}
	return e
}

// sigOK reports whether the signed line's signature verifies.
func (v *verifier) sigOK(raw []byte, p *parsed) bool {
	v.checked.Add(1)
	return ed25519.Verify(v.pub, p.message(raw), p.sig[:])
}

// lastAuthentic reports whether the last accepted record is known to be
// authentic (known), and if so whether it is (ok). The start of the log,
// given by the caller, is authentic; an unsigned record is unknown.
func (v *verifier) lastAuthentic() (known, ok bool) {
	if v.n == 0 {
		return true, true
	}
	if !v.lastSig {
		return false, false
	}
	var p parsed
	if parseLine(v.lastRaw, &p, false) != nil {
		return true, false
	}
	return true, v.sigOK(v.lastRaw, &p)
}

// authentic reports whether it is authenticated by the audit key: by its
// own signature, or, unsigned, by the next signed record through an intact
// chain. It may read further lines.
func (v *verifier) authentic(it *item) (bool, error) {
	if it.p.signed {
		return v.sigOK(it.raw, &it.p), nil
	}
	seq, hash := it.p.rec.Seq, it.hash
	for {
		nx, err := v.src.next()
		if err != nil {
			return false, v.ioError(err)
		}
		switch {
		case nx == nil:
			return false, nil
		case nx.eof:
			continue
		case nx.err != nil || nx.p.rec.Seq != seq+1 || nx.p.rec.Prev != hash:
			return false, nil
		case nx.p.signed:
			return v.sigOK(nx.raw, &nx.p), nil
		}
		seq, hash = nx.p.rec.Seq, nx.hash
	}
}

// chainBreak handles a record with the expected seq whose prev is not the
// hash of the record before it.
func (v *verifier) chainBreak(it *item, at position) error {
	prevKnown, prevOK := v.lastAuthentic()
	if prevKnown && !prevOK {
		return v.fail(v.newError(v.last, Edited, "record %d does not match the prev of record %d (line %d), and its signature does not verify: it was changed", v.last.seq, at.seq, at.line))
	}
	prev := it.p.rec.Prev
	ok, err := v.authentic(it) // it is not valid after this
	if err != nil {
		return err
	}
	switch {
	case ok && prevKnown && v.n == 0:
		return v.fail(v.newError(at, Forked, "record %d is authentic but does not continue from the given start (prev %x, want %x)", at.seq, prev, v.fromHash))
	case ok && prevKnown:
		return v.fail(v.newError(at, Forked, "record %d is authentic but continues from a different record %d than the authentic one at line %d: the log is forked", at.seq, v.last.seq, v.last.line))
	case ok:
		return v.fail(v.newError(v.last, Edited, "record %d does not match the prev of record %d (line %d), which is authentic: it was changed", v.last.seq, at.seq, at.line))
	default:
		return v.fail(v.newError(at, Edited, "record %d's prev does not match record %d, and nothing authenticates it: it was changed", at.seq, v.last.seq))
	}
}

// gap handles a record whose seq is beyond the expected one: reordered if
// the expected record comes later, missing otherwise.
func (v *verifier) gap(it *item, at position, expected uint64) error {
	e := v.newError(at, Missing, "records %d to %d are missing: record %d follows record %d", expected, at.seq-1, at.seq, expected-1)
	if at.seq == expected+1 {
		e.Err = fmt.Errorf("record %d is missing: record %d follows record %d", expected, at.seq, expected-1)
	}
	e.Seq = expected
	for {
		nx, err := v.src.next()
		if err != nil {
			return v.ioError(err)
		}
		if nx == nil {
			return v.fail(e)
		}
		if !nx.eof && nx.err == nil && nx.p.rec.Seq == expected {
			where := fmt.Sprintf("line %d", nx.line)
			if nx.file != at.file {
				where = fmt.Sprintf("line %d of %s", nx.line, v.paths[nx.file])
			}
			return v.fail(v.newError(at, Reordered, "record %d comes before record %d, which is at %s", at.seq, expected, where))
		}
	}
}

// repeat handles a record whose seq is one already read.
func (v *verifier) repeat(it *item, at position) error {
	if at.seq < v.fromSeq {
		return v.fail(v.newError(at, Reordered, "record %d is before the log's start (seq %d)", at.seq, v.fromSeq))
	}
	first := v.locate(at.seq)
	if v.prefixes[at.seq-v.fromSeq] == binary.BigEndian.Uint64(it.hash[:8]) {
		return v.fail(v.newError(at, Reordered, "record %d is a duplicate of %s", at.seq, v.describe(first)))
	}
	ok, err := v.authentic(it) // it is not valid after this
	if err != nil {
		return err
	}
	if ok {
		return v.fail(v.newError(at, Forked, "record %d is authentic but differs from the authentic record %d at %s: the log is forked", at.seq, at.seq, v.describe(first)))
	}
	return v.fail(v.newError(at, Edited, "record %d repeats the seq of %s with other content, and nothing authenticates it", at.seq, v.describe(first)))
}

// locate returns the position of accepted record seq.
func (v *verifier) locate(seq uint64) position {
	i := len(v.segs) - 1
	for i > 0 && v.segs[i].seq > seq {
		i--
	}
	s := v.segs[i]
	d := seq - s.seq
	return position{seq: seq, file: s.file, line: s.line + int(d), ord: s.ord + int64(d)}
}

func (v *verifier) describe(p position) string {
	if v.files {
		return fmt.Sprintf("line %d of %s", p.line, v.paths[p.file])
	}
	return fmt.Sprintf("line %d", p.line)
}

// endOfFile checks that a file followed by another ends with a rotate record.
func (v *verifier) endOfFile(it *item) error {
	seg := Segment{Path: v.paths[it.file], Records: v.n - v.fileStart, Head: Head{Seq: v.last.seq, Hash: v.lastHash}}
	if seg.Records > 0 {
		seg.FirstSeq = v.last.seq - uint64(seg.Records) + 1
	}
	v.segments = append(v.segments, seg)
	v.fileStart = v.n
	if !v.files || it.file == len(v.paths)-1 {
		return nil
	}
	if v.n > 0 && v.last.file == it.file && v.lastKind == KindRotate {
		return nil
	}
	at := position{seq: v.last.seq + 1, file: it.file, line: it.line, ord: it.ord}
	return v.fail(v.newError(at, Missing, "%s ends without a rotate record, but another segment follows: its end is missing", v.paths[it.file]))
}

// finish runs the checks at the end of the log and makes the report.
func (v *verifier) finish() (*Report, error) {
	if v.hasUnsigned {
		return nil, v.fail(v.newError(v.unsigned, Unsigned, "records %d to %d follow the last signed record: nothing authenticates them", v.unsigned.seq, v.last.seq))
	}
	if e := v.firstBadSignature(math.MaxInt64); e != nil {
		return nil, e
	}
	end := position{seq: v.last.seq + 1, file: v.last.file, line: v.last.line + 1, ord: v.last.ord + 1}
	if v.n == 0 {
		end = position{seq: v.fromSeq, file: len(v.paths) - 1, line: 1}
	}
	if h := v.opts.ExpectHead; h != nil {
		switch {
		case v.last.seq < h.Seq:
			return nil, v.newError(end, Missing, "the log ends at seq %d, before the known head %d: records %d to %d are missing (truncated)", v.last.seq, h.Seq, v.last.seq+1, h.Seq)
		case *v.expectHash != h.Hash:
			at := position{seq: h.Seq} // the given start: no line
			if h.Seq >= v.fromSeq {
				at = v.locate(h.Seq)
			}
			return nil, v.newError(at, Forked, "record %d has hash %x, but the known head has %x: the log is forked, or the head is another log's", h.Seq, *v.expectHash, h.Hash)
		}
	} else if v.files && v.n > 0 && v.lastKind == KindRotate && v.last.file == len(v.paths)-1 {
		return nil, v.newError(end, Missing, "the log was rotated at record %d but no later segment was given", v.last.seq)
	}
	rep := &Report{
		Records:           v.n,
		Head:              Head{Seq: v.last.seq, Hash: v.lastHash},
		Signed:            v.signed,
		SignaturesChecked: v.checked.Load(),
		TreeHeads:         v.treeHeads,
		RootsChecked:      v.rootsChecked,
		Rotated:           v.n > 0 && v.lastKind == KindRotate,
		Segments:          v.segments,
		Warnings:          v.warnings,
		WarningsOmitted:   v.warningsOmitted,
	}
	if v.files {
		for i := range rep.Warnings {
			rep.Warnings[i].Path = v.paths[rep.Warnings[i].file]
		}
	}
	if v.n > 0 {
		rep.FirstSeq, rep.LastSeq = v.fromSeq, v.last.seq
	}
	return rep, nil
}

// sigPool verifies signatures in parallel, remembering the first failure.
type sigPool struct {
	pub        ed25519.PublicKey
	jobs       chan []pendingSig
	wg         sync.WaitGroup
	batch      []pendingSig
	batchBytes int
	checked    *atomic.Int64
	closed     bool

	mu  sync.Mutex
	bad *pendingSig
	min atomic.Int64 // ord of bad, or MaxInt64
}

// A batch of signatures to check holds at most sigBatch records or
// sigBatchBytes bytes of messages (plus one record), which bounds the
// memory the pool holds.
const (
	sigBatch      = 256
	sigBatchBytes = 4 << 20
)

func newSigPool(pub ed25519.PublicKey, workers int, checked *atomic.Int64) *sigPool {
	p := &sigPool{pub: pub, jobs: make(chan []pendingSig, 2*workers), checked: checked}
	p.min.Store(math.MaxInt64)
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *sigPool) work() {
	defer p.wg.Done()
	for batch := range p.jobs {
		for i := range batch {
			s := &batch[i]
			if s.ord > p.min.Load() {
				break // a failure earlier than this batch's rest is known
			}
			p.checked.Add(1)
			if !ed25519.Verify(p.pub, s.msg, s.sig[:]) {
				p.mu.Lock()
				if p.bad == nil || s.ord < p.bad.ord {
					p.bad = s
					p.min.Store(s.ord)
				}
				p.mu.Unlock()
				break
			}
		}
	}
}

func (p *sigPool) add(s pendingSig) {
	p.batch = append(p.batch, s)
	p.batchBytes += len(s.msg)
	if len(p.batch) == sigBatch || p.batchBytes >= sigBatchBytes {
		p.jobs <- p.batch
		p.batch = make([]pendingSig, 0, sigBatch)
		p.batchBytes = 0
	}
}

// wait verifies what remains and returns the first failure, if any. The
// pool takes no more work after it.
func (p *sigPool) wait() *pendingSig {
	p.stop()
	return p.bad
}

func (p *sigPool) stop() {
	if p.closed {
		return
	}
	p.closed = true
	if len(p.batch) > 0 {
		p.jobs <- p.batch
		p.batch = nil
	}
	close(p.jobs)
	p.wg.Wait()
}
