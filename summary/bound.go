package summary

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/audit"
)

// Size caps, in escaped bytes: the bytes a text takes inside a JSON string
// of an audit record (see audit.EscapedLen).
const (
	// MaxSize caps a whole summary (its String, every line with its
	// "\n"): half of the 64 KiB an audit record may take on the host
	// protocol (proto.MaxAuditRecordLen), leaving the other half to the
	// record's other members and to the words an approval record puts
	// around the summary.
	MaxSize = 32 << 10
	// MaxLines caps a summary's number of lines.
	MaxLines = 200
	// MaxMessageLen caps the value of a personal message's line: about
	// 4,000 characters of plain text are shown whole, a typical sign-in
	// (EIP-4361) message several times over.
	MaxMessageLen = 4 << 10
	// MaxValueLen caps a string or bytes value taken from the request or
	// the policy: a typed-data string or bytes value, a domain name or
	// version, a label. About 500 bytes of a bytes value are shown.
	MaxValueLen = 1 << 10
	// MaxLineLen caps any one line value, whatever made it. The caps
	// above keep every value the summary functions make below it; a
	// value above it (a bug) is shown as a shortened string too rather
	// than break the summary's cap.
	MaxLineLen = 8 << 10
)

// reserved is what the builder keeps free below MaxSize for the lines done
// adds at the end: the "truncated" line (about 90 bytes) and the digest
// (76 bytes).
const reserved = 256

// quoteMarks is the escaped size of the two quote marks around a quoted
// value: in the record's JSON string each is written \".
const quoteMarks = 4

// lineLenShown is the escaped size of line l in String: "key: value\n",
// the value shown with its labels, given shownEscapedLen(l) (boundedLen's).
func lineLenShown(l Line, shown int) int { return audit.EscapedLen(l.Key) + 2 + shown + 2 }

// quotedPrefix returns the length n of the longest prefix of s, cut between
// runes, whose strconv.Quote form takes at most budget escaped bytes
// without its two quote marks, and whether that prefix is all of s. It
// quotes s rune by rune, as strconv.Quote does (an invalid byte is one
// rune, \xNN), and stops at the budget, so its cost is bounded by the
// budget rather than by len(s).
func quotedPrefix(s string, budget int) (n int, all bool) {
	if budget < 0 {
		return 0, false
	}
	// Printable ASCII other than the quote and the backslash is quoted
	// as itself, one escaped byte each: the labels and names a policy
	// gives mostly are, and are measured without quoting them rune by rune.
	if plainASCII(s) {
		if len(s) <= budget {
			return len(s), true
		}
		return budget, false
	}
	return quotedPrefixRunes(s, budget)
}

// quotedPrefixRunes is quotedPrefix, rune by rune.
func quotedPrefixRunes(s string, budget int) (n int, all bool) {
	var buf [32]byte // one rune quoted: at most `"\U0010ffff"`
	used := 0
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		q := strconv.AppendQuote(buf[:0], s[i:i+w])
		c := audit.EscapedLen(string(q[1 : len(q)-1]))
		if used+c > budget {
			return i, false
		}
		used += c
		i += w
	}
	return len(s), true
}

// plainASCII reports whether s holds only bytes that strconv.Quote and the
// audit record's JSON both keep as they are: printable ASCII other than
// '"' and '\\'.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// shortNote is the parenthesis that ends a shortened value: the value's
// note (its length if the note is empty) and its SHA-256.
func shortNote(note string, data []byte) string {
	if note == "" {
		note = fmt.Sprintf("%d bytes", len(data))
	}
	sum := sha256.Sum256(data)
	return " (" + note + ", sha256 " + hex.EncodeToString(sum[:]) + ")"
}

// quoteWithin renders s with strconv.Quote, followed by " (note)" if note
// is not empty, when that takes at most limit escaped bytes. Otherwise it
// renders the longest prefix of s that keeps the result within limit,
// quoted, then "..." and a note that adds s's length (if note is empty)
// and its SHA-256:
//
//	"Sign in to exa"... (13200 bytes, sha256 …64 hex digits…)
//
// The "..." follows the closing quote, where no whole value has it, so a
// shortened value cannot pass for a whole one.
func quoteWithin(s string, limit int, note string) string {
	tail := ""
	if note != "" {
		tail = " (" + note + ")"
	}
	if _, all := quotedPrefix(s, limit-quoteMarks-audit.EscapedLen(tail)); all {
		return strconv.Quote(s) + tail
	}
	short := shortNote(note, []byte(s))
	n, _ := quotedPrefix(s, limit-quoteMarks-3-audit.EscapedLen(short))
	return strconv.Quote(s[:n]) + "..." + short
}

// hexWithin renders b as 0x-prefixed hex followed by " (note)" if note is
// not empty, when that takes at most limit bytes. Otherwise it renders as
// many leading bytes as keep the result within limit, then "..." and a note
// that adds b's length (if note is empty) and its SHA-256:
//
//	0x000000…... (13200 bytes, not UTF-8, sha256 …64 hex digits…)
func hexWithin(b []byte, limit int, note string) string {
	tail := ""
	if note != "" {
		tail = " (" + note + ")"
	}
	if 2+2*len(b)+audit.EscapedLen(tail) <= limit {
		return "0x" + hex.EncodeToString(b) + tail
	}
	short := shortNote(note, b)
	k := min(len(b), max(0, (limit-2-3-audit.EscapedLen(short))/2))
	return "0x" + hex.EncodeToString(b[:k]) + "..." + short
}

// A part is a piece of a line's value: value, what the request alone
// determines, and label, what the policy or the key store adds to it when
// it is shown: after value, or, with replace, in its place.
type part struct {
	value, label string
	replace      bool
}

// text is a part without a label.
func text(s string) part { return part{value: s} }

// joinParts returns the groups of parts with sep between them.
func joinParts(groups [][]part, sep string) []part {
	var out []part
	for i, g := range groups {
		if i > 0 {
			out = append(out, text(sep))
		}
		out = append(out, g...)
	}
	return out
}

// makeLine assembles a line from its parts: their values make its Value,
// their labels its Labels, at the offsets of what they label.
//
// The labels are carved from *slab when it has room (a builder's), each
// line's slice capped at its own length so that an append to it cannot
// reach the next line's, else made in one allocation.
func makeLine(key string, parts []part, slab *[]Label) Line {
	l := Line{Key: key}
	// The value is made in one allocation (none for one part), the labels
	// in one: a summary is made for every request.
	size, labels := 0, 0
	for _, p := range parts {
		size += len(p.value)
		if p.label != "" {
			labels++
		}
	}
	switch {
	case labels == 0:
	case slab != nil && cap(*slab)-len(*slab) >= labels:
		n := len(*slab)
		l.Labels = (*slab)[n : n : n+labels]
		*slab = (*slab)[:n+labels]
	default:
		l.Labels = make([]Label, 0, labels)
	}
	var v strings.Builder
	if len(parts) > 1 {
		v.Grow(size)
	}
	for _, p := range parts {
		at := v.Len()
		if len(parts) == 1 {
			l.Value = p.value
		} else {
			v.WriteString(p.value)
		}
		end := at + len(p.value)
		switch {
		case p.label == "":
		case p.replace:
			l.Labels = append(l.Labels, Label{At: at, End: end, Text: p.label})
		default:
			l.Labels = append(l.Labels, Label{At: end, End: end, Text: p.label})
		}
	}
	if len(parts) > 1 {
		l.Value = v.String()
	}
	return l
}

// builder collects lines within MaxLines and MaxSize: as Lines, or, in
// text mode (textMode), as the text Summary.String makes of them, written
// as they come. Both modes keep and drop the same lines, by the same
// sizes; TestTextMode and FuzzTransactionText check that the text is
// String's.
type builder struct {
	lines   []Line
	labels  []Label // room for the lines' labels (makeLine)
	size    int     // escaped size of lines
	dropped int

	textMode bool
	text     strings.Builder // in text mode: the lines so far
	kept     int             // in text mode: how many
}

// count is the number of lines kept so far.
func (b *builder) count() int {
	if b.textMode {
		return b.kept
	}
	return len(b.lines)
}

// partEscapedLen is the escaped size of what p shows: its value, its
// label in its value's place, or its value then its label (makeLine).
func partEscapedLen(p part) int {
	switch {
	case p.label == "":
		return audit.EscapedLen(p.value)
	case p.replace:
		return audit.EscapedLen(p.label)
	}
	return audit.EscapedLen(p.value) + audit.EscapedLen(p.label)
}

// writeText writes the line of key and parts as String does: "key: ",
// the parts as shown (partEscapedLen), "\n".
func (b *builder) writeText(key string, parts []part) {
	b.text.WriteString(key)
	b.text.WriteString(": ")
	for _, p := range parts {
		switch {
		case p.label == "":
			b.text.WriteString(p.value)
		case p.replace:
			b.text.WriteString(p.label)
		default:
			b.text.WriteString(p.value)
			b.text.WriteString(p.label)
		}
	}
	b.text.WriteByte('\n')
}

// escapedLenBytes is audit.EscapedLen(string(v)), without the string when
// v has no byte that is escaped (as the numbers and hex digits written
// from buffers have none).
func escapedLenBytes(v []byte) int {
	for _, c := range v {
		if c < 0x20 || c == '"' || c == '\\' {
			return audit.EscapedLen(string(v))
		}
	}
	return len(v)
}

// addBytes is addText(key, string(v)), without the string in text mode.
func (b *builder) addBytes(key string, v []byte) {
	shown := 0
	if b.textMode {
		shown = escapedLenBytes(v)
	}
	if !b.textMode || shown > MaxLineLen || b.dropped > 0 || b.count() >= MaxLines-2 {
		b.addText(key, string(v))
		return
	}
	if n := lineLenShown(Line{Key: key}, shown); b.size+n <= MaxSize-reserved {
		b.text.WriteString(key)
		b.text.WriteString(": ")
		b.text.Write(v)
		b.text.WriteByte('\n')
		b.size += n
		b.kept++
		return
	}
	b.dropped++
}

// finishBytes is finish(key, string(v)), without the string in text mode.
func (b *builder) finishBytes(key string, v []byte) {
	if !b.textMode || escapedLenBytes(v) > MaxLineLen {
		b.finish(key, string(v))
		return
	}
	b.writeTruncated()
	b.text.WriteString(key)
	b.text.WriteString(": ")
	b.text.Write(v)
	b.text.WriteByte('\n')
}

// addTextMode is addParts in text mode, after the line cap passed.
func (b *builder) addTextMode(key string, parts []part) {
	shown := 0
	for _, p := range parts {
		shown += partEscapedLen(p)
	}
	if shown > MaxLineLen {
		// The rare line bounded shortens: made as a Line, as in the
		// other mode.
		l, shown := boundedLen(makeLine(key, parts, nil))
		if n := lineLenShown(l, shown); b.size+n <= MaxSize-reserved {
			b.writeText(l.Key, []part{text(l.Shown())})
			b.size += n
			b.kept++
			return
		}
		b.dropped++
		return
	}
	if n := lineLenShown(Line{Key: key}, shown); b.size+n <= MaxSize-reserved {
		b.writeText(key, parts)
		b.size += n
		b.kept++
		return
	}
	b.dropped++
}

// newBuilder returns a builder with room for lines lines and labels
// labels, made in one allocation: a summary is made for every request.
// Past that room, lines and labels are allocated as they come.
func newBuilder(lines, labels int) builder {
	type room struct {
		lines  [12]Line
		labels [4]Label
	}
	if lines > 12 || labels > 4 {
		return builder{lines: make([]Line, 0, lines), labels: make([]Label, 0, labels)}
	}
	r := new(room)
	return builder{lines: r.lines[:0:lines], labels: r.labels[:0:labels]}
}

// add adds a line, unless the summary is full: then it and every line
// after it are left out (and counted), so that what is shown is always a
// prefix of the whole. Two lines stay free for done.
func (b *builder) add(key, format string, args ...any) {
	b.addParts(key, text(fmt.Sprintf(format, args...)))
}

// addText adds a line of value alone, as add does.
func (b *builder) addText(key, value string) { b.addParts(key, text(value)) }

// addParts adds a line made of parts (makeLine), as add does.
func (b *builder) addParts(key string, parts ...part) {
	if b.dropped > 0 || b.count() >= MaxLines-2 {
		b.dropped++
		return
	}
	if b.textMode {
		b.addTextMode(key, parts)
		return
	}
	l, shown := boundedLen(makeLine(key, parts, &b.labels))
	if n := lineLenShown(l, shown); b.size+n <= MaxSize-reserved {
		b.lines = append(b.lines, l)
		b.size += n
		return
	}
	b.dropped++
}

// done adds the last line, which is always kept (the digest, which
// approvers compare), after a line saying how many were left out, and
// returns the summary.
func (b *builder) done(key, format string, args ...any) Summary {
	return b.doneText(key, fmt.Sprintf(format, args...))
}

// doneText is done with the last line's value made.
func (b *builder) doneText(key, value string) Summary {
	b.finish(key, value)
	return Summary{Lines: b.lines}
}

// finish is doneText without the summary: in text mode, where there are
// no lines, the text is b.text. (Returning nothing keeps the text's room
// on the stack.)
func (b *builder) finish(key, value string) {
	last := []part{text(value)}
	if b.textMode {
		b.writeTruncated()
		if audit.EscapedLen(value) > MaxLineLen {
			last = []part{text(bounded(makeLine(key, last, nil)).Value)}
		}
		b.writeText(key, last)
		return
	}
	if b.dropped > 0 {
		b.lines = append(b.lines, b.truncated())
	}
	b.lines = append(b.lines, bounded(makeLine(key, last, nil)))
}

// truncated is the line that says how many lines were left out.
func (b *builder) truncated() Line {
	return Line{Key: "truncated", Value: fmt.Sprintf("%d more lines (a summary holds at most %d lines, %d bytes)", b.dropped, MaxLines, MaxSize)}
}

// writeTruncated writes the truncated line in text mode, if lines were
// left out.
func (b *builder) writeTruncated() {
	if b.dropped > 0 {
		l := b.truncated()
		b.writeText(l.Key, []part{text(l.Value)})
	}
}

// bounded caps a line's value, as shown, at MaxLineLen. A line above it
// (a bug: the caps on what makes a value keep every line below it) is
// shown as a shortened string of what it showed, without labels: its
// substance then differs from a decoding without the policy, which the
// comparison reports, failing closed.
func bounded(l Line) Line {
	l, _ = boundedLen(l)
	return l
}

// boundedLen is bounded, with shownEscapedLen of the line it returns: the
// builder counts a line's size from it rather than escape-count the line
// a second time.
func boundedLen(l Line) (Line, int) {
	n := shownEscapedLen(l)
	if n > MaxLineLen {
		l = Line{Key: l.Key, Value: quoteWithin(l.Shown(), MaxLineLen, "")}
		n = shownEscapedLen(l)
	}
	return l, n
}
