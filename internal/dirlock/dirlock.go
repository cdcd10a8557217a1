// Package dirlock keeps two daemons off one data directory.
//
// # Why
//
// The host appends the enclave's audit records to DataDir/audit-*.log and
// stores its sealed blobs there. Two hosts (or a host and `nitrosign dev`)
// on one directory would both start, both append, and fork the audit log:
// `nitrosign audit verify` would then report a fork that no attacker made.
// So each of them takes the directory's lock before it touches anything in
// it, and the second one refuses to start, naming the holder.
//
// # How
//
// The lock is flock(2) on DataDir/nitrosign.lock (FileName), held for the
// life of the process. The kernel drops it when the holder's file is closed,
// which includes every way a process can end (kill -9, a crash, an OOM
// kill): a lock is never stale, and nothing ever has to be deleted by hand.
// The file's content only names the holder, for the refusal's message: the
// pid, hostname, program and start time, as one JSON object. It is
// rewritten by each new holder and never trusted for anything else; a
// holder that has not yet written its name, or a content that does not
// parse, is reported as such.
//
// The lock is advisory: it keeps out nitrosign's own programs, which all
// take it, not a person with a shell.
//
// # Platforms
//
// The lock is taken on Linux, where the host runs in production. On other
// systems (a developer's laptop) Acquire writes the holder's name but
// takes no lock, and says so in Lock.Enforced.
package dirlock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// FileName is the lock file's name in the data directory.
const FileName = "nitrosign.lock"

// MaxHolderSize caps the lock file's content that is read and parsed.
const MaxHolderSize = 1024

// Caps of a Holder's fields.
const (
	maxHostname = 255 // HOST_NAME_MAX and RFC 1035
	maxProgram  = 64
)

// A Holder names the process that holds a data directory's lock.
type Holder struct {
	// PID is the holder's process id.
	PID int `json:"pid"`
	// Hostname is the machine it runs on (a data directory on a network
	// file system may be shared by several).
	Hostname string `json:"hostname"`
	// Program is what it is: "nitrosign-host" or "nitrosign dev".
	Program string `json:"program"`
	// StartedAt is when it took the lock (RFC 3339, UTC).
	StartedAt time.Time `json:"started_at"`
}

// holderJSON is a Holder as written: time as RFC 3339 text, parsed strictly.
type holderJSON struct {
	PID       int    `json:"pid"`
	Hostname  string `json:"hostname"`
	Program   string `json:"program"`
	StartedAt string `json:"started_at"`
}

// String describes h for a person: "nitrosign-host (pid 42 on ip-10-0-0-1,
// since 2026-12-07T15:00:00Z)".
func (h Holder) String() string {
	return fmt.Sprintf("%s (pid %d on %s, since %s)", h.Program, h.PID, h.Hostname, h.StartedAt.UTC().Format(time.RFC3339))
}

// marshal is the lock file's content for h: one JSON object and a newline.
func (h Holder) marshal() []byte {
	return []byte(fmt.Sprintf(`{"pid":%d,"hostname":%s,"program":%s,"started_at":%q}`+"\n",
		h.PID, quote(h.Hostname), quote(h.Program), h.StartedAt.UTC().Format(time.RFC3339)))
}

// quote is s as a JSON string; s is printable ASCII (checked by validate).
func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// validate checks h's fields: the rules ParseHolder applies, and Acquire
// before it writes.
func (h Holder) validate() error {
	if h.PID <= 0 {
		return fmt.Errorf("dirlock: holder pid %d: want a positive number", h.PID)
	}
	if err := checkName("hostname", h.Hostname, maxHostname); err != nil {
		return err
	}
	if err := checkName("program", h.Program, maxProgram); err != nil {
		return err
	}
	if h.StartedAt.IsZero() {
		return errors.New("dirlock: holder has no start time")
	}
	return nil
}

// checkName accepts 1 to max printable ASCII characters.
func checkName(field, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("dirlock: holder %s: want 1 to %d characters", field, max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Errorf("dirlock: holder %s: character %d is not printable ASCII", field, i)
		}
	}
	return nil
}

// ParseHolder decodes a lock file's content: exactly one JSON object with
// the four fields of Holder and no others, in the form Acquire writes
// (that field order, no spaces, one newline after it) and nothing else. The content comes from disk, written by whoever last held
// the lock, so it is parsed as untrusted.
func ParseHolder(b []byte) (Holder, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return Holder{}, errors.New("dirlock: lock file: want one JSON object and a newline")
	}
	var j holderJSON
	if err := strictjson.Unmarshal(b[:len(b)-1], &j, MaxHolderSize); err != nil {
		return Holder{}, fmt.Errorf("dirlock: lock file: %w", err)
	}
	t, err := time.Parse(time.RFC3339, j.StartedAt)
	if err != nil || t.UTC().Format(time.RFC3339) != j.StartedAt {
		return Holder{}, fmt.Errorf("dirlock: lock file: started_at %q: want RFC 3339 UTC seconds", truncate(j.StartedAt))
	}
	h := Holder{PID: j.PID, Hostname: j.Hostname, Program: j.Program, StartedAt: t}
	if err := h.validate(); err != nil {
		return Holder{}, err
	}
	if !bytes.Equal(h.marshal(), b) {
		return Holder{}, errors.New("dirlock: lock file: not in the form Acquire writes")
	}
	return h, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// HeldError is Acquire's refusal: another process holds the lock.
type HeldError struct {
	// Dir is the data directory.
	Dir string
	// Holder is who holds it, when the lock file names it.
	Holder *Holder
	// Unnamed says why the holder is not named (Holder nil): it has not
	// written its name yet, or the file does not parse.
	Unnamed string
}

func (e *HeldError) Error() string {
	who := "another process"
	if e.Holder != nil {
		who = e.Holder.String()
	} else if e.Unnamed != "" {
		who += " (" + e.Unnamed + ")"
	}
	return fmt.Sprintf("dirlock: the data directory %s is in use by %s: two programs on one directory would fork its audit log; stop that one first, or use another directory", e.Dir, who)
}

// Lock is a held data-directory lock.
type Lock struct {
	f    *os.File
	path string
	// Enforced is false where the system takes no lock (see the package
	// documentation): the holder is named, nothing is kept out.
	Enforced bool
}

// Acquire takes dir's lock for program (as named in Holder.Program), or
// returns a *HeldError naming the process that holds it. dir must exist.
// The lock is held until Release, or until the process ends.
func Acquire(dir, program string) (*Lock, error) {
	host, err := os.Hostname()
	if err != nil || checkName("hostname", host, maxHostname) != nil {
		host = "unknown"
	}
	return AcquireAs(dir, Holder{PID: os.Getpid(), Hostname: host, Program: program, StartedAt: time.Now().UTC().Truncate(time.Second)})
}

// AcquireAs is Acquire with the holder's name given (tests).
func AcquireAs(dir string, h Holder) (*Lock, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dirlock: %w", err)
	}
	enforced, err := lock(f)
	if errors.Is(err, errHeld) {
		herr := &HeldError{Dir: dir}
		herr.Holder, herr.Unnamed = readHolder(f)
		f.Close()
		return nil, herr
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dirlock: locking %s: %w", path, err)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(h.marshal(), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dirlock: writing %s: %w", path, err)
	}
	return &Lock{f: f, path: path, Enforced: enforced}, nil
}

// readHolder reads the holder's name from the locked file.
func readHolder(f *os.File) (*Holder, string) {
	buf := make([]byte, MaxHolderSize+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && n == 0 {
		// io.EOF on an empty file: the holder took the lock and has
		// not written its name yet.
		return nil, "it has not written its name yet"
	}
	if n > MaxHolderSize {
		return nil, fmt.Sprintf("its lock file is larger than %d bytes", MaxHolderSize)
	}
	h, perr := ParseHolder(buf[:n])
	if perr != nil {
		return nil, "its lock file does not parse: " + perr.Error()
	}
	return &h, ""
}

// Release drops the lock. The file stays, naming the last holder; the next
// holder rewrites it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("dirlock: releasing %s: %w", l.path, err)
	}
	return nil
}

// errHeld is lock's answer when another open file holds the lock.
var errHeld = errors.New("dirlock: held")
