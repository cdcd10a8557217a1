//go:build linux

package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/chaos"
	"github.com/nitrosign/nitrosign/internal/devstack"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and returns
// it; the test is skipped, saying how to run it, where mounting is not
// permitted. It is unmounted at the end of the test (after the stack that
// uses it is closed: cleanups run last registered first).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	const hint = "the disk-full test mounts a small tmpfs: run it as root, or in a container with CAP_SYS_ADMIN (for example docker run --cap-add SYS_ADMIN)"
	if os.Geteuid() != 0 {
		t.Skipf("not root: %s", hint)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("mount -t tmpfs refused (%v): %s", err, hint)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the tmpfs at %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fill takes every free byte of the file system dir is on, in a file it
// returns: writes until ENOSPC. Only the unused end of pages that other
// files hold stays writable.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			chunk = chunk[:len(chunk)/2]
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free != 0 {
		t.Fatalf("%d bytes still free after filling %s", free, dir)
	}
	return path
}

// signer sends stamped sign requests one at a time and keeps every answer
// with its body, for chaos.Check.
type signer struct {
	t       *testing.T
	st      *devstack.Stack
	c       *client.Client
	hc      *http.Client
	n       int64
	answers []chaos.Answer
}

func newSigner(t *testing.T, st *devstack.Stack) *signer {
	hc := &http.Client{Timeout: 40 * time.Second}
	c, err := client.New(st.URL, st.Client, &client.Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return &signer{t: t, st: st, c: c, hc: hc}
}

// sign sends one request and returns its answer; a host that does not
// answer fails the test (it must keep serving).
func (s *signer) sign() chaos.Answer {
	s.t.Helper()
	s.n++
	to, _ := ethtx.ParseAddress(devstack.ExampleDestinationA)
	tx := &ethtx.Tx{
		Type: ethtx.TypeDynamicFee, ChainID: big.NewInt(11155111), Nonce: 7, GasLimit: 21000,
		MaxFeePerGas: big.NewInt(30e9), MaxPriorityFeePerGas: big.NewInt(1e9),
		To: &to, Value: big.NewInt(1e12 + s.n),
	}
	body, stampHeader, err := s.c.StampRequest(&api.SignRequest{Key: devstack.ExampleKeyID, EthTransaction: api.NewEthTransaction(tx.EncodeUnsigned())})
	if err != nil {
		s.t.Fatal(err)
	}
	a := chaos.Answer{Body: body, Key: devstack.ExampleKeyID}
	req, _ := http.NewRequest(http.MethodPost, s.st.URL+"/v1/sign", bytes.NewReader(body))
	req.Header.Set("X-Nitrosign-Stamp", stampHeader)
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatalf("the host did not answer a sign request (it must keep serving): %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.Status = resp.StatusCode
	if resp.StatusCode == http.StatusOK {
		var sr api.SignResponse
		if err := json.Unmarshal(b, &sr); err != nil || sr.AuditSeq == 0 {
			s.t.Fatalf("a 200 without audit_seq: %s", b)
		}
		a.Sign = &sr
	} else {
		var er api.ErrorResponse
		json.Unmarshal(b, &er)
		a.Code, a.Message = er.Error.Code, er.Error.Message
	}
	s.answers = append(s.answers, a)
	return a
}

// TestDiskFull runs the dev stack with its data directory on a small
// tmpfs and fills it. While the disk is full, signing fails closed (503;
// a 200 only with its record, as always) and /v1/health says degraded,
// with the reason (the disk is full). When space returns, signing comes
// back by itself within seconds, with the same host and enclave processes
// (no restart), and nothing is lost: every 200 has its exact record in
// the log, which verifies. The run under load is part of `make chaos`.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clients int // concurrent load besides the probing requests
		long    bool
	}{
		{name: "serial"},
		{name: "under load", clients: 16, long: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && os.Getenv(EnvChaos) == "" {
				t.Skipf("the run under load: make chaos (or %s=1 go test -run 'TestDiskFull' -v ./internal/chaos)", EnvChaos)
			}
			dir := smallDisk(t, 8<<20)
			logs := &tail{max: 64 << 10}
			st := stack(t, dir, logs)
			enclave := st.Enclave()
			s := newSigner(t, st)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf(format+"\nanswers: %s\nend of the logs:\n%s", append(args, chaos.FormatTally(chaos.Tally(s.answers)), logs)...)
			}
			// Failures after which the test goes on, to see what comes
			// next (the log is checked in any case).
			failed := false
			errorf := func(format string, args ...any) {
				t.Helper()
				t.Errorf(format, args...)
				failed = true
			}
			for range 3 {
				if a := s.sign(); a.Status != http.StatusOK {
					fail("before the disk is full: %d %s %s", a.Status, a.Code, a.Message)
				}
			}
			var load *chaos.Load
			if tc.clients > 0 {
				var err error
				load, err = chaos.StartLoad(context.Background(), chaos.LoadOptions{
					URL: st.URL, Signer: st.Client, Key: devstack.ExampleKeyID,
					To: devstack.ExampleDestinationA, ChainID: 11155111, Clients: tc.clients,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer load.Stop()
				time.Sleep(500 * time.Millisecond)
			}

			filler := fill(t, dir)
			// Full: the last page of the live segment may take a few more
			// records; then every request is refused.
			refused := 0
			for i := 0; refused < 5; i++ {
				if i == 200 {
					fail("the disk is full and 200 requests later signing still goes on (%d refused in a row)", refused)
				}
				switch a := s.sign(); a.Status {
				case http.StatusOK:
					refused = 0
				case http.StatusServiceUnavailable:
					refused++
				default:
					fail("with the disk full: %d %s %s, want 503", a.Status, a.Code, a.Message)
				}
			}
			// Health says so, with the reason.
			hc := &http.Client{Timeout: 10 * time.Second}
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, h, err := chaos.Health(context.Background(), hc, st.URL)
				if err != nil {
					fail("health with the disk full: %v", err)
				}
				reason := ""
				if h.Error != nil {
					reason = h.Error.Message
				}
				if code == http.StatusServiceUnavailable && h.Status == api.StatusDegraded && strings.Contains(strings.ToLower(reason), "no space left") {
					break
				}
				if time.Now().After(deadline) {
					b, _ := json.Marshal(h)
					errorf("health with the disk full: %d %s; want 503, status degraded, and the reason (no space left on device)", code, b)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}

			// Space returns: signing recovers by itself, within seconds.
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			freed := time.Now()
			recovered := false
			for !recovered {
				a := s.sign()
				recovered = a.Status == http.StatusOK
				if !recovered && time.Since(freed) > 10*time.Second {
					errorf("space returned %v ago and signing has not recovered: %d %s %s", time.Since(freed).Round(time.Millisecond), a.Status, a.Code, a.Message)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if recovered {
				t.Logf("signing recovered %v after space returned", time.Since(freed).Round(time.Millisecond))
				for range 3 {
					if a := s.sign(); a.Status != http.StatusOK {
						fail("after recovery: %d %s %s", a.Status, a.Code, a.Message)
					}
				}
				if code, h, err := chaos.Health(context.Background(), hc, st.URL); err != nil || code != http.StatusOK || h.Status != api.StatusOK {
					fail("health after recovery: %d %+v %v", code, h, err)
				}
				if load != nil {
					before := load.Signed()
					time.Sleep(time.Second)
					if load.Signed() == before {
						fail("the load gets no signature after recovery")
					}
				}
			}
			// The same enclave process throughout (and the host, which the
			// dev stack never restarts).
			if e := st.Enclave(); e.PID != enclave.PID || e.Restarts != 0 {
				t.Errorf("the enclave was restarted: %+v, was %+v", e, enclave)
			}

			answers := s.answers
			if load != nil {
				more := load.Stop()
				for _, a := range more {
					if a.Err != nil {
						t.Errorf("the host did not answer a request properly (it must keep serving): %v", a.Err)
						break
					}
				}
				answers = append(answers, more...)
			}
			if err := st.Close(); err != nil {
				t.Errorf("closing the stack: %v", err)
			}
			rep, err := chaos.Check(dir, st.Client.PublicKey(), answers)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("answers: %s", chaos.FormatTally(chaos.Tally(answers)))
			t.Logf("%s", rep)
			if !rep.OK() {
				errorf("a 200 without its record in the persisted log, or a log that does not verify (see above)")
			}
			if failed {
				t.Logf("end of the logs:\n%s", logs)
			}
		})
	}
}
