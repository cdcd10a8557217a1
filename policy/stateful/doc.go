// Package stateful owns the stateful rules of a policy: the rules that
// need memory across requests (rolling limits, velocity, freezes) or that
// hold a request back (approval thresholds). It holds their configuration
// as the policy document writes it ([KeyConfig], which policy.KeyRule
// embeds), its validation and compiled form ([Compile], called by package
// policy for each key, and [Rules], which the policy hands out whole), how
// a change of it classifies for the governance time lock ([Diff], called
// by policy.Diff for each key), the enclave's memory of what has been
// signed (the [Tracker]: usage of rolling limits, transaction-count
// velocity, refusal counts for sticky freezes, with compact, deterministic
// snapshots for sealed checkpoints), the freezes in force ([Freezes]), and
// the approval thresholds ([NeedsApproval]). docs/limits.md describes the
// Tracker for operators and gives the snapshot format, docs/policy.md the
// configuration; this comment gives the design and its argument.
//
// It is shared code, pure and deterministic: no I/O, no secrets, nothing
// of the enclave. The enclave holds its state (a Tracker, a Freezes) and
// orchestrates it: it reads the rules in force from the policy (a
// [Source], whose KeyRules gives a key's [Rules]: [TrackerRules],
// [TrackerOptions]; a [ViewSource] also shares them read only, without a
// copy per request), turns each allowed decision
// into [Spend] values ([Spends] of policy.Decision.Counted, a [Counted]
// list), reserves them, appends the audit records of freezes, and seals
// the snapshots. The CLI's policy review parses the configuration. Nothing
// in the package reads the clock: every method takes the time from its
// caller, so it is deterministic given the times it is handed. It uses the
// standard library and packages ethtx, stamp and api/refusal.
//
// # Rule ids
//
// Each rule a Tracker enforces has a [RuleID]: its [Kind] (rolling limit,
// velocity), its key and its index among the key's rules of that kind in
// the policy. [Kind.Rule] is the one map from a kind to the refusal rule
// (error.rule) a refusal by such a rule names; [RuleID.String] is the id's
// form in refusals and audit records ("rolling_limit:hot:0",
// "velocity:hot"), and [ParseRuleID] reads it back strictly. Snapshots
// key usage by scope and window, not by id, so ids never reach the sealed
// state.
//
// # A new stateful rule
//
// A new stateful rule is written here, plus its refusal rule and, for a
// rule that the Tracker's Reserve does not apply, its call in the
// enclave. Before this package owned them (commit 7f43a4e) one touched 11
// files in 4 packages: policy/policy.go (the KeyRule field),
// policy/stateful.go (JSON and compiled types, compilation, the Policy
// accessor), policy/compile.go (the keyRule field), policy/diff.go (how a
// change of it classifies), enclave/limits/limits.go, snapshot.go and
// reconfigure.go (tracked state), enclave/guard.go (the tracker's rules,
// with ids built as strings, or the freeze and threshold logic),
// enclave/sign.go and enclave/approvals.go (where it is applied, at
// admission and at the re-decision of a held request), and
// api/refusal/refusal.go (its refusal rule). After that move it still
// touched the four files of package policy, one field or accessor each.
// Now package policy holds a key's stateful sections as one embedded
// [KeyConfig] and its compiled rules as one [Rules], hands them out whole
// (policy.Policy.KeyRules, the [Source]), and has [Diff] classify their
// changes, so a new rule touches:
//
//   - config.go: its JSON type and a field of [KeyConfig] (with its JSON
//     name, omitempty: package policy's document, strict decoding and
//     canonical encoding take it as they are), its compiled type and a
//     field of [Rules] (and of [Rules.Clone]), its checks in [Compile];
//   - diff.go: its fields in diffFields, and how a change of it classifies
//     in [Diff] (and in [DiffRemovedKey] if it protects other keys, as a
//     freeze of scope all does), with a case per field in diff_test.go;
//   - the file of its logic: enforce.go (a function of a [Source] and a
//     decision's [Counted]), freeze.go, or limits.go with snapshot.go and
//     reconfigure.go when the Tracker keeps state for it (then
//     [TrackerRules] in enforce.go gives it its ids);
//   - ruleid.go: a [Kind] and the one map to its refusal rule, when the
//     Tracker enforces it;
//   - api/refusal/refusal.go: its refusal rule, if new;
//   - only for a rule that the Tracker's Reserve does not apply (as
//     approvals and freezes): its call in the enclave (enclave/guard.go,
//     and sign.go and approvals.go at the points of decision);
//   - docs/policy.md (the section), docs/limits.md (its state), and
//     docs/api.md (its refusal).
//
// A new kind of Tracker limit thus needs no change outside this package
// but its refusal rule and docs: TrackerRules gives it its id, Reserve
// applies it, and the snapshot and checkpoints carry it.
//
// # Deciding: reserve, sign, commit or release
//
// The enclave calls [Tracker.Reserve] before it signs. Reserve checks every
// limit that applies and, if all hold, records the transaction's amounts at
// once, under one lock: a reserved amount counts against the limits from
// that moment, so two concurrent requests cannot both fit in the same
// remaining budget. After signing, the enclave calls [Reservation.Commit];
// if it does not sign (an audit record could not be persisted, say), it
// calls [Reservation.Release], which takes the amounts back out.
// [Tracker.Check] answers the same question without reserving.
//
// # Rolling windows in buckets
//
// A rule limits the sum of the spends of a key, on a chain, in an asset
// (and, if it names one, to a destination) in every window of its length:
// a request fits if its matching spends plus the usage in (now−window, now]
// are at most the rule's Max. Keeping every spend would take memory that
// grows with traffic, so usage is kept in time buckets: each window is cut
// into Options.BucketsPerWindow (N, default 64) buckets of width
// w = ⌈window/N⌉, aligned to the Unix epoch, and a track of N+2 buckets
// holds the usage of one scope and window. Rules with the same scope and
// window share a track; a spend is added to every track whose scope it
// matches. Memory is fixed by the rules: about 40 bytes a bucket, whatever
// the traffic.
//
// Bucketing can only overcount. A bucket leaves the sum only when its last
// instant has left the window, so every amount spent inside the window is
// counted, and an amount is counted for at most w − 1 ns longer than the
// window (a 24 h window with N = 64 forgets a spend between 24 h and
// 24 h 22.5 min after it). The limit is therefore never exceeded in any
// window, exactly as if it were computed from every spend; the cost is that
// budget comes back up to one bucket late. Time never goes backward in a
// Tracker (an earlier now counts as the latest one seen), which can only
// delay expiry further.
//
// A velocity limit is a track of the same kind counting transactions (one
// per Reserve of the key) instead of amounts.
//
// # Refusal counts
//
// [Tracker.RecordRefusal] counts refusals per key in buckets of
// Options.RefusalWindow/64, for sticky freezes ("N refusals in a window
// freeze the key"); [Tracker.Refusals] counts those in a window, erring
// high by at most one bucket. Memory is bounded by Options.MaxRefusalKeys:
// when every counted key still has refusals in the window, a new key's
// refusals go to an overflow counter that Refusals adds to every key's
// count, so a refusal is never lost, only attributed to more keys.
//
// # Snapshots and restarts
//
// [Tracker.MarshalBinary] and [Tracker.Checkpoint] write the state: every
// live bucket of every track, the refusal counts, a generation that each
// checkpoint increments, and the time of the snapshot; [Restore] reads one
// back under a strict, size-capped decoder. Reserved amounts are in the
// snapshot whether or not they were committed (the safe side). Usage is
// kept by scope (key, chain, asset, destination or "any") and window, not by
// rule ID, so a policy change keeps it: see [Restore].
//
// # Policy changes at run time
//
// A running Tracker is reconfigured in place, never replaced by another:
// [Tracker.Reconfigure] puts a [Config] (checked beforehand by [NewConfig],
// so that applying it cannot fail) in force under the Tracker's lock. Tracks
// whose scope and window stay are kept as the same objects, so outstanding
// Reservations keep acting on live state; new tracks take the usage of the
// old ones as Restore takes a snapshot's; refusal counts and the checkpoint
// bookkeeping carry over. A Tracker replaced by another instead would lose
// whatever concurrent requests reserved or refused on it after its usage
// was copied.
//
// # Replay: the bounded extra budget
//
// The host stores the sealed checkpoints and may hand back an older one
// after a restart. The enclave cannot tell (it has no trusted storage that
// survives a restart), but it can bound what that buys. Let the host
// restore a checkpoint behind which n transactions were reserved, each
// adding at most P to a rule with maximum M. Their usage, H, is what the
// restored enclave does not see, and H ≤ n·P. Also H ≤ M in any window:
// the enclave that reserved them kept every window's usage at most M. After
// the restore, the enclave lets a window hold up to M of what it knows, so
// any window holds at most
//
//	M + min(M, n·P)        ([ReplayBound])
//
// and, for a velocity limit of V transactions, V + min(V, n).
//
// The bound in terms of n needs n to be small, which checkpointing
// provides. The enclave seals a checkpoint when [Tracker.NeedsCheckpoint]
// says so: after Options.CheckpointEvery (C) transactions, or once a change
// is Options.CheckpointInterval (T) old. With Options.RequireFresh the
// Tracker refuses (rule checkpoint) a transaction that would put more than
// C transactions beyond the newest checkpoint the host has acknowledged
// ([Tracker.Acknowledge]), as the audit log stops when too many records
// are unacknowledged. Then, if the host restores the newest
// acknowledged checkpoint (after a crash, or deliberately after letting the
// enclave spend), n ≤ C, and every window holds at most M + min(M, C·P).
// Without RequireFresh, n is however many transactions the enclave reserved
// before it sealed and the host stored the next checkpoint.
//
// Nothing here bounds n for an older checkpoint the host kept: it hides at
// most M (the min above), but it can do so again at every restart. Nor,
// by itself, does anything stop a host from restoring the newest
// acknowledged checkpoint again and again while it withholds newer ones:
// the enclave closes that with [Tracker.ChargeUnseen], charging at the
// restart the n transactions its audit records say the checkpoint lacks at
// their worst case, so that every window holds at most M. The enclave adds
// detection: audit records name the newest checkpoint generation the host
// acknowledged, and the checkpoint names the audit head, so a checkpoint
// older than the log says, or a log behind the checkpoint, is a named
// rollback at start that freezes every key (docs/limits.md, "The replay
// bound"). A host that rolls back the checkpoint and the log together is
// not told by the enclave; it leaves a fork that `nitrosign audit verify`
// reports against any dropped record.
package stateful
