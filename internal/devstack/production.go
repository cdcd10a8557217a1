package devstack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nitrosign/nitrosign/genesis"
)

// ProductionGenesisFile is, in a data directory started with
// Options.Genesis, the production genesis configuration exactly as given.
// Its presence marks the directory as one that runs that configuration,
// not the dev one: plain `nitrosign dev` refuses it, so that the dev
// genesis never replaces it.
const ProductionGenesisFile = "genesis.production.json"

// devRoleName is the parent instance's role the simulated KMS plays for a
// production genesis, in the account its key ARN names.
const devRoleName = "nitrosign-dev"

// prepareProductionGenesis checks the production genesis configuration at
// src, copies it to DIR/ProductionGenesisFile, and writes DIR/genesis.json,
// the one the simulated enclave starts from: the same configuration with
// kms.root_ca_pem set to the simulated KMS's CA, the one change the
// simulation needs (TLS ends in the enclave, and the simulator cannot
// present a certificate of Amazon's roots). It returns the simulated
// account that serves the genesis's KMS key ARNs (zero for a genesis
// without a kms section) and the genesis's kms section.
//
// It refuses what the simulation cannot run: a genesis that sets
// kms.root_ca_pem itself, KMS keys in more than one account or region,
// keys outside the aws partition, and key ids that are not UUIDs
// (multi-Region keys); and a data directory that holds the dev genesis.
func prepareProductionGenesis(dir, src string, caPEM []byte) (kmsAccount, *genesis.KMS, error) {
	prodPath := filepath.Join(dir, ProductionGenesisFile)
	genesisPath := filepath.Join(dir, GenesisFile)
	if _, err := os.Stat(genesisPath); err == nil {
		if _, err := os.Stat(prodPath); errors.Is(err, os.ErrNotExist) {
			return kmsAccount{}, nil, fmt.Errorf("devstack: %s holds the dev genesis of `nitrosign dev`, not a production one: use a new --data-dir for --genesis", dir)
		}
	}
	doc, err := readCapped(src, genesis.MaxSize)
	if err != nil {
		return kmsAccount{}, nil, fmt.Errorf("devstack: --genesis: %w", err)
	}
	g, _, err := genesis.Parse(doc)
	if err != nil {
		return kmsAccount{}, nil, fmt.Errorf("devstack: --genesis %s: %w", src, err)
	}
	orig := doc
	var acct kmsAccount
	if g.KMS != nil {
		if acct, err = simulatedAccount(g.KMS); err != nil {
			return kmsAccount{}, nil, fmt.Errorf("devstack: --genesis %s: %w", src, err)
		}
		var raw genesis.Config
		if err := json.Unmarshal(doc, &raw); err != nil {
			return kmsAccount{}, nil, fmt.Errorf("devstack: --genesis %s: %w", src, err)
		}
		raw.KMS.RootCAPEM = string(caPEM)
		b, err := json.MarshalIndent(raw, "", "  ")
		if err != nil {
			return kmsAccount{}, nil, fmt.Errorf("devstack: %w", err)
		}
		doc = append(b, '\n')
		if _, _, err := genesis.Parse(doc); err != nil {
			return kmsAccount{}, nil, fmt.Errorf("devstack: the simulated genesis: %w", err)
		}
	}
	if err := writeFileAtomic(prodPath, orig, 0o644); err != nil {
		return kmsAccount{}, nil, err
	}
	if err := writeFileAtomic(genesisPath, doc, 0o644); err != nil {
		return kmsAccount{}, nil, err
	}
	return acct, g.KMS, nil
}

// simulatedAccount returns the account that the simulated KMS plays for
// k's keys, or why it cannot.
func simulatedAccount(k *genesis.KMS) (kmsAccount, error) {
	if k.RootCAPEM != "" {
		return kmsAccount{}, errors.New("kms.root_ca_pem is set: a production genesis trusts Amazon's roots only (dev sets this field itself, to its simulated KMS's CA)")
	}
	var acct kmsAccount
	for i, arn := range k.KeyIDs() {
		// arn:PARTITION:kms:REGION:ACCOUNT:key/ID, as genesis.Parse checked.
		f := strings.SplitN(arn, ":", 6)
		if len(f) != 6 {
			return kmsAccount{}, fmt.Errorf("kms key %d: %q is not a key ARN", i, arn)
		}
		partition, region, account, id := f[1], f[3], f[4], strings.TrimPrefix(f[5], "key/")
		switch {
		case partition != "aws":
			return kmsAccount{}, fmt.Errorf("kms key %d: %s: the simulated KMS serves the aws partition only, not %s", i, arn, partition)
		case region != k.Region:
			return kmsAccount{}, fmt.Errorf("kms key %d: %s: its region is not kms.region %s", i, arn, k.Region)
		case !isUUID(id):
			return kmsAccount{}, fmt.Errorf("kms key %d: %s: the simulated KMS has single-Region keys with UUID ids only", i, arn)
		case i > 0 && account != acct.ID:
			return kmsAccount{}, fmt.Errorf("kms key %d: %s: the simulated KMS serves one account, %s", i, arn, acct.ID)
		}
		acct.ID = account
	}
	acct.Region = k.Region
	acct.Principal = "arn:aws:iam::" + acct.ID + ":role/" + devRoleName
	acct.ServerName = "kms." + k.Region + ".amazonaws.com"
	if k.Endpoint != "" {
		u, err := url.Parse(k.Endpoint)
		if err != nil || u.Hostname() == "" {
			return kmsAccount{}, fmt.Errorf("kms.endpoint %q: want https://HOST", k.Endpoint)
		}
		acct.ServerName = u.Hostname()
	}
	return acct, nil
}

// isUUID reports whether s is a lower-case UUID, as KMS key ids are.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// keyIDOf returns the key id of a key ARN.
func keyIDOf(arn string) string {
	_, id, _ := strings.Cut(arn, ":key/")
	return id
}

// refuseProductionDataDir refuses a data directory that a production
// genesis runs in (ProductionGenesisFile), for plain `nitrosign dev`.
func refuseProductionDataDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ProductionGenesisFile)); err == nil {
		return fmt.Errorf("devstack: %s runs the production genesis in %s: start it with --genesis FILE again, or use another --data-dir for the dev genesis", dir, ProductionGenesisFile)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// readCapped reads at most limit bytes of the file at path.
func readCapped(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(f, int64(limit)+1)); err != nil {
		return nil, err
	}
	if b.Len() > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b.Bytes(), nil
}
