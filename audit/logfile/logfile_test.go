package logfile

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	name := Name(key)
	if name != "audit-abababababababab" {
		t.Fatalf("Name = %q", name)
	}
	if got := LivePath("d", name); got != filepath.Join("d", "audit-abababababababab.log") {
		t.Errorf("LivePath = %q", got)
	}
	if got := SealedPath("d", name, 1, 42); got != filepath.Join("d", "audit-abababababababab-00000000000000000001-00000000000000000042.log") {
		t.Errorf("SealedPath = %q", got)
	}
}

// TestFiles: only files named as segments of the key's log count, in log
// order; a missing live segment is "".
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{1}, 32)
	other := bytes.Repeat([]byte{2}, 32)
	name := Name(key)
	touch := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch(SealedPath(dir, name, 11, 20))
	touch(SealedPath(dir, name, 1, 10))
	touch(SealedPath(dir, Name(other), 1, 5))                                        // another key's log
	touch(filepath.Join(dir, name+"-00000000000000000005-00000000000000000001.log")) // first after last
	touch(filepath.Join(dir, name+"-00000000000000000000-00000000000000000003.log")) // record 0
	touch(filepath.Join(dir, name+"-0000000000000000001x-00000000000000000003.log")) // not digits
	touch(filepath.Join(dir, name+"-1-3.log"))                                       // short
	touch(filepath.Join(dir, name+"-00000000000000000021-00000000000000000030.txt")) // not .log
	if err := os.Mkdir(SealedPath(dir, name, 31, 40), 0o700); err != nil {           // not a file
		t.Fatal(err)
	}
	sealed, live, err := Files(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{SealedPath(dir, name, 1, 10), SealedPath(dir, name, 11, 20)}
	if !slices.Equal(sealed, want) || live != "" {
		t.Fatalf("Files = %v, %q; want %v and no live segment", sealed, live, want)
	}
	touch(LivePath(dir, name))
	if _, live, _ := Files(dir, key); live != LivePath(dir, name) {
		t.Errorf("live = %q", live)
	}
	segs, err := Sealed(dir, name)
	if err != nil || len(segs) != 2 || segs[0].First != 1 || segs[0].Last != 10 || segs[1].First != 11 || segs[1].Last != 20 {
		t.Errorf("Sealed = %+v, %v", segs, err)
	}
	if _, _, err := Files(dir, key[:16]); err == nil {
		t.Error("a 16-byte key accepted")
	}
	if _, _, err := Files(filepath.Join(dir, "missing"), key); err == nil {
		t.Error("a missing directory listed")
	}
}
