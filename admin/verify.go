package admin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Verify checks an envelope for the deployment genesisHash at time now and
// returns the command with the names of the admins who signed it, sorted.
//
// It refuses, in this order: an envelope or command that [ParseEnvelope]
// or [ParseCommand] refuses, including unknown kinds ([ErrMalformed]); a
// command for another deployment ([ErrWrongDeployment]); a command not yet
// valid or expired at now ([ErrNotValidNow]); a signature by an admin not in
// the set, an admin named twice, or any signature that does not verify,
// naming the admin ([ErrSignature]); and fewer signatures than
// [Set.Threshold] of the kind ([ErrQuorum]). On error the command and names
// are nil.
//
// Verify says only that the command is authorized. The caller must still
// refuse a command it has executed before (remember [Command.Digest] until
// [Command.NotAfter]), and check what the body refers to: that a key id is
// new, that a policy's version increases and that its hash matches, that a
// freeze is the one in force.
func (s *Set) Verify(envelope []byte, now time.Time, genesisHash [32]byte) (*Command, []string, error) {
	if s == nil || len(s.members) == 0 {
		return nil, nil, errors.New("admin: no admin set")
	}
	env, err := ParseEnvelope(envelope)
	if err != nil {
		return nil, nil, err
	}
	cmd, err := ParseCommand(env.Command)
	if err != nil {
		return nil, nil, err
	}
	if cmd.GenesisHash != genesisHash {
		return nil, nil, fmt.Errorf("%w: command is bound to genesis hash %x, this deployment's is %x", ErrWrongDeployment, cmd.GenesisHash, genesisHash)
	}
	nowMS := now.UnixMilli()
	switch {
	case nowMS < cmd.NotBefore.UnixMilli():
		return nil, nil, fmt.Errorf("%w: not valid before %s (now %s)", ErrNotValidNow, fmtTime(cmd.NotBefore), fmtTime(now))
	case nowMS >= cmd.NotAfter.UnixMilli():
		return nil, nil, fmt.Errorf("%w: expired at %s (now %s)", ErrNotValidNow, fmtTime(cmd.NotAfter), fmtTime(now))
	}
	names := make([]string, 0, len(env.Signatures))
	for _, sig := range env.Signatures {
		k, ok := s.keys[sig.Admin]
		if !ok {
			return nil, nil, fmt.Errorf("%w: signature by %s, who is not an admin", ErrSignature, quote(sig.Admin))
		}
		if err := k.VerifyDigest(DomainCommand, cmd.Digest, sig.Sig); err != nil {
			return nil, nil, fmt.Errorf("%w: admin %s: %v", ErrSignature, sig.Admin, strings.TrimPrefix(err.Error(), "admin: "))
		}
		names = append(names, sig.Admin)
	}
	slices.Sort(names) // ParseEnvelope sorted them already; keep the promise local
	need := s.Threshold(cmd.Kind)
	if len(names) < need {
		plural, who := "s", ""
		if len(names) == 1 {
			plural = ""
		}
		if len(names) > 0 {
			who = " (" + strings.Join(names, ", ") + ")"
		}
		return nil, nil, fmt.Errorf("%w: %d valid signature%s%s, %s requires %d of the %d admins", ErrQuorum, len(names), plural, who, cmd.Kind, need, len(s.members))
	}
	return cmd, names, nil
}

func fmtTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
