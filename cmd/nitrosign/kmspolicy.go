package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nitrosign/nitrosign/kmspolicy"
)

func runKMSPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kms-policy", stderr)
	var pcrs stringsFlag
	fs.Var(&pcrs, "pcr0", "the enclave image's PCR0, `hex` (repeat during an upgrade: old and new image)")
	account := fs.String("account", "", "AWS account `id` that administers the key")
	role := fs.String("role", "", "`ARN` of the parent instance's IAM role")
	locked := fs.Bool("locked", false, "deny the account (and so the instance role) every change to the key: its policy, grants, disabling, deletion (see docs/kms.md: irreversible without --admin-principal)")
	admin := fs.String("admin-principal", "", "with --locked, `ARN` of the one principal (not the instance role) that may still administer the key; empty: nobody")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(pcrs) == 0 {
		return usageError{errors.New("--pcr0 is required (scripts/build-eif.sh prints it)")}
	}
	if *admin != "" && !*locked {
		return usageError{errors.New("--admin-principal needs --locked")}
	}
	opts := kmspolicy.Options{Account: *account, Role: *role, Locked: *locked, Admin: *admin}
	for _, p := range pcrs {
		b, err := hex.DecodeString(strings.TrimPrefix(p, "0x"))
		if err != nil {
			return usageError{fmt.Errorf("--pcr0 %q: not hex", p)}
		}
		opts.PCR0 = append(opts.PCR0, b)
	}
	out, err := kmspolicy.KeyPolicy(opts)
	if err != nil {
		return err
	}
	if *locked && *admin == "" {
		fmt.Fprintln(stderr, "kms-policy: warning: nobody will ever be able to change this key policy, disable or delete the key: applying it needs --bypass-policy-lockout-safety-check, and it cannot be undone (docs/kms.md)")
	}
	_, err = stdout.Write(out)
	return err
}
