package runbook_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack/devstacktest"
)

// copyDir copies the regular files of src to dst (created), as a backup
// of a stopped host's data directory would.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitCheckpointChange waits (30 s at most) until the host stores a
// checkpoint other than old (nil: any).
func waitCheckpointChange(t *testing.T, dir string, old []byte) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, host.CheckpointFile))
		if err == nil && len(b) > 0 && !bytes.Equal(b, old) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatal("no new checkpoint stored within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	frozenSeq  = regexp.MustCompile(`is frozen \(audit record (\d+):`)
	warningSeq = regexp.MustCompile(`warning: \S+ \(seq (\d+)\): rollback: `)
)

// TestRunbookDisasterRecoveryAndUnfreeze runs procedure 9 twice, and
// procedure 2 on the freeze the first restore causes.
//
// A host's data directory is backed up (stopped), the host signs on and
// stores a newer checkpoint, and the instance is lost. Restore A: the
// newest log with the backup's older checkpoint. The enclave detects the
// checkpoint rollback and starts with every key frozen, the same
// addresses; the daily audit run exits 4 with the rollback warning, which
// is accepted by its seq; the freeze is found in the log and lifted by the
// admin quorum; the key signs again. Restore B: the whole backup, log and
// checkpoint from one moment. The enclave cannot tell; it signs at once,
// and the head pinned before the loss shows the fork.
func TestRunbookDisasterRecoveryAndUnfreeze(t *testing.T) {
	stackTest(t)
	dir := t.TempDir()
	st := devstacktest.Start(t, dir)
	s := newSession(t, stackVars(st))
	keys := keyList(t, s)
	signWithClient(t, s, st)
	waitCheckpointChange(t, dir, nil)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(t, dir, backup)

	// Later: more signatures, a newer checkpoint named by the log, and the
	// head an auditor pinned.
	st = devstacktest.Start(t, dir)
	s.vars = stackVars(st)
	old, _ := os.ReadFile(filepath.Join(dir, host.CheckpointFile))
	signWithClient(t, s, st)
	waitCheckpointChange(t, dir, old)
	signWithClient(t, s, st)
	attest(t, s)
	waitForHead(t, s)
	s.mustRun("audit-daily", nil)
	pinned := readPinned(t, s)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restore A: the archived log, the nightly checkpoint.
	restoreA := filepath.Join(t.TempDir(), "backup-a")
	copyDir(t, dir, restoreA)
	copyFile(t, filepath.Join(backup, host.CheckpointFile), filepath.Join(restoreA, host.CheckpointFile))
	newDir := filepath.Join(t.TempDir(), "instance-a")
	s.vars["BACKUP_DIR"], s.vars["DATA_DIR"] = restoreA, newDir
	s.mustRun("dr-restore", nil)
	st = devstacktest.Start(t, newDir)
	s.vars = mergeVars(stackVars(st), map[string]string{"BACKUP_DIR": restoreA})
	if out := s.mustRun("dr-verify", nil); out != keys {
		t.Fatalf("keys after restore A:\n%s\nwant\n%s", out, keys)
	}
	code, out := signTx(t, s, st, "0.01", 1)
	m := frozenSeq.FindStringSubmatch(out)
	if code != 1 || m == nil {
		t.Fatalf("signing after restore A: exit %d, want a frozen refusal\n%s", code, out)
	}
	attest(t, s)
	waitForHead(t, s)
	o, e, code := s.run("audit-daily", nil)
	w := warningSeq.FindStringSubmatch(e)
	if code != 4 || w == nil || !strings.Contains(e, "checkpoint_rollback") {
		t.Fatalf("audit-daily after restore A: exit %d, want 4 with a checkpoint_rollback warning\n%s%s", code, o, e)
	}
	s.vars["WARNING_SEQ"] = w[1]
	s.mustRun("audit-accept-warning", nil)
	s.mustRun("freeze-find", nil)
	if got := s.get("FREEZE_SEQ"); got != m[1] {
		t.Fatalf("freeze-find found FREEZE_SEQ %q, the refusal names record %s", got, m[1])
	}
	s.mustRun("unfreeze-write", nil)
	ans := quorum(t, s, st, "unfreeze.json")
	if ans["kind"] != "unfreeze" {
		t.Fatalf("unfreeze answer %v", ans)
	}
	signWithClient(t, s, st)
	// The next daily run passes: the accepted warning is still printed, it
	// no longer fails, and the head pinned before the loss is in the log.
	attest(t, s)
	waitForHead(t, s)
	if o, e, code := s.run("audit-daily", nil); code != 0 || !strings.Contains(e, "warning (accepted)") {
		t.Fatalf("audit-daily after the accepted warning: exit %d\n%s%s", code, o, e)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restore B: the whole backup from one moment.
	newDir = filepath.Join(t.TempDir(), "instance-b")
	s.vars["BACKUP_DIR"], s.vars["DATA_DIR"] = backup, newDir
	s.mustRun("dr-restore", nil)
	st = devstacktest.Start(t, newDir)
	s.vars = mergeVars(stackVars(st), map[string]string{"BACKUP_DIR": backup})
	if out := s.mustRun("dr-verify", nil); out != keys {
		t.Fatalf("keys after restore B:\n%s\nwant\n%s", out, keys)
	}
	signWithClient(t, s, st) // not frozen: nothing the enclave holds shows the loss
	signWithClient(t, s, st)
	attest(t, s)
	waitForHead(t, s)
	if err := os.WriteFile(filepath.Join(s.work, "pinned-head"), []byte(pinned+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, e, code = s.run("audit-daily", nil)
	if code != 1 || !(strings.Contains(e, "forked") || strings.Contains(e, "missing")) {
		t.Fatalf("audit-daily after restore B with the head pinned before the loss: exit %d, want 1 (forked or missing)\n%s%s", code, o, e)
	}
	t.Logf("the pinned head %s after restore B: %s", pinned, strings.TrimSpace(e))
}

func mergeVars(a, b map[string]string) map[string]string {
	for k, v := range b {
		a[k] = v
	}
	return a
}
