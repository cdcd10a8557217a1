package devstack

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/policy"
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
// only client: native ETH transfers with empty calldata to the two example
// destinations on the example chains, at most 1 ETH per transaction;
// personal messages; typed data in the EIP-712 specification's Mail domain;
// everything else (contract calls, contract creation, blob and set-code
// transactions, other typed-data domains) refused.
func ExamplePolicy(client stamp.PublicKey) policy.Document {
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
				Destinations: []policy.Destination{
					{Address: ExampleDestinationA, Label: "example destination A"},
					{Address: ExampleDestinationB, Label: "example destination B"},
				},
				MaxPerTransactionWei: ExampleMaxPerTransactionWei,
			},
			PersonalMessages: true,
			TypedData: &policy.TypedDataRule{Domains: []policy.TypedDataDomain{{
				Name: ExampleMailName, Version: ExampleMailVersion,
				ChainID: ExampleMailChainID, VerifyingContract: ExampleMailContract,
			}}},
		}},
		Assets: []policy.Asset{{ChainID: 1, Address: ExampleUSDC, Symbol: "USDC", Decimals: 6}},
	}
}

// ExampleGenesis returns the example genesis configuration as JSON.
func ExampleGenesis(client stamp.PublicKey) ([]byte, error) {
	pol, err := json.Marshal(ExamplePolicy(client))
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	g := enclave.Genesis{
		Format: enclave.GenesisFormat,
		Keys:   []enclave.KeySpec{{ID: ExampleKeyID, Path: ExampleKeyPath}},
		Policy: pol,
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	return append(b, '\n'), nil
}
