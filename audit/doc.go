// Package audit is nitrosign's tamper-evident decision log: its records,
// their hash chain and signatures, the enclave's producer side ([Chain]) and
// the verifier ([Verify], [VerifyFiles]) that `nitrosign audit verify` runs.
// docs/audit.md specifies the format for anyone re-implementing the
// verifier; this comment gives the design and its argument.
//
// The host stores the log (append-only JSON lines) but is trusted for
// availability only: it may drop, reorder, edit, truncate or fork records.
// Only the enclave holds the audit key. The package is linked into the
// enclave and into the CLI, and uses only the standard library.
//
// # Records
//
// A [Record] is one line: a JSON object in RFC 8785 (JCS) canonical form,
// members sorted by name, no insignificant whitespace, minimal escapes,
// integers as JSON numbers only below 2^53 (seq, time_ms) and as decimal
// strings otherwise (policy_version). [Unmarshal] accepts exactly the bytes
// [Marshal] writes and nothing else, so each record has one encoding and
// one hash. One member is optional: checkpoint, the generation of the
// newest sealed checkpoint the host had acknowledged storing, omitted when
// 0, which lets the enclave tell a replayed checkpoint at its next start
// (rule checkpoint_rollback). A record's hash is the SHA-256 of its line
// (sig included); its prev is the hash of the record before it (all zero
// for seq 1); its sig, when present, is an Ed25519 signature over
// "nitrosign audit record v1\n" (for a tree head, [TreeHeadPrefix],
// "nitrosign audit tree head v1\n") followed by the line without its sig
// member.
//
// # Signatures: every record chained, batches under signed tree heads
//
// Every record is hash-chained; not every record need be signed. A
// signature that covers the line of record n covers its prev, which is the
// hash of record n-1, whose line contains its own prev, and so on: under
// SHA-256's collision resistance and Ed25519's unforgeability, one valid
// signature covering record n together with an intact chain from record 1
// to n proves that every byte of records 1..n is what the enclave wrote.
// Signing more often adds no authenticity to a log verified as a whole; it
// only lets a record be checked alone and shortens the unsigned tail. That
// tail (records after the last signed one) is authenticated by nothing, so
// the verifier refuses it ([Unsigned]) rather than report it verified.
//
// The enclave therefore signs once per batch, not once per record:
//
//   - decision records are not signed. They are leaves of a batch: the
//     records since the previous tree head or rotate record (or, for the
//     first batch of an enclave run, from its boot record on), at most
//     [MaxBatch];
//   - a batch is closed by a tree head record ([KindTreeHead]): the batch's
//     first seq and size, the RFC 6962 Merkle root of its lines (leaf
//     SHA-256(0x00 || line), node SHA-256(0x01 || left || right)), and the
//     hash of the record before the batch (the previous tree head), signed
//     under its own prefix. Each record's inclusion in it is provable with
//     log2(size) hashes ([InclusionProof], [VerifyInclusion]), so a client
//     checks the record of its own answer without the log;
//   - every record that is not a decision (genesis, boot, key, policy,
//     freeze, rotate) is signed as well, so events can be checked alone
//     ([VerifyRecord]), and a boot record authenticates, through the chain,
//     whatever the previous run left after its last tree head;
//   - a poll of the host closes the enclave's open batch once no decision
//     in progress could join it, or it holds 32 records, or its first has
//     waited 1 ms (enclave.BatchCloseRecords, enclave.BatchCloseDelay),
//     and hands over records up to the last signed one; an answer leaves
//     the enclave only once the host has acknowledged, after fsync, a
//     signed record at or after its record (the tree head of its batch).
//     At low load a batch is the records of the decisions under way; under
//     load it is everything appended while the host wrote the previous
//     batch, so signatures follow the host's fsyncs and the batch rule,
//     not the requests. [Chain] signs without holding the
//     lock appends need (they wait for the signed line, whose hash is their
//     prev).
//
// Logs written before tree heads existed (every record signed, or at least
// one in MaxUnsigned+1 and the last of each batch) have no tree head and
// verify as they always did; a log may switch formats at a boot record.
//
// Verification follows the same argument. The verifier parses every line
// strictly and checks every link of the chain (SHA-256 over each line),
// and every tree head: its form, that its batch starts where the previous
// batch, rotate record or enclave run left off, and, when the batch's
// records were read, its root (a second SHA-256 of each line) and previous
// head ([BadTreeHead] when a head signed by the audit key is wrong, which
// only a faulty enclave writes). It checks signatures only at checkpoints:
// the last signed record once at least 1024 records (or 8 MiB of signed
// records) have passed, and the last signed record of the log. If a
// checkpoint's signature verifies, the intact chain carries it to every
// record before it; if it does not, the verifier checks the signed records
// since the previous checkpoint, which it keeps, in order, and names the
// first bad one. One million records (584 MB, batches of 8) verify in
// seconds on one core (BenchmarkVerify1M; docs/audit.md has the figures).
// [VerifyOptions].AllSignatures checks every signature as well, in
// parallel on all cores (about 50 µs each): that catches a record whose
// own signature is wrong although a later signed record commits to it,
// which only a faulty enclave writes.
//
// # What the verifier reports
//
// [Verify] reads the whole log and returns a [Report], or an [*Error]
// naming the first problem by line, sequence number and kind:
//
//   - [Malformed]: a line that is not a canonical record, including an empty
//     line, a line over the size cap, and a last line without newline;
//   - [Missing]: a gap in the sequence numbers, a segment that does not end
//     with a rotate record, a log that ends before the known head
//     ([VerifyOptions].ExpectHead);
//   - [Reordered]: a record before one it should follow (the expected record
//     comes later), or a verbatim duplicate;
//   - [Edited]: a record that is not what the next record's prev commits to
//     (its own signature fails, or the next record is authentic), or a
//     record whose prev is wrong and that nothing authenticates;
//   - [Forked]: two different records for one sequence number, both
//     authenticated by the audit key (or a record that differs from the
//     known head): the enclave continued from an older head, as after a
//     replayed sealed state;
//   - [BadSignature]: a record the chain commits to whose signature fails,
//     such as a log signed by another key or a forged record at the end;
//   - [Unsigned]: records after the last signed one;
//   - [BadTreeHead]: a tree head, signed by the audit key, whose batch or
//     root is not what the records before it give.
//
// A log that verifies may still carry warnings ([Report].Warnings): boot
// records naming a rollback the enclave detected at start
// ([RollbackRules]: audit_rollback, checkpoint_rollback,
// seed_generation_rollback, see [RollbackRuleNames]), and a checkpoint
// member lower than the previous record's ([WarnCheckpointDecrease]). They are not breaks of the
// chain (the enclave wrote those records), but events to look at.
//
// Truncation after a signed record is invisible without a head known from
// elsewhere (the attested audit head, an earlier report, an S3 object
// name), and so is a fork whose other branch the host has thrown away:
// pass ExpectHead to catch both.
//
// # Rotation
//
// A log is split into segments by a rotate record, the last record of each
// segment; the next segment's first record continues the chain. A rotate
// record closes the open batch and is in none, so a batch never spans two
// segments.
// [VerifyFiles] verifies segments in order, requiring every file but the
// last to end with a rotate record, and the last not to (unless ExpectHead
// says where the log ends), so that a missing segment, first, middle or
// last, is detected. A segment can be verified alone with FromSeq and
// FromHash (the head of the previous segment).
package audit
