package docscheck

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitrosign/nitrosign/admin"
	"github.com/nitrosign/nitrosign/agent/ethproxy"
	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/agent/txargs"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/attestation"
	"github.com/nitrosign/nitrosign/attestation/userdata"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/calldata"
	"github.com/nitrosign/nitrosign/client"
	"github.com/nitrosign/nitrosign/enclave"
	"github.com/nitrosign/nitrosign/enclave/cms"
	"github.com/nitrosign/nitrosign/enclave/kms"
	"github.com/nitrosign/nitrosign/enclave/nsm"
	"github.com/nitrosign/nitrosign/enclave/nsm/nsmwire"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/genesis"
	"github.com/nitrosign/nitrosign/internal/dirlock"
	"github.com/nitrosign/nitrosign/internal/rlp"
	"github.com/nitrosign/nitrosign/internal/strictjson"
	"github.com/nitrosign/nitrosign/policy"
	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/stamp"
	"github.com/nitrosign/nitrosign/summary"
)

// exported are the exported caps the size-caps table of docs/limits.md
// names, with their values in the code. Unexported caps the table names
// are not checked here (their packages' tests cover them).
var exported = map[string]int64{
	"api.MaxBodySize":               api.MaxBodySize,
	"api.MaxApprovalBodySize":       api.MaxApprovalBodySize,
	"api.MaxApprovalIDLen":          api.MaxApprovalIDLen,
	"api.MaxApproverLen":            api.MaxApproverLen,
	"api.MaxApprovalSignatureLen":   api.MaxApprovalSignatureLen,
	"api.MaxRequestIDLen":           api.MaxRequestIDLen,
	"api.MaxKeyLen":                 api.MaxKeyLen,
	"stamp.MaxHeaderSize":           stamp.MaxHeaderSize,
	"client.DefaultMaxResponseSize": client.DefaultMaxResponseSize,

	"jsonrpc.MaxBody":             jsonrpc.MaxBody,
	"jsonrpc.MaxBatch":            jsonrpc.MaxBatch,
	"jsonrpc.MaxMethod":           jsonrpc.MaxMethod,
	"txargs.MaxSize":              txargs.MaxSize,
	"ethproxy.DefaultMaxResponse": ethproxy.DefaultMaxResponse,

	"proto.MaxFrameSize":            proto.MaxFrameSize,
	"proto.MaxKeys":                 proto.MaxKeys,
	"proto.MaxKeyIDLen":             proto.MaxKeyIDLen,
	"proto.MaxKeyPathLen":           proto.MaxKeyPathLen,
	"proto.MaxSignBodyLen":          proto.MaxSignBodyLen,
	"proto.MaxStampLen":             proto.MaxStampLen,
	"proto.MaxSignedTransactionLen": proto.MaxSignedTransactionLen,
	"proto.MaxSummaryLen":           proto.MaxSummaryLen,
	"proto.MaxErrorCodeLen":         proto.MaxErrorCodeLen,
	"proto.MaxErrorRuleLen":         proto.MaxErrorRuleLen,
	"proto.MaxErrorMessageLen":      proto.MaxErrorMessageLen,
	"proto.MaxVersionLen":           proto.MaxVersionLen,
	"proto.MaxStateLen":             proto.MaxStateLen,
	"proto.MaxNonceLen":             proto.MaxNonceLen,
	"proto.MaxAttestationLen":       proto.MaxAttestationLen,
	"proto.MaxAuditRecordLen":       proto.MaxAuditRecordLen,
	"proto.MaxAuditRecords":         proto.MaxAuditRecords,
	"proto.MaxAuditKeyLen":          proto.MaxAuditKeyLen,
	"proto.MaxFailingLen":           proto.MaxFailingLen,
	"proto.MaxCredentialLen":        proto.MaxCredentialLen,
	"proto.MaxSealedLen":            proto.MaxSealedLen,
	"proto.MaxCheckpointLen":        proto.MaxCheckpointLen,
	"proto.MaxAdminLen":             proto.MaxAdminLen,
	"proto.MaxApprovalBodyLen":      proto.MaxApprovalBodyLen,
	"proto.MaxApprovalIDLen":        proto.MaxApprovalIDLen,
	"proto.MaxStatusLen":            proto.MaxStatusLen,
	"proto.MaxApprovers":            proto.MaxApprovers,
	"proto.MaxApproverLen":          proto.MaxApproverLen,
	"proto.MaxPendingPolicies":      proto.MaxPendingPolicies,
	"proto.MaxSigners":              proto.MaxSigners,
	"proto.MaxSignerLen":            proto.MaxSignerLen,

	"ethtx.MaxUnsignedSize":          ethtx.MaxUnsignedSize,
	"ethtx.MaxDataSize":              ethtx.MaxDataSize,
	"ethtx.MaxAccessListEntries":     ethtx.MaxAccessListEntries,
	"ethtx.MaxAccessListStorageKeys": ethtx.MaxAccessListStorageKeys,
	"ethtx.MaxBlobVersionedHashes":   ethtx.MaxBlobVersionedHashes,
	"ethtx.MaxAuthorizations":        ethtx.MaxAuthorizations,
	"calldata.MaxDepth":              calldata.MaxDepth,
	"calldata.MaxMultiSendCalls":     calldata.MaxMultiSendCalls,
	"ethmsg.MaxPersonalMessage":      ethmsg.MaxPersonalMessage,
	"ethmsg.MaxTypedDataSize":        ethmsg.MaxTypedDataSize,
	"ethmsg.MaxTypes":                ethmsg.MaxTypes,
	"ethmsg.MaxFields":               ethmsg.MaxFields,
	"ethmsg.MaxNameLength":           ethmsg.MaxNameLength,
	"ethmsg.MaxEncodeTypeLength":     ethmsg.MaxEncodeTypeLength,
	"ethmsg.MaxDepth":                ethmsg.MaxDepth,
	"ethmsg.MaxArrayLength":          ethmsg.MaxArrayLength,
	"ethmsg.MaxValues":               ethmsg.MaxValues,
	"strictjson.MaxDepth":            strictjson.MaxDepth,
	"rlp.MaxInputSize":               rlp.MaxInputSize,
	"rlp.MaxDepth":                   rlp.MaxDepth,
	"summary.MaxSize":                summary.MaxSize,
	"summary.MaxLines":               summary.MaxLines,
	"summary.MaxLineLen":             summary.MaxLineLen,
	"summary.MaxMessageLen":          summary.MaxMessageLen,
	"summary.MaxValueLen":            summary.MaxValueLen,

	"dirlock.MaxHolderSize": dirlock.MaxHolderSize,

	"audit.MaxRecordSize": audit.MaxRecordSize,
	"audit.MaxKindLen":    audit.MaxKindLen,
	"audit.MaxUnsigned":   audit.MaxUnsigned,
	"audit.MaxBatch":      audit.MaxBatch,
	"audit.MaxWarnings":   audit.MaxWarnings,

	"attestation.MaxDocumentSize": attestation.MaxDocumentSize,
	"nsm.MaxDocumentSize":         nsm.MaxDocumentSize,
	"nsm.MaxFieldSize":            nsm.MaxFieldSize,
	"nsm.MaxRandomChunk":          nsm.MaxRandomChunk,
	"nsmwire.MaxRequestFrame":     nsmwire.MaxRequestFrame,
	"nsmwire.MaxResponseFrame":    nsmwire.MaxResponseFrame,
	"nsmwire.MaxErrorSize":        nsmwire.MaxErrorSize,
	"userdata.MaxSize":            userdata.MaxSize,
	"kms.MaxRandomSize":           kms.MaxRandomSize,
	"cms.MaxSize":                 cms.MaxSize,
	"cms.MaxCiphertextSize":       cms.MaxCiphertextSize,

	"genesis.MaxSize":                genesis.MaxSize,
	"genesis.MaxAdditionalKeyIDs":    genesis.MaxAdditionalKeyIDs,
	"genesis.MaxRootCAPEMSize":       genesis.MaxRootCAPEMSize,
	"genesis.MaxAuditUnacknowledged": genesis.MaxAuditUnacknowledged,
	"genesis.DefaultMaxUnackedAudit": genesis.DefaultMaxUnackedAudit,
	"genesis.MaxTimeLock":            int64(genesis.MaxTimeLock),
	"enclave.MaxPendingPolicies":     enclave.MaxPendingPolicies,
	"policy.MaxDocumentSize":         policy.MaxDocumentSize,
	"admin.MaxCommandSize":           admin.MaxCommandSize,
	"admin.MaxEnvelopeSize":          admin.MaxEnvelopeSize,
	"admin.MaxEncryptedKeySize":      admin.MaxEncryptedKeySize,
	"admin.MaxMembers":               admin.MaxMembers,
	"admin.MaxConfigSize":            admin.MaxConfigSize,

	"genesis.MaxLimitsUnacknowledged": genesis.MaxLimitsUnacknowledged,

	"enclave.DefaultMaxReplayEntries": enclave.DefaultMaxReplayEntries,
	"enclave.BatchCloseRecords":       enclave.BatchCloseRecords,
	"enclave.BatchCloseDelay":         int64(enclave.BatchCloseDelay),
}

var constName = regexp.MustCompile("`([a-z]+\\.[A-Za-z0-9]+)`")

// parseValue reads a value as the table writes it: "4096", "1,000,000",
// "64 KiB", "1 MiB", "720 h", "1 ms", or a sum of those ("2 MiB + 64 KiB").
func parseValue(s string) (int64, bool) {
	var sum int64
	for term := range strings.SplitSeq(s, " + ") {
		num, unit, _ := strings.Cut(strings.TrimSpace(term), " ")
		n, err := strconv.ParseInt(strings.ReplaceAll(num, ",", ""), 10, 64)
		if err != nil {
			return 0, false
		}
		switch unit {
		case "":
		case "KiB":
			n <<= 10
		case "MiB":
			n <<= 20
		case "h":
			n *= int64(time.Hour)
		case "ms":
			n *= int64(time.Millisecond)
		default:
			return 0, false
		}
		sum += n
	}
	return sum, true
}

// TestLimitsDocCaps checks the size-caps table of docs/limits.md: every
// exported cap it names has the value the code gives it, and every cap
// listed above is in the table.
func TestLimitsDocCaps(t *testing.T) {
	md, err := os.ReadFile("../../docs/limits.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(md), "\n## Size caps\n")
	if !ok {
		t.Fatal(`docs/limits.md has no "## Size caps" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	seen := map[string]bool{}
	rows := 0
	for line := range strings.SplitSeq(table, "\n") {
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 3 || !strings.HasPrefix(line, "| ") {
			continue
		}
		names := constName.FindAllStringSubmatch(cells[1], -1)
		if len(names) == 0 {
			continue
		}
		rows++
		values := strings.Split(strings.TrimSpace(cells[2]), ", ")
		if len(values) != 1 && len(values) != len(names) {
			t.Errorf("row %q: %d constants, %d values", line, len(names), len(values))
			continue
		}
		for i, m := range names {
			name := m[1]
			_, rest, _ := strings.Cut(name, ".")
			if rest[0] < 'A' || rest[0] > 'Z' {
				continue // unexported
			}
			want, known := exported[name]
			if !known {
				t.Errorf("the table names %s, which this test does not know: add it to exported", name)
				continue
			}
			seen[name] = true
			v := values[0]
			if len(values) > 1 {
				v = values[i]
			}
			got, ok := parseValue(v)
			if !ok {
				t.Errorf("%s: cannot read the value %q", name, v)
			} else if got != want {
				t.Errorf("%s: the table says %q (%d), the code %d", name, v, got, want)
			}
		}
	}
	if rows < 40 {
		t.Errorf("read only %d rows of the table", rows)
	}
	for name := range exported {
		if !seen[name] {
			t.Errorf("%s is not in the table", name)
		}
	}
}
