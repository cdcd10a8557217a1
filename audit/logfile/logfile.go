// Package logfile names the files of an audit log in a host's data
// directory: one live segment, audit-KEY.log, being appended to, and sealed
// segments, audit-KEY-FIRST-LAST.log, each holding the records FIRST to LAST
// (20 digits each), where KEY is the first 16 hex digits of the audit
// key. The host writes them (package host); the verifier (nitrosign audit
// verify) finds them here without importing the host.
package logfile

import (
	"cmp"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Name is the file name prefix of the log of an audit key.
func Name(key []byte) string { return "audit-" + hex.EncodeToString(key)[:16] }

// LivePath is the live Segment of log name in dir: the one being appended to.
func LivePath(dir, name string) string { return filepath.Join(dir, name+".log") }

// SealedPath is the sealed Segment of log name in dir holding records
// first to last.
func SealedPath(dir, name string, first, last uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%020d-%020d.log", name, first, last))
}

// Segment is a sealed Segment file: its path, and the first and last
// records it holds, as its name says.
type Segment struct {
	Path        string
	First, Last uint64
}

// Sealed lists the sealed segments of log name in dir, in order. Files
// whose names are not those of a Segment of the log are not listed.
func Sealed(dir, name string) ([]Segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []Segment
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), name+"-")
		if !ok {
			continue
		}
		rest, ok = strings.CutSuffix(rest, ".log")
		if !ok || len(rest) != 41 || rest[20] != '-' {
			continue
		}
		first, err1 := parseSeq(rest[:20])
		last, err2 := parseSeq(rest[21:])
		if err1 != nil || err2 != nil || first == 0 || first > last || !e.Type().IsRegular() {
			continue
		}
		segs = append(segs, Segment{Path: filepath.Join(dir, e.Name()), First: first, Last: last})
	}
	slices.SortFunc(segs, func(a, b Segment) int { return cmp.Compare(a.First, b.First) })
	return segs, nil
}

func parseSeq(s string) (uint64, error) {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not digits")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// Files returns the files of the log of the audit key in dir (a
// host's data directory), in log order: the sealed segments, oldest first,
// and the live Segment, or "" if there is none (a host stopped in the
// middle of a rotation creates it when it starts). Verify them with
// audit.VerifyFiles, the live Segment last.
func Files(dir string, key []byte) (sealed []string, live string, err error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, "", fmt.Errorf("logfile: an audit key has %d bytes, not %d", ed25519.PublicKeySize, len(key))
	}
	name := Name(key)
	// The live Segment first: a seal that happens in between then adds a
	// sealed Segment to the list, and the list still ends where the live
	// Segment starts.
	switch fi, err := os.Stat(LivePath(dir, name)); {
	case err == nil && fi.Mode().IsRegular():
		live = LivePath(dir, name)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, "", err
	}
	segs, err := Sealed(dir, name)
	if err != nil {
		return nil, "", err
	}
	for _, sg := range segs {
		sealed = append(sealed, sg.Path)
	}
	return sealed, live, nil
}
