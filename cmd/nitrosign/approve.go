package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/summary"
)

// stdin is where `nitrosign approve` reads its confirmation (tests replace
// it).
var stdin io.Reader = os.Stdin

const approveUsage = `usage: nitrosign approve --id ID --key PEM --name NAME [--host URL] [--reject] [--yes]

Approves (or, with --reject, rejects) a sign request that waits for
approvals. The request is fetched from the host (GET /v1/approvals/ID) and
decoded HERE, on this machine: what is shown as the local decoding is what
you approve, not the host's account of it. The approval digest is
recomputed from the request's bytes (the client's body in its compact
form, as the enclave keeps it), and a host whose digest differs is
refused. Your key signs that digest (approve and reject are different
signing domains), and the decision is sent to POST /v1/approvals.

Without --yes, you are asked to type "yes" after reading the request; a
standard input that is closed or ends without an answer is a refusal.
--yes, for scripts, decides without the question (the request is still
printed), but never past a server summary that differs from the local
decoding.

Exit status: 0 when the decision was recorded (or the request was already
signed), 1 when anything failed or was refused, 2 for a bad command line.

Flags:
`

func runApprove(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("approve", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, approveUsage); fs.PrintDefaults() }
	hostURL := fs.String("host", defaultHost, "host API base `URL`")
	id := fs.String("id", "", "approval `id` (from the 202 answer to the sign request)")
	keyPath := fs.String("key", "", "your approver private key, PKCS#8 PEM `file` (Ed25519 or P-256)")
	name := fs.String("name", "", "your approver `name` in the policy")
	reject := fs.Bool("reject", false, "reject the request instead of approving it")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	timeout := fs.Duration("timeout", 30*time.Second, "request `timeout`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == "" || *keyPath == "" || *name == "" {
		return usageError{errors.New("--id, --key and --name are required")}
	}
	pemBytes, err := os.ReadFile(*keyPath)
	if err != nil {
		return fmt.Errorf("approver key: %w", err)
	}
	signer, err := stamp.ParseSignerPEM(pemBytes)
	if err != nil {
		return fmt.Errorf("approver key %s: %w", *keyPath, err)
	}
	decision, verb := api.DecisionApprove, "approve"
	if *reject {
		decision, verb = api.DecisionReject, "reject"
	}

	c, err := client.New(*hostURL, nil, &client.Options{Timeout: *timeout})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	p, err := c.Approval(ctx, *id)
	cancel()
	if err != nil {
		return fmt.Errorf("fetching approval %s: %w", *id, err)
	}
	switch p.Status {
	case api.StatusPendingApproval:
	case api.StatusSigned:
		printState(stdout, p)
		fmt.Fprintln(stdout, "The request is already approved and signed: nothing to do.")
		return printResult(stdout, p.Result)
	default:
		printState(stdout, p)
		return fmt.Errorf("approval %s is %s: nothing to %s", *id, printable(p.Status), verb)
	}
	// The digest you sign is recomputed from the bytes you decode.
	digest, err := client.CheckApproval(p)
	if err != nil {
		return err
	}
	printState(stdout, p)
	v, err := review(stdout, p, digest)
	if err != nil {
		if !*reject {
			return fmt.Errorf("%v: refusing to approve a request that does not decode here", err)
		}
		fmt.Fprintf(stdout, "\nThe request does not decode here (%v); rejecting it anyway.\n", err)
	}
	if v.mismatch && *yes {
		return errors.New("the server's summary differs from the local decoding (see above): refusing with --yes; run without --yes to decide after reading both")
	}

	if !*yes {
		fmt.Fprintf(stdout, "\n%s approval %s as %s, signing approval digest 0x%x?\nType \"yes\" to %s (scripts: run with --yes instead): ", strings.ToUpper(verb[:1])+verb[1:], *id, *name, digest, verb)
		if err := confirm(stdin); err != nil {
			return err
		}
	}
	req, err := client.NewApproval(signer, *name, *id, decision, digest)
	if err != nil {
		return err
	}
	// A fresh deadline: the person may have taken their time to read.
	ctx, cancel = context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	sr, pending, err := c.Approve(ctx, req)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Code == refusal.CodeApprovalRejected && *reject:
		fmt.Fprintf(stdout, "Rejected: approval %s will not be signed.\n", *id)
		return nil
	case errors.As(err, &ae):
		return fmt.Errorf("refused (HTTP %d, %s): %s", ae.Status, ae.Code, ae.Message)
	case err != nil:
		return err
	case pending != nil:
		fmt.Fprintf(stdout, "Recorded: %d of %d approvals (%s); waiting for more.\n", len(pending.Approvals), pending.Quorum, printable(strings.Join(pending.Approvals, ", ")))
		return nil
	}
	fmt.Fprintln(stdout, "Quorum met: the enclave signed the request.")
	return printResult(stdout, sr)
}

// confirm reads one line from r and accepts only "yes". Anything else is a
// refusal that says what was read: pasting several commands at once makes
// the next command the answer to this one's question, and the person must
// see that. A standard input that is closed, or ends before an answer (a
// script, a pipe, </dev/null), is refused at once, naming --yes, rather
// than taken for a no in silence.
func confirm(r io.Reader) error {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	answer := strings.TrimSpace(line)
	switch {
	case answer == "yes":
		return nil
	case answer == "" && err != nil:
		return errors.New("not confirmed: standard input ended without an answer (not a terminal?); nothing was signed or sent. Run with --yes to decide without the question")
	case len(answer) > 100:
		answer = answer[:100] + "…"
	}
	return fmt.Errorf("not confirmed: the answer was %s, not \"yes\" (the next line of a paste answers the question: paste one approve at a time, or use --yes); nothing was signed or sent", strconv.Quote(answer))
}

const approvalsUsage = `usage: nitrosign approvals show --id ID [--host URL] [--json]

Shows a request that waits for approvals (or was decided): its state, its
local decoding and the server's summary, and the signature once approved.
`

var approvalsSubcommands = subcommands{"show": runApprovalsShow}

func runApprovals(args []string, stdout, stderr io.Writer) error {
	return runSubcommands(approvalsUsage, approvalsSubcommands, args, stdout, stderr)
}

func runApprovalsShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("approvals show", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, approvalsUsage+"\nFlags:\n"); fs.PrintDefaults() }
	hostURL := fs.String("host", defaultHost, "host API base `URL`")
	id := fs.String("id", "", "approval `id`")
	asJSON := fs.Bool("json", false, "print the host's answer as JSON, unchecked")
	timeout := fs.Duration("timeout", 30*time.Second, "request `timeout`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return usageError{errors.New("--id is required")}
	}
	c, err := client.New(*hostURL, nil, &client.Options{Timeout: *timeout})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	p, err := c.Approval(ctx, *id)
	if err != nil {
		return fmt.Errorf("fetching approval %s: %w", *id, err)
	}
	if *asJSON {
		out, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", out)
		return nil
	}
	digest, err := client.CheckApproval(p)
	if err != nil {
		return err
	}
	printState(stdout, p)
	if _, err := review(stdout, p, digest); err != nil {
		fmt.Fprintf(stdout, "\nThe request does not decode here: %v\n", err)
	}
	if p.Result != nil {
		fmt.Fprintln(stdout)
		return printResult(stdout, p.Result)
	}
	return nil
}

// printState prints the pending request's state as the host reports it.
func printState(w io.Writer, p *api.PendingResponse) {
	fmt.Fprintf(w, "approval   %s\n", printable(p.ApprovalID))
	fmt.Fprintf(w, "status     %s\n", printable(p.Status))
	names := "none yet"
	if len(p.Approvals) > 0 {
		names = printable(strings.Join(p.Approvals, ", "))
	}
	fmt.Fprintf(w, "approvals  %d of %d: %s\n", len(p.Approvals), p.Quorum, names)
	if p.ExpiresAtMS > 0 {
		fmt.Fprintf(w, "expires    %s\n", time.UnixMilli(p.ExpiresAtMS).UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "audit seq  %d\n", p.AuditSeq)
}

func printResult(w io.Writer, sr *api.SignResponse) error {
	if sr == nil {
		return nil
	}
	out, err := json.MarshalIndent(sr, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s\n", out)
	return nil
}

// reviewed is what review found.
type reviewed struct {
	// mismatch is set when the server's summary differs in substance from
	// the local decoding.
	mismatch bool
}

// review decodes the request locally and prints the local summary, then the
// server's for comparison, with a loud warning when they differ in
// substance. It returns an error (having printed nothing of the request)
// when the request does not decode.
func review(w io.Writer, p *api.PendingResponse, approvalDigest [32]byte) (reviewed, error) {
	loc, err := decodeLocally([]byte(p.Request))
	if err != nil {
		return reviewed{}, err
	}
	fmt.Fprintf(w, "\n== LOCAL decoding of the request (decoded on this machine: this is what you decide on) ==\n")
	fmt.Fprintf(w, "client request  %s, stamped %s\n", loc.req.RequestID, time.UnixMilli(loc.req.TimestampMS).UTC().Format(time.RFC3339))
	fmt.Fprint(w, loc.shown.String())
	fmt.Fprintf(w, "approval digest: 0x%x (recomputed here from the request's bytes; matches the server's)\n", approvalDigest)

	fmt.Fprintf(w, "\n== server's summary (from the host; for comparison only; it may add the policy's labels) ==\n")
	for _, l := range p.SummaryLines {
		fmt.Fprintln(w, printable(l.Key+": "+shownValue(l)))
	}
	diffs := compareSummaries(loc, p.SummaryLines)
	if len(diffs) == 0 {
		fmt.Fprintln(w, "\nThe server's summary agrees with the local decoding (labels and token units aside).")
		return reviewed{}, nil
	}
	fmt.Fprintln(w, "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!")
	fmt.Fprintln(w, "!!! WARNING: THE SERVER'S SUMMARY DIFFERS FROM THE LOCAL DECODING.")
	fmt.Fprintln(w, "!!! Others may be shown something other than what would be signed.")
	fmt.Fprintln(w, "!!! Decide on the LOCAL decoding only, and report this.")
	for _, d := range diffs {
		fmt.Fprintf(w, "!!! - %s\n", d)
	}
	fmt.Fprintln(w, "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!")
	return reviewed{mismatch: true}, nil
}

// shownValue is a server line's value as it is shown, labels in place, or
// its bare value when its labels are malformed (compareSummaries reports
// them).
func shownValue(l api.SummaryLine) string {
	v, err := l.Shown()
	if err != nil {
		return l.Value
	}
	return v
}

// local is a request decoded on this machine.
type local struct {
	req *api.SignRequest
	// sum is the request's summary without a policy: no labels, token
	// amounts in raw units, its Values those the enclave computes.
	sum summary.Summary
	// shown is sum as printed here, its "from" line saying what is known
	// here of the signing key.
	shown summary.Summary
	// keyAddr is the signing key's address when the request names the key
	// by it.
	keyAddr *ethtx.Address
}

// decodeLocally decodes a sign request body as the enclave does (package
// api/request: the same decoder, the same rules) and summarises it with
// package summary, without a policy: no labels, token amounts in raw units,
// and the signing key by the name the request gives (its address is the
// enclave's to know).
func decodeLocally(body []byte) (*local, error) {
	r, err := request.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req := r.Body
	loc := &local{req: req}
	key := summary.Key{ID: req.Key}
	from := "key " + strconv.Quote(req.Key) + " (its address is not known here)"
	if a, err := ethtx.ParseAddress(req.Key); err == nil {
		key.Address, loc.keyAddr = a, &a
		from = a.Hex() + " (the signing key, named by its address)"
	}
	loc.sum = summary.Request(r, key, nil)
	loc.shown.Lines = slices.Clone(loc.sum.Lines)
	for i := range loc.shown.Lines {
		if loc.shown.Lines[i].Key == "from" {
			loc.shown.Lines[i] = summary.Line{Key: "from", Value: from}
		}
	}
	return loc, nil
}

// compareSummaries compares the local summary with the server's, line by
// line, and returns the differences in substance: a different digest, a
// line missing or added, a key or a value that differs, a "from" line that
// does not name the key the request names, or a label that is not one. The
// labels (what the policy and the enclave's key store add) are fields of
// their own, ignored as such: the Values are compared byte for byte, and a
// label inside a value is a different value. A label may only follow an
// address or show a raw token amount in units, and never names an
// address: one that would make the server's text say something else of
// the request than its values is reported.
func compareSummaries(loc *local, server []api.SummaryLine) []string {
	var diffs []string
	serverDigest, found := "", false
	for _, l := range server {
		if l.Key == "digest" {
			serverDigest, found = l.Value, true
		}
	}
	for _, l := range loc.sum.Lines {
		if l.Key == "digest" && serverDigest != l.Value {
			if !found {
				diffs = append(diffs, fmt.Sprintf("the server's summary names no signing digest; the local decoding signs %s", l.Value))
			} else {
				diffs = append(diffs, fmt.Sprintf("signing digest: the server says %s, the local decoding computes %s", printable(serverDigest), l.Value))
			}
		}
	}
	if len(server) != len(loc.sum.Lines) {
		diffs = append(diffs, fmt.Sprintf("the server's summary has %d lines, the local decoding %d", len(server), len(loc.sum.Lines)))
	}
	for i, sl := range server {
		if _, err := sl.Shown(); err != nil {
			diffs = append(diffs, fmt.Sprintf("line %d: malformed labels: %s", i+1, printable(err.Error())))
			continue
		}
		for _, d := range checkLabels(sl) {
			diffs = append(diffs, fmt.Sprintf("%s: %s", printable(sl.Key), d))
		}
		if i >= len(loc.sum.Lines) {
			continue
		}
		l := loc.sum.Lines[i]
		switch {
		case sl.Key != l.Key:
			diffs = append(diffs, fmt.Sprintf("line %d: the server shows %s where the local decoding shows %q", i+1, printable(sl.Key+": "+shownValue(sl)), l.Key+": "+l.Value))
		case l.Key == "from":
			// The key's address, id and path are the enclave's to know;
			// the key must be the one the request names.
			if !namesKey(sl, loc) {
				diffs = append(diffs, fmt.Sprintf("from: the server shows %s, not the key the request names (%q)", printable(shownValue(sl)), loc.req.Key))
			}
		case l.Key == "digest":
			// Compared above.
		case sl.Value != l.Value:
			diffs = append(diffs, fmt.Sprintf("%s: the server shows %s, the local decoding %q", l.Key, printable(shownValue(sl)), l.Value))
		}
	}
	return diffs
}

// namesKey reports whether the server's "from" line names the key the
// request names: by its address (the line's value), or by its id (the
// label after the address: " (key ID, PATH)").
func namesKey(sl api.SummaryLine, loc *local) bool {
	if !isAddress(sl.Value) {
		return false
	}
	if loc.keyAddr != nil {
		return sl.Value == loc.keyAddr.Hex()
	}
	return len(sl.Labels) == 1 && sl.Labels[0].At == len(sl.Value) &&
		strings.HasPrefix(sl.Labels[0].Text, " (key "+loc.req.Key+", ")
}

// checkLabels returns what is wrong with the labels of a server line whose
// labels are in order and within its value: a label must follow an
// address (its label, its token's name, the signing key's id and path,
// "this key"), or show a raw token amount ("N (raw units of 0x…)", the
// whole start of the value) in units with the same digits, and it must not
// name an address.
func checkLabels(l api.SummaryLine) []string {
	var out []string
	for _, lb := range l.Labels {
		switch {
		case containsAddress(lb.Text):
			out = append(out, fmt.Sprintf("the label %s names an address: labels are not checked here, and an address in one may pass for the request's", printable(strconv.Quote(lb.Text))))
		case lb.At == lb.End && !addressEndsAt(l.Value, lb.At):
			out = append(out, fmt.Sprintf("the label %s does not follow an address", printable(strconv.Quote(lb.Text))))
		case lb.At != lb.End && !unitsOf(l.Value[lb.At:lb.End], lb.At, lb.Text):
			out = append(out, fmt.Sprintf("the label %s shows %s, which is not that raw token amount in units", printable(strconv.Quote(lb.Text)), printable(strconv.Quote(l.Value[lb.At:lb.End]))))
		}
	}
	return out
}

// isAddress reports whether s is an address: 0x and 40 hex digits.
func isAddress(s string) bool {
	if len(s) != 42 || s[:2] != "0x" {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isWordByte(c byte) bool {
	return isHex(c) || 'g' <= c && c <= 'z' || 'G' <= c && c <= 'Z' || c == '_'
}

// addressEndsAt reports whether a whole address (not part of a longer
// word, such as a digest) ends at offset i of s.
func addressEndsAt(s string, i int) bool {
	if i < 42 || !isAddress(s[i-42:i]) {
		return false
	}
	return (i == 42 || !isWordByte(s[i-43])) && (i == len(s) || !isWordByte(s[i]))
}

// containsAddress reports whether s holds 0x and 40 hex digits anywhere.
func containsAddress(s string) bool {
	for i := 0; i+42 <= len(s); i++ {
		if (s[i+1] == 'x' || s[i+1] == 'X') && s[i] == '0' && isAddress("0x"+s[i+2:i+42]) {
			return true
		}
	}
	return false
}

// unitsOf reports whether units (at offset at of the value) is raw, a raw
// amount "N (raw units of 0x…)" at the start of the value, in a token's
// units: "D SYMBOL", D the same digits as N with a decimal point
// (ethtx.FormatUnits).
func unitsOf(raw string, at int, units string) bool {
	n, rest, ok := strings.Cut(raw, " (raw units of ")
	if at != 0 || !ok || !strings.HasSuffix(rest, ")") || !isAddress(strings.TrimSuffix(rest, ")")) || !allDigits(n) {
		return false
	}
	d, sym, ok := strings.Cut(units, " ")
	if !ok || sym == "" || strings.ContainsAny(sym, " ()") {
		return false
	}
	whole, frac, _ := strings.Cut(d, ".")
	if !allDigits(whole) || (strings.Contains(d, ".") && !allDigits(frac)) {
		return false
	}
	significant := func(s string) string { return strings.TrimRight(strings.TrimLeft(s, "0"), "0") }
	return significant(whole+frac) == significant(n)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// printable returns s as it is if every rune is graphic (spaces included),
// else quoted: text from the host may not drive the terminal (escape
// sequences, bidirectional overrides, carriage returns that overwrite a
// warning).
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
