package devstack_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/internal/devstack"
	"github.com/nitrosign/nitrosign/stamp"
)

// TestDevStackApprovals: in the dev stack, a Sepolia transfer above 0.5
// ETH waits for both dev approvers (keys in the data directory); the
// client cannot approve; both approvals sign it.
func TestDevStackApprovals(t *testing.T) {
	st := startStack(t, t.TempDir())
	c, err := client.New(st.URL, st.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.SignTransaction(ctx, devstack.ExampleKeyID, eip1559(t, txOpts{ChainID: 11155111, To: devstack.ExampleDestinationB, Value: eth("800000000000000000")}))
	var pe *client.PendingError
	if !errors.As(err, &pe) || pe.Pending.Status != api.StatusPendingApproval || pe.Pending.Quorum != devstack.ApproverCount {
		t.Fatalf("0.8 ETH on Sepolia: %v", err)
	}
	id := pe.Pending.ApprovalID

	// The client's own key is no approver.
	req, err := client.NewApproval(st.Client, devstack.ApproverName(1), id, api.DecisionApprove, pe.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Approve(ctx, req); err == nil {
		t.Fatal("the client's signature was taken as an approval")
	}
	var resp *api.SignResponse
	for i := 1; i <= devstack.ApproverCount; i++ {
		pemBytes, err := os.ReadFile(filepath.Join(st.DataDir, devstack.ApproverKeyFile(i)))
		if err != nil {
			t.Fatal(err)
		}
		signer, err := stamp.ParseSignerPEM(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		req, err := client.NewApproval(signer, devstack.ApproverName(i), id, api.DecisionApprove, pe.Digest)
		if err != nil {
			t.Fatal(err)
		}
		sr, pending, err := c.Approve(ctx, req)
		if err != nil {
			t.Fatalf("approval %d: %v", i, err)
		}
		if i < devstack.ApproverCount && (pending == nil || sr != nil) {
			t.Fatalf("approval %d: signed before the quorum", i)
		}
		resp = sr
	}
	if resp == nil || resp.SignedTransaction == "" {
		t.Fatalf("no signature after both approvals: %+v", resp)
	}
	got, err := c.WaitApproval(ctx, id, 0)
	if err != nil || got.SignedTransaction != resp.SignedTransaction {
		t.Fatalf("the initiator's fetch: %+v, %v", got, err)
	}
}
