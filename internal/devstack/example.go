package devstack

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/policy/stateful"
	"github.com/nitrosign/nitrosign/stamp"
)

// The example deployment's names and rules.
const (
	// ExampleKeyID is the dev stack's signing key.
	ExampleKeyID = "hot-0"
	// ExampleKeyPath is its BIP-32 path.
	ExampleKeyPath = "m/44'/60'/0'/0/0"
	// ExampleClientName is the dev client's name in the policy.
	ExampleClientName = "dev-client"
	// ExampleDestinationA and ExampleDestinationB are the allowlisted
	// destinations.
	ExampleDestinationA = "0x1111111111111111111111111111111111111111"
	ExampleDestinationB = "0x2222222222222222222222222222222222222222"
	// ExampleMaxPerTransactionWei is 1 ETH.
	ExampleMaxPerTransactionWei = "1000000000000000000"
	// ExampleDailyLimitWei is 3 ETH: the rolling 24-hour limit on what
	// destination B receives on Ethereum mainnet (enforced by the
	// enclave's limit state).
	ExampleDailyLimitWei = "3000000000000000000"
	// ExampleUSDCMaxPerTransaction is 1,000 USDC in base units (6
	// decimals): the cap of one USDC transfer.
	ExampleUSDCMaxPerTransaction = "1000000000"
	// ExampleFreezeRefusals refusals within ExampleFreezeWindow freeze the
	// key.
	ExampleFreezeRefusals = 100
	ExampleFreezeWindow   = "1h"
)

// The EIP-712 specification's Mail example domain, which the example policy
// allows for typed data.
const (
	ExampleMailName     = "Ether Mail"
	ExampleMailVersion  = "1"
	ExampleMailChainID  = 1
	ExampleMailContract = "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
	// ExampleUSDC is USDC on Ethereum mainnet, named in the policy's assets
	// so that summaries show its amounts in USDC.
	ExampleUSDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
)

// ExampleChains are the chains the example policy allows: Ethereum mainnet
// and Sepolia.
var ExampleChains = []uint64{1, 11155111}

// ExamplePolicy returns the example policy, which registers client as the
// only client of the key ExampleKeyID, which may sign:
//   - native transfers (empty calldata) to the two example destinations on
//     the example chains, at most 1 ETH per transaction, with a rolling
//     24-hour limit of 3 ETH to destination B on Ethereum mainnet;
//   - USDC transfer (not transferFrom) on Ethereum mainnet to the same two
//     destinations, at most 1,000 USDC per transaction; no allowance grants
//     to anyone (no spenders), so approve, increaseAllowance, EIP-2612 and
//     Permit2 permits of USDC are refused, revocations excepted;
//   - personal messages (but not of 32 bytes: raw digests are off);
//   - typed data in the EIP-712 specification's Mail domain;
//
// and freezes after 100 refusals within an hour (not on a limit breach).
// Everything else (other contract calls, contract creation, blob and
// set-code transactions, other typed-data domains) is refused.
func ExamplePolicy(client stamp.PublicKey) policy.Document {
	destinations := []policy.Destination{
		{Address: ExampleDestinationA, Label: "example destination A"},
		{Address: ExampleDestinationB, Label: "example destination B"},
	}
	return policy.Document{
		Version: 1,
		Clients: []policy.Client{{
			Name:      ExampleClientName,
			Scheme:    string(client.Scheme),
			PublicKey: hex.EncodeToString(client.Key),
			Keys:      []string{ExampleKeyID},
		}},
		Keys: []policy.KeyRule{{
			Key:    ExampleKeyID,
			Chains: ExampleChains,
			NativeTransfers: &policy.NativeTransfers{
				Destinations:         destinations,
				MaxPerTransactionWei: ExampleMaxPerTransactionWei,
			},
			PersonalMessages: true,
			TypedData: &policy.TypedDataRule{Domains: []policy.TypedDataDomain{{
				Name: ExampleMailName, Version: ExampleMailVersion,
				ChainID: ExampleMailChainID, VerifyingContract: ExampleMailContract,
			}}},
			ChainRules: []policy.ChainRule{{
				ChainID: 1,
				Tokens: []policy.TokenRule{{
					Address: ExampleUSDC,
					Label:   "USDC",
					Transfers: &policy.TokenTransfers{
						Destinations:      destinations,
						MaxPerTransaction: ExampleUSDCMaxPerTransaction,
					},
				}},
			}},
			KeyConfig: stateful.KeyConfig{
				Limits: []stateful.LimitRule{{
					ChainID: 1, Asset: "native", Destination: ExampleDestinationB,
					Window: "24h", Max: ExampleDailyLimitWei,
				}},
				Freeze: &stateful.FreezeRule{
					Refusals: ExampleFreezeRefusals, Window: ExampleFreezeWindow,
					OnLimitBreach: false, Scope: string(stateful.FreezeKey),
				},
			},
		}},
		Assets: []policy.Asset{{ChainID: 1, Address: ExampleUSDC, Symbol: "USDC", Decimals: 6}},
	}
}

// Approvals in the dev stack: a Sepolia transfer above 0.5 ETH waits for
// both dev approvers.
const (
	ExampleApprovalChain    = 11155111
	ExampleApprovalAboveWei = "500000000000000000"
)

// ApproverName is the name of dev approver i (1-based).
func ApproverName(i int) string { return fmt.Sprintf("dev-approver-%d", i) }

// ApproverKeyFile is the file of dev approver i (1-based) in the data
// directory.
func ApproverKeyFile(i int) string { return fmt.Sprintf("approver-%d.pem", i) }

// ExamplePolicyWithApprovers is ExamplePolicy, plus, when approvers are
// given, an approval rule: a Sepolia transfer above 0.5 ETH needs every
// one of them (named ApproverName(1), ...).
func ExamplePolicyWithApprovers(client stamp.PublicKey, approvers []stamp.PublicKey) policy.Document {
	doc := ExamplePolicy(client)
	if len(approvers) == 0 {
		return doc
	}
	r := &stateful.ApprovalRule{
		Above:  []stateful.ApprovalThreshold{{ChainID: ExampleApprovalChain, Asset: "native", Amount: ExampleApprovalAboveWei}},
		Quorum: uint64(len(approvers)),
	}
	for i, a := range approvers {
		r.Approvers = append(r.Approvers, stateful.Approver{Name: ApproverName(i + 1), Scheme: string(a.Scheme), PublicKey: hex.EncodeToString(a.Key)})
	}
	doc.Keys[0].Approvals = r
	return doc
}

// ExampleGenesis returns the example genesis configuration as JSON, with
// the approvers' rule when approvers are given.
func ExampleGenesis(client stamp.PublicKey, approvers ...stamp.PublicKey) ([]byte, error) {
	pol, err := json.Marshal(ExamplePolicyWithApprovers(client, approvers))
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	g := genesis.Config{
		Format: genesis.FormatVersion,
		Keys:   []genesis.Key{{ID: ExampleKeyID, Path: ExampleKeyPath}},
		Policy: pol,
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	return append(b, '\n'), nil
}
