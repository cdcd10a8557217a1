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

// ExampleChains are the chains the example policy allows: Ethereum mainnet
// and Sepolia.
var ExampleChains = []uint64{1, 11155111}

// ExamplePolicy returns the example policy, which registers client as the
// only client: native ETH transfers with empty calldata to the two example
// destinations on the example chains, at most 1 ETH per transaction;
// everything else (contract calls and contract creation included) refused.
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
		}},
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
