package api

import "encoding/json"

// PolicyResponse is the answer to GET /v1/policy.
type PolicyResponse struct {
	Version    uint64          `json:"version"`
	Hash       string          `json:"policy_hash"`
	Document   json.RawMessage `json:"document"`
	TimeLockMS int64           `json:"time_lock_ms"`
	Pending    []PendingPolicy `json:"pending"`
}

// PendingPolicy is a change waiting for its time lock.
type PendingPolicy struct {
	Version     uint64          `json:"version"`
	Hash        string          `json:"policy_hash"`
	EffectiveMS int64           `json:"effective_at_ms"`
	Signers     []string        `json:"signers"`
	Document    json.RawMessage `json:"document"`
}
