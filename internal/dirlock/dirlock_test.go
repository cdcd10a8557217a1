package dirlock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

var started = time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)

func holder(pid int) Holder {
	return Holder{PID: pid, Hostname: "ip-10-0-0-1", Program: "nitrosign-host", StartedAt: started}
}

func skipUnlessLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("dirlock: the lock is taken on Linux only")
	}
}

// TestSecondOpenRefused takes the lock twice in one process, through two
// open files: flock locks belong to the open file, so the second is
// refused as another process would be, and the refusal names the holder.
func TestSecondOpenRefused(t *testing.T) {
	skipUnlessLinux(t)
	dir := t.TempDir()
	first, err := AcquireAs(dir, holder(4242))
	if err != nil {
		t.Fatal(err)
	}
	if !first.Enforced {
		t.Fatal("lock not enforced on Linux")
	}
	_, err = AcquireAs(dir, Holder{PID: 7, Hostname: "other", Program: "nitrosign dev", StartedAt: started.Add(time.Hour)})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder == nil || *held.Holder != holder(4242) {
		t.Fatalf("second Acquire: err = %v, want a HeldError naming %v", err, holder(4242))
	}
	for _, want := range []string{dir, "nitrosign-host", "pid 4242", "ip-10-0-0-1", "2026-12-07T15:00:00Z", "audit log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
	if !strings.HasPrefix(err.Error(), "dirlock: ") {
		t.Errorf("message %q lacks the package prefix", err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	again, err := AcquireAs(dir, holder(99))
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	defer again.Release()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := ParseHolder(b); err != nil || h != holder(99) {
		t.Fatalf("lock file %q names %v (%v), want the new holder", b, h, err)
	}
}

// TestUnnamedHolder: a holder whose file does not (yet) name it is still
// a holder.
func TestUnnamedHolder(t *testing.T) {
	skipUnlessLinux(t)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not written yet", "", "has not written its name yet"},
		{"garbage", "pid=1\n", "does not parse"},
		{"too large", strings.Repeat(" ", MaxHolderSize+1) + "\n", "larger than 1024 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := lock(f); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tc.content); err != nil {
				t.Fatal(err)
			}
			_, err = Acquire(dir, "nitrosign-host")
			var held *HeldError
			if !errors.As(err, &held) || held.Holder != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a HeldError saying %q", err, tc.want)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, FileName)); string(got) != tc.content {
				t.Fatalf("the refused Acquire changed the lock file to %q", got)
			}
		})
	}
}

// TestOtherProcess holds the lock in a child process: the parent is
// refused with the child's pid, and once the child is killed (SIGKILL:
// no chance to clean up) the lock is free at once.
func TestOtherProcess(t *testing.T) {
	skipUnlessLinux(t)
	if dir := os.Getenv("DIRLOCK_HELPER_DIR"); dir != "" {
		l, err := Acquire(dir, "nitrosign dev")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		defer l.Release()
		fmt.Println("locked")
		// Hold the lock until the parent kills this process.
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOtherProcess$")
	cmd.Env = append(os.Environ(), "DIRLOCK_HELPER_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q (%v)", line, err)
	}
	_, err = Acquire(dir, "nitrosign-host")
	var held *HeldError
	if !errors.As(err, &held) || held.Holder == nil || held.Holder.PID != cmd.Process.Pid || held.Holder.Program != "nitrosign dev" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("err = %v, want a HeldError naming the helper, pid %d", err, cmd.Process.Pid)
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("message %q does not name pid %d", err, cmd.Process.Pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := Acquire(dir, "nitrosign-host")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}

func TestParseHolder(t *testing.T) {
	good := `{"pid":42,"hostname":"ip-10-0-0-1","program":"nitrosign-host","started_at":"2026-12-07T15:00:00Z"}`
	want := Holder{PID: 42, Hostname: "ip-10-0-0-1", Program: "nitrosign-host", StartedAt: started}
	if h, err := ParseHolder([]byte(good + "\n")); err != nil || h != want {
		t.Fatalf("ParseHolder(good) = %v, %v", h, err)
	}
	if got := string(want.marshal()); got != good+"\n" {
		t.Fatalf("marshal = %q, want %q", got, good+"\n")
	}
	for _, tc := range []struct{ name, in, want string }{
		{"empty", ``, "newline"},
		{"no newline", good, "newline"},
		{"spaces", strings.Replace(good, `"pid":42`, `"pid": 42`, 1) + "\n", "form"},
		{"field order", `{"hostname":"ip-10-0-0-1","pid":42,"program":"nitrosign-host","started_at":"2026-12-07T15:00:00Z"}` + "\n", "form"},
		{"unknown field", `{"pid":42,"hostname":"h","program":"p","started_at":"2026-12-07T15:00:00Z","x":1}` + "\n", "x"},
		{"duplicate field", `{"pid":42,"pid":43,"hostname":"h","program":"p","started_at":"2026-12-07T15:00:00Z"}` + "\n", "pid"},
		{"trailing data", good + " {}\n", "strictjson"},
		{"two newlines", good + "\n\n", "form"},
		{"zero pid", `{"pid":0,"hostname":"h","program":"p","started_at":"2026-12-07T15:00:00Z"}` + "\n", "pid"},
		{"negative pid", `{"pid":-1,"hostname":"h","program":"p","started_at":"2026-12-07T15:00:00Z"}` + "\n", "pid"},
		{"no hostname", `{"pid":1,"program":"p","started_at":"2026-12-07T15:00:00Z"}` + "\n", "hostname"},
		{"control character", `{"pid":1,"hostname":"h\u001b[2J","program":"p","started_at":"2026-12-07T15:00:00Z"}` + "\n", "printable"},
		{"non-ASCII", `{"pid":1,"hostname":"hé","program":"p","started_at":"2026-12-07T15:00:00Z"}` + "\n", "printable"},
		{"long program", `{"pid":1,"hostname":"h","program":"` + strings.Repeat("p", 65) + `","started_at":"2026-12-07T15:00:00Z"}` + "\n", "program"},
		{"time with offset", `{"pid":1,"hostname":"h","program":"p","started_at":"2026-12-07T16:00:00+01:00"}` + "\n", "RFC 3339"},
		{"time with fraction", `{"pid":1,"hostname":"h","program":"p","started_at":"2026-12-07T15:00:00.5Z"}` + "\n", "RFC 3339"},
		{"no time", `{"pid":1,"hostname":"h","program":"p"}` + "\n", "RFC 3339"},
		{"too large", `{"pid":1,"hostname":"` + strings.Repeat("h", MaxHolderSize) + `"}` + "\n", "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHolder([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "dirlock: ") {
				t.Fatalf("ParseHolder = %v, %v; want an error saying %q", h, err, tc.want)
			}
			if h != (Holder{}) {
				t.Fatalf("ParseHolder returned %v with its error", h)
			}
		})
	}
}

func TestAcquireRefusesBadHolder(t *testing.T) {
	dir := t.TempDir()
	if _, err := AcquireAs(dir, Holder{PID: 1, Hostname: "h", Program: "bad\nname", StartedAt: started}); err == nil {
		t.Fatal("a program name with a newline was accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused holder left a lock file: %v", err)
	}
}

// FuzzParseHolder: any bytes either parse into a Holder that writes back
// to the same content, or are refused with a package error; never a panic.
func FuzzParseHolder(f *testing.F) {
	f.Add([]byte(`{"pid":42,"hostname":"ip-10-0-0-1","program":"nitrosign-host","started_at":"2026-12-07T15:00:00Z"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHolder(b)
		if err != nil {
			if h != (Holder{}) || !strings.HasPrefix(err.Error(), "dirlock: ") {
				t.Fatalf("ParseHolder(%q) = %v, %v", b, h, err)
			}
			return
		}
		again, err := ParseHolder(h.marshal())
		if err != nil || again != h {
			t.Fatalf("ParseHolder(%q) = %v, whose content %q parses as %v, %v", b, h, h.marshal(), again, err)
		}
	})
}
