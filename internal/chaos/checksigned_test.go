package chaos_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/audit/logfile"
	"github.com/nitrosign/nitrosign/host"
	"github.com/nitrosign/nitrosign/internal/chaos"
	"github.com/nitrosign/nitrosign/stamp"
)

// writeLog writes, as a host would keep it in dir, a log whose records are
// decisions "signed" of key for client over the bodies, in order, except
// that refused lists the indexes decided "refused". It returns the
// signatures a client would have received.
func writeLog(t *testing.T, dir string, client stamp.PublicKey, key string, bodies []string, refused map[int]bool) []chaos.Signature {
	t.Helper()
	seed := make([]byte, audit.MinSeedSize)
	signer, err := audit.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub := signer.PublicKey()
	if err := os.WriteFile(filepath.Join(dir, host.AuditKeyFile), []byte(hex.EncodeToString(pub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chain := audit.NewChain(signer, audit.Head{})
	var log strings.Builder
	var sigs []chaos.Signature
	for i, body := range bodies {
		d := sha256.Sum256([]byte(body))
		rec := audit.Record{TimeMS: 1_700_000_000_000 + int64(i), Kind: audit.KindDecision, RequestDigest: d[:],
			Client: client.String(), Key: key, Summary: fmt.Sprintf("request %d\n", i), Decision: audit.DecisionSigned, PolicyVersion: 1}
		if refused[i] {
			rec.Decision, rec.Rule = audit.DecisionRefused, "destination_allowlist"
		}
		r, line, err := chain.Append(rec, true)
		if err != nil {
			t.Fatal(err)
		}
		log.Write(line)
		log.WriteByte('\n')
		if !refused[i] {
			sigs = append(sigs, chaos.Signature{Seq: r.Seq, Digest: d})
		}
	}
	if err := os.WriteFile(logfile.LivePath(dir, logfile.Name(pub)), []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return sigs
}

func TestCheckSignatures(t *testing.T) {
	s, err := stamp.GenerateSigner(stamp.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	client := s.PublicKey()
	bodies := []string{"a", "b", "c", "d", "e"}
	for _, tc := range []struct {
		name   string
		change func([]chaos.Signature) []chaos.Signature
		ok     bool
		want   string
	}{
		{"every signature has its record", func(s []chaos.Signature) []chaos.Signature { return s }, true, "missing: 0"},
		{"a signed decision no answer received", func(s []chaos.Signature) []chaos.Signature { return s[1:] }, false, "no answer received"},
		{"an answer without a record", func(s []chaos.Signature) []chaos.Signature {
			return append(s, chaos.Signature{Seq: 99})
		}, false, "seq 99"},
		{"an answer naming another body's record", func(s []chaos.Signature) []chaos.Signature {
			s[1].Digest = s[2].Digest
			return s
		}, false, "the record decides request"},
		{"two answers naming one record", func(s []chaos.Signature) []chaos.Signature {
			return append(s, s[0])
		}, false, "answers naming the same record: 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sigs := writeLog(t, dir, client, "hot-0", bodies, map[int]bool{3: true})
			rep, err := chaos.CheckSignatures(dir, client, "hot-0", tc.change(sigs))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tc.ok || !strings.Contains(rep.String(), tc.want) {
				t.Fatalf("OK() = %v, want %v; report:\n%s", rep.OK(), tc.ok, rep)
			}
			if rep.Records != len(bodies) || rep.SignedRecords != len(bodies)-1 {
				t.Errorf("records %d, signed %d; want %d, %d", rep.Records, rep.SignedRecords, len(bodies), len(bodies)-1)
			}
		})
	}
}
