package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nitrosign/nitrosign/kms"
)

func runKMSPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("kms-policy", stderr)
	var pcrs stringsFlag
	fs.Var(&pcrs, "pcr0", "the enclave image's PCR0, `hex` (repeat during an upgrade: old and new image)")
	account := fs.String("account", "", "AWS account `id` that administers the key")
	role := fs.String("role", "", "`ARN` of the parent instance's IAM role")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(pcrs) == 0 {
		return usageError{errors.New("--pcr0 is required (scripts/build-eif.sh prints it)")}
	}
	opts := kms.PolicyOptions{Account: *account, Role: *role}
	for _, p := range pcrs {
		b, err := hex.DecodeString(strings.TrimPrefix(p, "0x"))
		if err != nil {
			return usageError{fmt.Errorf("--pcr0 %q: not hex", p)}
		}
		opts.PCR0 = append(opts.PCR0, b)
	}
	out, err := kms.KeyPolicy(opts)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
