package enclave

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestApprovalQuotas: the store admits a request only within the global
// count, the client's count, the client's bytes and the global bytes, and
// each refusal names its quota; dropping a request credits its client.
func TestApprovalQuotas(t *testing.T) {
	var a approvals
	n := 0
	hold := func(client string, cost int) *pending {
		n++
		p := &pending{id: fmt.Sprint(n), clientID: client, cost: cost, expires: time.UnixMilli(1)}
		a.add(p)
		return p
	}
	wantRefusal := func(client string, cost int, want string) {
		t.Helper()
		if got := a.admit(client, cost); !strings.Contains(got, want) || want == "" && got != "" {
			t.Fatalf("admit(%s, %d) = %q, want %q", client, cost, got, want)
		}
	}
	// A client's count.
	var first *pending
	for i := range MaxPendingPerClient {
		wantRefusal("a", 1, "")
		if p := hold("a", 1); i == 0 {
			first = p
		}
	}
	wantRefusal("a", 1, "this client's approvals quota is full")
	wantRefusal("b", 1, "")
	a.drop(first)
	wantRefusal("a", 1, "")
	// A client's bytes.
	wantRefusal("b", MaxPendingBytesPerClient+1, "this client's approvals byte quota is full")
	hold("b", MaxPendingBytesPerClient)
	wantRefusal("b", 1, "this client's approvals byte quota is full")
	// The global bytes: eight clients at their byte quota fill it.
	for c := range 7 {
		hold(fmt.Sprint("c", c), MaxPendingBytesPerClient)
	}
	wantRefusal("d", 1, "the approvals store's byte budget is full")
	// The global count.
	a = approvals{}
	for c := range MaxPending / MaxPendingPerClient {
		for range MaxPendingPerClient {
			hold(fmt.Sprint("c", c), 1)
		}
	}
	wantRefusal("d", 1, "the approvals store is full")
	if a.bytes != MaxPending || len(a.byClient) != MaxPending/MaxPendingPerClient {
		t.Fatalf("accounts: %d bytes, %d clients", a.bytes, len(a.byClient))
	}
	for _, p := range a.m {
		a.drop(p)
	}
	if a.bytes != 0 || len(a.byClient) != 0 || len(a.m) != 0 {
		t.Fatalf("after dropping all: %d bytes, %d clients, %d held", a.bytes, len(a.byClient), len(a.m))
	}
}
