package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/audit/logfile"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/internal/sim/vsocksim"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/transport"
)

// runHostWith serves a host with cfg (its transport set to the simulator's).
func runHostWith(t *testing.T, sim *vsocksim.Sim, cfg host.Config) (srv *host.Server, url string, stop func()) {
	t.Helper()
	cfg.Transport = sim.Endpoint(transport.ParentCID)
	if os.Getenv("HOST_DEBUG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	s, err := host.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, l); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return s, "http://" + l.Addr().String(), stop
}

// signN signs n transfers, failing the test on any error.
func signN(t *testing.T, c *client.Client, n int, nonce *int64) {
	t.Helper()
	for range n {
		*nonce++
		if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(*nonce)); err != nil {
			t.Fatal(err)
		}
	}
}

// logFiles lists the audit log of key in dir; the live segment must exist.
func logFiles(t *testing.T, dir string, key []byte) []string {
	t.Helper()
	sealed, live, err := logfile.Files(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if live == "" {
		t.Fatalf("no live audit segment in %s (sealed: %v)", dir, sealed)
	}
	return append(sealed, live)
}

// verifyFiles verifies the segments of key's log in dir, and that each
// sealed segment's name gives its first and last records.
func verifyFiles(t *testing.T, dir string, key []byte) *audit.Report {
	t.Helper()
	files := logFiles(t, dir, key)
	rep, err := audit.VerifyFiles(files, key, audit.VerifyOptions{AllSignatures: true})
	if err != nil {
		t.Fatalf("the rotated audit log does not verify: %v", err)
	}
	for i, sg := range rep.Segments[:len(rep.Segments)-1] {
		want := fmt.Sprintf("-%020d-%020d.log", sg.FirstSeq, sg.Head.Seq)
		if !strings.HasSuffix(files[i], want) {
			t.Errorf("segment %s holds records %d to %d", files[i], sg.FirstSeq, sg.Head.Seq)
		}
	}
	return rep
}

// waitHead waits until the log of e in dir verifies and reaches the
// enclave's head, twice in a row 100 ms apart (a rotation in the background
// may still append a rotate record and seal a segment).
func waitHead(t *testing.T, e *enclave.Enclave, dir string) *audit.Report {
	t.Helper()
	key := e.UserData().AuditKey
	deadline := time.Now().Add(10 * time.Second)
	var last uint64
	for {
		head := e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
		sealed, live, err := logfile.Files(dir, key)
		if err == nil && live != "" {
			var rep *audit.Report
			if rep, err = audit.VerifyFiles(append(sealed, live), key, audit.VerifyOptions{}); err == nil && rep.LastSeq == head {
				if last == head {
					return rep
				}
				last = head
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not reach the enclave's head %d: %v", head, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetchAudit answers GET /v1/audit?from=from.
func fetchAudit(t *testing.T, url string, from uint64) []json.RawMessage {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/v1/audit?from=%d", url, from))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Records []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/audit: %d %v", resp.StatusCode, err)
	}
	return out.Records
}

// TestAuditRotateOnDemand: each rotation ends the live segment with the
// enclave's rotate record and seals it under a name giving its records; the
// segments verify as one log, and GET /v1/audit serves across them.
func TestAuditRotateOnDemand(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 0)
	key := e.UserData().AuditKey
	dir := t.TempDir()
	srv, url, _ := runHostWith(t, sim, host.Config{DataDir: dir})
	c, _ := client.New(url, signer, nil)
	var nonce int64
	// The records' seqs depend on how the enclave's batches close (each
	// followed by its tree head): the test reads them from the enclave.
	head := func() uint64 {
		return e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
	}
	signN(t, c, 5, &nonce) // the boot record, 5 decisions, tree heads
	if err := srv.RotateAuditLog(context.Background()); err != nil {
		t.Fatal(err)
	}
	rot1 := head() // the rotate record (after the tree head of the batch before it)
	// Nothing to seal: the live segment is empty.
	if err := srv.RotateAuditLog(context.Background()); err != nil {
		t.Fatal(err)
	}
	signN(t, c, 3, &nonce)
	if err := srv.RotateAuditLog(context.Background()); err != nil {
		t.Fatal(err)
	}
	rot2 := head()
	signN(t, c, 2, &nonce)
	last := waitHead(t, e, dir).LastSeq
	files := logFiles(t, dir, key)
	name := "audit-" + fmt.Sprintf("%x", key[:8])
	want := []string{
		filepath.Join(dir, fmt.Sprintf("%s-%020d-%020d.log", name, 1, rot1)),
		filepath.Join(dir, fmt.Sprintf("%s-%020d-%020d.log", name, rot1+1, rot2)),
		filepath.Join(dir, name+".log"),
	}
	if fmt.Sprint(files) != fmt.Sprint(want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	rep := verifyFiles(t, dir, key)
	if rep.LastSeq != last || rep.Rotated || len(rep.Segments) != 3 || rep.RootsChecked != rep.TreeHeads {
		t.Fatalf("report %+v", rep)
	}
	for _, sg := range rep.Segments[:2] {
		r := lastRecord(t, filepath.Join(dir, filepath.Base(sg.Path)))
		if r.Kind != audit.KindRotate || r.Sig == nil {
			t.Errorf("%s ends with a %s record", sg.Path, r.Kind)
		}
	}
	// The glob a shell expands lists the same files in the same order.
	glob, _ := filepath.Glob(filepath.Join(dir, name+"*.log"))
	if fmt.Sprint(glob) != fmt.Sprint(want) {
		t.Errorf("glob %v", glob)
	}
	// GET /v1/audit reads across segments.
	for _, from := range []uint64{1, 5, rot1, rot1 + 1, rot2, rot2 + 1, last} {
		recs := fetchAudit(t, url, from)
		if len(recs) != int(last+1-from) {
			t.Fatalf("from %d: %d records", from, len(recs))
		}
		var log bytes.Buffer
		for _, r := range recs {
			log.Write(r)
			log.WriteByte('\n')
		}
		opts := audit.VerifyOptions{FromSeq: from}
		if from > 1 {
			r, _ := audit.Unmarshal(recs[0])
			opts.FromHash = r.Prev
		}
		if rep, err := audit.Verify(&log, key, opts); err != nil || rep.FirstSeq != from || rep.LastSeq != last {
			t.Fatalf("from %d: the records served do not verify: %v", from, err)
		}
	}
	if recs := fetchAudit(t, url, last+1); len(recs) != 0 {
		t.Fatalf("from %d: %d records", last+1, len(recs))
	}
}

// enclaveHead is the seq of e's last record.
func enclaveHead(e *enclave.Enclave) uint64 {
	return e.Handle(context.Background(), &proto.AuditRequest{}).(*proto.AuditResponse).HeadSeq
}

func lastRecord(t *testing.T, path string) audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	r, err := audit.Unmarshal(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAuditRotateBySize: the host rotates the live segment once it reaches
// AuditRotateBytes, and every answer's record is on disk meanwhile.
func TestAuditRotateBySize(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 0)
	key := e.UserData().AuditKey
	dir := t.TempDir()
	_, url, _ := runHostWith(t, sim, host.Config{DataDir: dir, AuditRotateBytes: 3000})
	c, _ := client.New(url, signer, nil)
	var nonce int64
	for range 30 {
		nonce++
		resp, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(nonce))
		if err != nil {
			t.Fatal(err)
		}
		if !onDisk(t, dir, key, resp.AuditSeq) {
			t.Fatalf("answer with audit_seq %d released before its record is on disk", resp.AuditSeq)
		}
	}
	rep := waitHead(t, e, dir)
	if len(rep.Segments) < 4 {
		t.Fatalf("%d segments for %d records of about 700 bytes, rotating at 3000 bytes", len(rep.Segments), rep.Records)
	}
	for _, sg := range rep.Segments[:len(rep.Segments)-1] {
		fi, err := os.Stat(sg.Path)
		if err != nil || fi.Size() < 3000 || fi.Size() > 3000+3*proto.MaxAuditRecordLen {
			t.Errorf("sealed segment %s of %d bytes", sg.Path, fi.Size())
		}
	}
	verifyFiles(t, dir, key)
}

// onDisk reports whether record seq is in one of the files of key's log in
// dir, while the host may be sealing segments: the live segment is read
// first, so that a record it loses to a seal meanwhile is in the sealed
// segments listed after.
func onDisk(t *testing.T, dir string, key []byte, seq uint64) bool {
	t.Helper()
	want := []byte(fmt.Sprintf(`,"seq":%d,`, seq))
	_, live, err := logfile.Files(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if live != "" {
		if b, _ := os.ReadFile(live); bytes.Contains(b, want) {
			return true
		}
	}
	sealed, _, err := logfile.Files(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sealed {
		if b, _ := os.ReadFile(p); bytes.Contains(b, want) {
			return true
		}
	}
	return false
}

// TestAuditRotateCrash: a host that crashes at any step of sealing a
// segment leaves files that the next host completes into a log that
// verifies, losing no record.
func TestAuditRotateCrash(t *testing.T) {
	for _, point := range []string{host.AuditCrashWritten, host.AuditCrashRenamed, host.AuditCrashCreated} {
		t.Run(point, func(t *testing.T) {
			sim := newSim(t)
			e, signer := realEnclave(t, sim, 0)
			key := e.UserData().AuditKey
			dir := t.TempDir()
			srvA, urlA, stopA := runHostWith(t, sim, host.Config{DataDir: dir})
			c, _ := client.New(urlA, signer, nil)
			var nonce int64
			signN(t, c, 3, &nonce) // the boot record, 3 decisions, tree heads
			host.SetAuditCrash(srvA, func(p string) error {
				if p == point {
					return errors.New("crash at " + p)
				}
				return nil
			})
			if err := srvA.RotateAuditLog(context.Background()); err == nil {
				t.Fatal("the rotation completed despite the crash")
			}
			rot := enclaveHead(e) // the rotate record
			// The crashed host releases nothing more.
			if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(99)); err == nil {
				t.Fatal("a signature was released after the crash")
			}
			stopA()
			name := filepath.Join(dir, "audit-"+fmt.Sprintf("%x", key[:8]))
			sealed := fmt.Sprintf("%s-%020d-%020d.log", name, 1, rot)
			_, liveErr := os.Stat(name + ".log")
			_, sealedErr := os.Stat(sealed)
			switch point {
			case host.AuditCrashWritten:
				if liveErr != nil || sealedErr == nil || lastRecord(t, name+".log").Kind != audit.KindRotate {
					t.Fatalf("after %s: live %v, sealed %v", point, liveErr, sealedErr)
				}
			case host.AuditCrashRenamed:
				if liveErr == nil || sealedErr != nil {
					t.Fatalf("after %s: live %v, sealed %v", point, liveErr, sealedErr)
				}
			case host.AuditCrashCreated:
				if liveErr != nil || sealedErr != nil {
					t.Fatalf("after %s: live %v, sealed %v", point, liveErr, sealedErr)
				}
			}
			// Host B completes the seal and continues the log.
			_, urlB, _ := runHostWith(t, sim, host.Config{DataDir: dir})
			c, _ = client.New(urlB, signer, nil)
			waitHead(t, e, dir)
			signN(t, c, 2, &nonce)
			rep := verifyFiles(t, dir, key)
			if len(rep.Segments) != 2 || rep.Segments[0].Path != sealed || rep.Segments[0].Head.Seq != rot {
				t.Fatalf("segments %+v", rep.Segments)
			}
			// Two more decisions follow (the request refused after the
			// crash was not decided: the host reported it could not
			// persist, so it has no record).
			if rep.LastSeq < rot+4 { // two decisions, each with its tree head

				t.Fatalf("the log ends at %d", rep.LastSeq)
			}
		})
	}
}

// TestAuditTornWrite: a crash in the middle of writing a batch leaves a
// partial last line; the next host cuts it off and writes the records again
// from the enclave, including a torn rotate record, which then seals the
// segment.
func TestAuditTornWrite(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 0)
	key := e.UserData().AuditKey
	dir := t.TempDir()
	srvA, urlA, stopA := runHostWith(t, sim, host.Config{DataDir: dir})
	c, _ := client.New(urlA, signer, nil)
	var nonce int64
	signN(t, c, 3, &nonce) // the boot record, 3 decisions, tree heads
	// The disk fails: the rotate record stays with the enclave.
	host.SetAuditWriteFailure(srvA, func() error { return errors.New("crash") })
	if err := srvA.RotateAuditLog(context.Background()); err == nil {
		t.Fatal("rotated without writing")
	}
	stopA()
	rot := enclaveHead(e)
	st := e.Handle(context.Background(), &proto.AuditRequest{From: rot}).(*proto.AuditResponse)
	if len(st.Records) != 1 {
		t.Fatalf("the enclave holds %d records from 5", len(st.Records))
	}
	// What the crash left: half of the rotate record.
	live := filepath.Join(dir, "audit-"+fmt.Sprintf("%x", key[:8])+".log")
	f, err := os.OpenFile(live, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(st.Records[0][:len(st.Records[0])/2])
	f.Close()
	if _, err := audit.VerifyFiles([]string{live}, key, audit.VerifyOptions{}); err == nil {
		t.Fatal("a torn log verifies")
	}
	_, urlB, _ := runHostWith(t, sim, host.Config{DataDir: dir})
	c, _ = client.New(urlB, signer, nil)
	waitHead(t, e, dir)
	signN(t, c, 1, &nonce)
	rep := verifyFiles(t, dir, key)
	if len(rep.Segments) != 2 || rep.Segments[0].Head.Seq != rot || rep.LastSeq != rot+2 {
		t.Fatalf("report %+v", rep)
	}
}

// TestAuditInconsistentSegmentsRefused: a live segment that does not
// continue the newest sealed one is not written to: no decision is
// released.
func TestAuditInconsistentSegmentsRefused(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 0)
	key := e.UserData().AuditKey
	dir := t.TempDir()
	srvA, urlA, stopA := runHostWith(t, sim, host.Config{DataDir: dir})
	c, _ := client.New(urlA, signer, nil)
	var nonce int64
	signN(t, c, 2, &nonce)
	if err := srvA.RotateAuditLog(context.Background()); err != nil {
		t.Fatal(err)
	}
	rot := enclaveHead(e)
	signN(t, c, 2, &nonce) // two decisions, two tree heads
	stopA()
	name := filepath.Join(dir, "audit-"+fmt.Sprintf("%x", key[:8]))
	if err := os.Rename(fmt.Sprintf("%s-%020d-%020d.log", name, 1, rot), fmt.Sprintf("%s-%020d-%020d.log", name, 1, rot-2)); err != nil {
		t.Fatal(err)
	}
	_, urlB, _ := runHostWith(t, sim, host.Config{DataDir: dir, RequestTimeout: 500 * time.Millisecond})
	c, _ = client.New(urlB, signer, nil)
	if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(50)); err == nil {
		t.Fatal("signed with an inconsistent audit log")
	}
	if b, _ := os.ReadFile(name + ".log"); bytes.Count(b, []byte("\n")) != 4 {
		t.Fatalf("the live segment was written to: %d lines", bytes.Count(b, []byte("\n")))
	}
}

// TestAuditRotateOtherKeyCompleted: a host that crashed during a seal while
// the enclave restarted (a new key, a new log) completes the seal of the
// earlier log, so that it verifies too.
func TestAuditRotateOtherKeyCompleted(t *testing.T) {
	sim := newSim(t)
	signer, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := devstack.ExampleGenesis(signer.PublicKey())
	start := func() (*enclave.Enclave, func()) {
		e, err := enclave.New(enclave.Config{Genesis: g})
		if err != nil {
			t.Fatal(err)
		}
		l, err := sim.Endpoint(transport.DefaultEnclaveCID).Listen(transport.DefaultEnclavePort)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Serve(ctx, l); close(done) }()
		return e, func() { cancel(); <-done }
	}
	e1, stop1 := start()
	dir := t.TempDir()
	srvA, urlA, stopA := runHostWith(t, sim, host.Config{DataDir: dir})
	c, _ := client.New(urlA, signer, nil)
	var nonce int64
	signN(t, c, 2, &nonce)
	host.SetAuditCrash(srvA, func(p string) error {
		if p == host.AuditCrashWritten {
			return errors.New("crash")
		}
		return nil
	})
	if err := srvA.RotateAuditLog(context.Background()); err == nil {
		t.Fatal("rotated despite the crash")
	}
	rot := enclaveHead(e1)
	stopA()
	stop1()
	e2, stop2 := start()
	defer stop2()
	_, urlB, _ := runHostWith(t, sim, host.Config{DataDir: dir})
	c, _ = client.New(urlB, signer, nil)
	signN(t, c, 1, &nonce)
	rep := verifyFiles(t, dir, e1.UserData().AuditKey)
	if len(rep.Segments) != 2 || rep.Segments[0].Head.Seq != rot || rep.Segments[1].Records != 0 {
		t.Fatalf("the first run's log: %+v", rep.Segments)
	}
	// The boot record and the decision, each with its tree head (or one
	// for both).
	if rep := verifyFiles(t, dir, e2.UserData().AuditKey); rep.LastSeq < 3 || rep.LastSeq > 4 {
		t.Fatalf("the second run's log ends at %d", rep.LastSeq)
	}
}

// TestLogFiles: logfile.Files on files the host wrote: only the files named as segments of the key count,
// in log order.
func TestLogFiles(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0xab}, 32)
	name := "audit-abababababababab"
	for _, n := range []string{
		name + "-00000000000000000010-00000000000000000020.log",
		name + "-00000000000000000001-00000000000000000009.log",
		name + ".log",
		name + "-00000000000000000021-00000000000000000020.log", // first after last
		name + "-0000000000000000002x-00000000000000000030.log",
		name + "-21-30.log",
		name + ".log.tmp",
		"audit-cdcdcdcdcdcdcdcd-00000000000000000001-00000000000000000009.log",
		"audit-cdcdcdcdcdcdcdcd.log",
	} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	sealed, live, err := logfile.Files(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(dir, name+"-00000000000000000001-00000000000000000009.log"),
		filepath.Join(dir, name+"-00000000000000000010-00000000000000000020.log"),
	}
	if fmt.Sprint(sealed) != fmt.Sprint(want) || live != filepath.Join(dir, name+".log") {
		t.Fatalf("sealed %v, live %q", sealed, live)
	}
	os.Remove(live)
	if _, live, _ := logfile.Files(dir, key); live != "" {
		t.Fatalf("live %q after its removal", live)
	}
	if _, _, err := logfile.Files(dir, key[:16]); err == nil {
		t.Fatal("a short key accepted")
	}
}

// TestAuditTornBatchCutToSignedRecord: a crash in the middle of writing a
// batch can leave its unsigned records whole and its tree head torn. The
// next host cuts the log back to its last signed record (the batch was
// never acknowledged, and no answer depended on it; the end it would hand
// a restarted enclave is then one the enclave recognizes as its own:
// TestInspectLiveCutsToSignedRecord), and writes the batch again from the
// enclave, once.
func TestAuditTornBatchCutToSignedRecord(t *testing.T) {
	sim := newSim(t)
	e, signer := realEnclave(t, sim, 0)
	key := e.UserData().AuditKey
	dir := t.TempDir()
	srvA, urlA, stopA := runHostWith(t, sim, host.Config{DataDir: dir, RequestTimeout: 500 * time.Millisecond})
	c, _ := client.New(urlA, signer, nil)
	var nonce int64
	signN(t, c, 2, &nonce)
	acked := waitHead(t, e, dir).LastSeq
	host.SetAuditWriteFailure(srvA, func() error { return errors.New("crash") })
	if _, err := c.SignTransaction(context.Background(), devstack.ExampleKeyID, transferTx(77)); err == nil {
		t.Fatal("a signature was released without its record on disk")
	}
	stopA()
	st := e.Handle(context.Background(), &proto.AuditRequest{From: acked + 1}).(*proto.AuditResponse)
	if len(st.Records) != 2 {
		t.Fatalf("the enclave holds %d records after %d, want the decision and its tree head", len(st.Records), acked)
	}
	// What the crash left: the decision's record whole, its tree head torn.
	live := filepath.Join(dir, "audit-"+fmt.Sprintf("%x", key[:8])+".log")
	f, err := os.OpenFile(live, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(append(append(append([]byte{}, st.Records[0]...), '\n'), st.Records[1][:len(st.Records[1])/2]...))
	f.Close()
	_, urlB, _ := runHostWith(t, sim, host.Config{DataDir: dir})
	c, _ = client.New(urlB, signer, nil)
	waitHead(t, e, dir)
	signN(t, c, 1, &nonce)
	rep := waitHead(t, e, dir)
	if rep.LastSeq != enclaveHead(e) || rep.LastSeq < acked+4 || rep.RootsChecked != rep.TreeHeads {
		t.Fatalf("report %+v", rep)
	}
	b, _ := os.ReadFile(live)
	if bytes.Count(b, st.Records[0]) != 1 {
		t.Fatal("the decision's record is not in the log exactly once")
	}
}
