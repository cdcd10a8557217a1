package kmssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxPolicySize is KMS's limit on a key policy, in characters.
const maxPolicySize = 32768

// Condition keys the simulator puts in a request's context, lower-cased
// (IAM condition keys are case-insensitive).
const (
	keyImageSHA384 = "kms:recipientattestation:imagesha384"
	// keyEncryptionContextPrefix, followed by a context key, is the
	// condition key of that key's value in the request's encryption
	// context (Encrypt, Decrypt, GenerateDataKey).
	keyEncryptionContextPrefix = "kms:EncryptionContext:"
	keyPCRPrefix               = "kms:recipientattestation:pcr"
	keyPrincipalARN            = "aws:principalarn"
	keyPrincipalAcct           = "aws:principalaccount"
	keyCallerAccount           = "kms:calleraccount"
)

// policy is a parsed key policy or identity-based policy.
type policy struct {
	statements []statement
}

// statement is one policy statement. principals is nil in identity-based
// policies, which apply to the identity they are attached to.
type statement struct {
	sid         string
	allow       bool
	principals  []string // the "AWS" principals; "*" for Principal "*"
	actions     []string // lower-cased patterns
	notAction   bool
	resources   []string
	notResource bool
	conditions  []condition
}

// condition is one key of one condition operator: values compared with a
// request context's value for key.
type condition struct {
	op       string // the operator without IfExists
	ifExists bool
	key      string // lower-cased
	values   []string
}

// operators the simulator evaluates. Others (ForAnyValue:, Arn*,
// Numeric*, Date*, IpAddress, ...) are refused when a policy is put, rather
// than evaluated wrongly.
var operators = map[string]bool{
	"StringEquals":              true,
	"StringNotEquals":           true,
	"StringEqualsIgnoreCase":    true,
	"StringNotEqualsIgnoreCase": true,
	"StringLike":                true,
	"StringNotLike":             true,
	"Bool":                      true,
	"Null":                      false, // no IfExists form
}

var (
	actionRE    = regexp.MustCompile(`^(\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$`)
	conditionRE = regexp.MustCompile(`^[a-zA-Z0-9-]+:[a-zA-Z0-9:/_.*-]+$`)
)

// parsePolicy reads a policy document: a key policy (every statement
// names a Principal) or an identity-based policy (none does). The error
// is the message of a MalformedPolicyDocumentException.
func parsePolicy(text string, keyPolicy bool) (*policy, error) {
	if n := utf8.RuneCountInString(text); n == 0 || n > maxPolicySize {
		return nil, fmt.Errorf("a policy is 1 to %d characters, not %d", maxPolicySize, n)
	}
	if !utf8.ValidString(text) {
		return nil, errors.New("the policy is not valid UTF-8")
	}
	if err := checkJSON([]byte(text)); err != nil {
		return nil, fmt.Errorf("the policy is not valid JSON: %v", err)
	}
	top, err := object([]byte(text), "the policy", "Version", "Id", "Statement")
	if err != nil {
		return nil, err
	}
	if v, ok := top["Version"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil || s != "2012-10-17" && s != "2008-10-17" {
			return nil, errors.New(`the policy's Version is neither "2012-10-17" nor "2008-10-17"`)
		}
	}
	if id, ok := top["Id"]; ok {
		var s string
		if json.Unmarshal(id, &s) != nil {
			return nil, errors.New("the policy's Id is not a string")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, errors.New("the policy has no Statement")
	}
	var list []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		list = []json.RawMessage{raw}
	} else if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return nil, errors.New("the policy's Statement is neither a statement nor a non-empty list of statements")
	}
	p := &policy{}
	for i, r := range list {
		st, err := parseStatement(r, keyPolicy)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i+1, err)
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

// object reads a JSON object with members among names.
func object(data []byte, what string, names ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &m) != nil {
		return nil, fmt.Errorf("%s is not a JSON object", what)
	}
	for name := range m {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("%s has an unknown element %s", what, quote(name))
		}
	}
	return m, nil
}

// stringList reads a string or a non-empty list of strings; with scalars,
// also booleans and numbers, as IAM accepts them in conditions.
func stringList(raw json.RawMessage, what string, scalars bool) ([]string, error) {
	var vs []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		if json.Unmarshal(t, &vs) != nil || len(vs) == 0 {
			return nil, fmt.Errorf("%s is an empty or malformed list", what)
		}
	} else {
		vs = []json.RawMessage{raw}
	}
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out = append(out, s)
			continue
		}
		var b bool
		var n json.Number
		switch {
		case scalars && json.Unmarshal(v, &b) == nil:
			out = append(out, fmt.Sprint(b))
		case scalars && json.Unmarshal(v, &n) == nil:
			out = append(out, n.String())
		default:
			return nil, fmt.Errorf("%s holds something other than strings", what)
		}
	}
	return out, nil
}

func parseStatement(raw json.RawMessage, keyPolicy bool) (statement, error) {
	var st statement
	m, err := object(raw, "the statement", "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition")
	if err != nil {
		return st, err
	}
	if v, ok := m["Sid"]; ok && json.Unmarshal(v, &st.sid) != nil {
		return st, errors.New("the Sid is not a string")
	}
	var effect string
	if json.Unmarshal(m["Effect"], &effect) != nil || effect != "Allow" && effect != "Deny" {
		return st, errors.New(`the Effect is neither "Allow" nor "Deny"`)
	}
	st.allow = effect == "Allow"

	if _, ok := m["NotPrincipal"]; ok {
		return st, errors.New("kmssim does not evaluate NotPrincipal")
	}
	if p, ok := m["Principal"]; !keyPolicy && ok {
		return st, errors.New("an identity-based policy statement names no Principal")
	} else if keyPolicy && !ok {
		return st, errors.New("a key policy statement must name a Principal")
	} else if ok {
		if st.principals, err = parsePrincipal(p); err != nil {
			return st, err
		}
	}

	actions, notActions := m["Action"], m["NotAction"]
	if (actions == nil) == (notActions == nil) {
		return st, errors.New("a statement has exactly one of Action and NotAction")
	}
	if st.notAction = notActions != nil; st.notAction {
		actions = notActions
	}
	if st.actions, err = stringList(actions, "Action", false); err != nil {
		return st, err
	}
	for i, a := range st.actions {
		if !actionRE.MatchString(a) {
			return st, fmt.Errorf("action %s is not SERVICE:ACTION or *", quote(a))
		}
		st.actions[i] = strings.ToLower(a)
	}

	resources, notResources := m["Resource"], m["NotResource"]
	if (resources == nil) == (notResources == nil) {
		return st, errors.New("a statement has exactly one of Resource and NotResource")
	}
	if st.notResource = notResources != nil; st.notResource {
		resources = notResources
	}
	if st.resources, err = stringList(resources, "Resource", false); err != nil {
		return st, err
	}

	if c, ok := m["Condition"]; ok {
		if st.conditions, err = parseConditions(c); err != nil {
			return st, err
		}
	}
	return st, nil
}

// parsePrincipal reads "*" or {"AWS": ..., "Service": ...}. Only AWS
// principals are kept: the simulator's requesters are IAM principals, so
// service and federated principals never match.
func parsePrincipal(raw json.RawMessage) ([]string, error) {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, errors.New(`the Principal is neither "*" nor an object`)
		}
		return []string{"*"}, nil
	}
	m, err := object(raw, "Principal", "AWS", "Service", "Federated", "CanonicalUser")
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New("the Principal is empty")
	}
	for kind, v := range m {
		if _, err := stringList(v, "Principal "+kind, false); err != nil {
			return nil, err
		}
	}
	aws := m["AWS"]
	if aws == nil {
		return []string{}, nil
	}
	out, _ := stringList(aws, "Principal AWS", false)
	for _, p := range out {
		if p == "*" || accountRE.MatchString(p) {
			continue
		}
		if _, _, ok := parsePrincipalARN(p); ok {
			continue
		}
		if acct, ok := strings.CutPrefix(p, "arn:aws:iam::"); ok && strings.HasSuffix(acct, ":root") && accountRE.MatchString(strings.TrimSuffix(acct, ":root")) {
			continue
		}
		return nil, fmt.Errorf("the AWS principal %s is not *, an account or an IAM principal ARN", quote(p))
	}
	return out, nil
}

func parseConditions(raw json.RawMessage) ([]condition, error) {
	var ops map[string]json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &ops) != nil {
		return nil, errors.New("the Condition is not an object")
	}
	var out []condition
	for _, name := range slices.Sorted(maps.Keys(ops)) {
		op, ifExists := strings.CutSuffix(name, "IfExists")
		canIfExists, known := operators[op]
		if !known || ifExists && !canIfExists {
			return nil, fmt.Errorf("kmssim does not evaluate the condition operator %s", quote(name))
		}
		var keys map[string]json.RawMessage
		if t := bytes.TrimSpace(ops[name]); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &keys) != nil || len(keys) == 0 {
			return nil, fmt.Errorf("condition %s is not a non-empty object", name)
		}
		for _, key := range slices.Sorted(maps.Keys(keys)) {
			if !conditionRE.MatchString(key) {
				return nil, fmt.Errorf("condition key %s is not PREFIX:NAME", quote(key))
			}
			values, err := stringList(keys[key], "the values of "+key, true)
			if err != nil {
				return nil, err
			}
			if op == "Null" || op == "Bool" {
				for _, v := range values {
					if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
						return nil, fmt.Errorf("condition %s on %s takes true or false, not %s", op, key, quote(v))
					}
				}
			}
			out = append(out, condition{op: op, ifExists: ifExists, key: strings.ToLower(key), values: values})
		}
	}
	return out, nil
}

// glob matches s against pattern, where * matches any run of characters
// and ? any one byte, as IAM's Action, Resource and StringLike do.
func glob(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := 0, 0
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if 0 < nextSx && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// principalMatch is how a statement's principals name an identity.
type principalMatch int

const (
	noPrincipal      principalMatch = iota
	accountPrincipal                // the identity's account: the key policy delegates to IAM
	directPrincipal                 // the identity itself, its role, or "*"
)

func (st *statement) principal(id *identity) principalMatch {
	best := noPrincipal
	for _, p := range st.principals {
		switch {
		case p == "*" || p == id.ARN:
			return directPrincipal
		case id.role != "" && strings.HasPrefix(p, "arn:aws:iam::"+id.account+":role/") &&
			(strings.HasSuffix(p, ":role/"+id.role) || strings.HasSuffix(p, "/"+id.role)):
			return directPrincipal
		case p == id.account || p == "arn:aws:iam::"+id.account+":root":
			best = accountPrincipal
		}
	}
	return best
}

// applies reports whether the statement's action, resource and conditions
// cover the request (not its principal).
func (st *statement) applies(action, resource string, ctx map[string]string) bool {
	action = strings.ToLower(action)
	matched := slices.ContainsFunc(st.actions, func(p string) bool { return glob(p, action) })
	if matched == st.notAction {
		return false
	}
	matched = slices.ContainsFunc(st.resources, func(p string) bool { return glob(p, resource) })
	if matched == st.notResource {
		return false
	}
	for _, c := range st.conditions {
		if !c.holds(ctx) {
			return false
		}
	}
	return true
}

// holds evaluates the condition in a request context: a positive operator
// holds when the key is present and equals one of the values; a negated
// one (StringNot...) when the key is absent or equals none of them;
// IfExists makes an absent key hold; Null "true" holds when the key is
// absent, "false" when present.
func (c *condition) holds(ctx map[string]string) bool {
	v, present := ctx[c.key]
	if c.op == "Null" {
		return slices.ContainsFunc(c.values, func(want string) bool { return strings.EqualFold(want, "true") != present })
	}
	if !present {
		return c.ifExists || strings.HasPrefix(c.op, "StringNot")
	}
	var eq func(want string) bool
	switch c.op {
	case "StringEquals", "StringNotEquals":
		eq = func(want string) bool { return v == want }
	case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase":
		eq = func(want string) bool { return strings.EqualFold(v, want) }
	case "StringLike", "StringNotLike":
		eq = func(want string) bool { return glob(want, v) }
	case "Bool":
		eq = func(want string) bool { return strings.EqualFold(v, want) }
	default:
		return false
	}
	matched := slices.ContainsFunc(c.values, eq)
	if strings.HasPrefix(c.op, "StringNot") {
		return !matched
	}
	return matched
}

// decision is the outcome of evaluating the policies for one request.
type decision struct {
	allowed  bool
	explicit bool   // an explicit Deny
	sid      string // the denying statement's Sid
	identity bool   // the identity-based policy decided (a Deny in it, or no Allow)
	expected []string
}

// evaluate decides a request as AWS does for KMS: an explicit Deny in the
// key policy or the identity's policy refuses it; otherwise the key policy
// must allow it, either naming the identity (or its role, or "*") or naming
// its account and the identity's policy allowing it too. For requests on
// no key (keyPolicy nil: CreateKey, ListKeys, GenerateRandom) the
// identity's policy alone decides. Without an Allow, the request is
// refused (default deny).
func evaluate(keyPolicy *policy, id *identity, action, resource string, ctx map[string]string) decision {
	var d decision
	keyDirect, keyAccount, idAllow := false, false, false
	if keyPolicy != nil {
		// The measurements the caller's Allow statements expect, whatever
		// decides: an explicit Deny of another image still reports them.
		for i := range keyPolicy.statements {
			if st := &keyPolicy.statements[i]; st.allow && st.principal(id) != noPrincipal {
				d.expected = append(d.expected, st.measurements(action, resource)...)
			}
		}
		for i := range keyPolicy.statements {
			st := &keyPolicy.statements[i]
			match := st.principal(id)
			if match == noPrincipal {
				continue
			}
			if !st.applies(action, resource, ctx) {
				continue
			}
			switch {
			case !st.allow:
				return decision{explicit: true, sid: st.sid, expected: d.expected}
			case match == directPrincipal:
				keyDirect = true
			default:
				keyAccount = true
			}
		}
	}
	if id.policy != nil {
		for i := range id.policy.statements {
			st := &id.policy.statements[i]
			if st.allow && keyPolicy == nil {
				d.expected = append(d.expected, st.measurements(action, resource)...)
			}
			if !st.applies(action, resource, ctx) {
				continue
			}
			if !st.allow {
				return decision{explicit: true, sid: st.sid, identity: true}
			}
			idAllow = true
		}
	}
	if keyPolicy == nil {
		d.allowed, d.identity = idAllow, !idAllow
		return d
	}
	d.allowed = keyDirect || keyAccount && idAllow
	d.identity = !d.allowed && keyAccount
	return d
}

// measurements returns the image measurements an Allow statement for the
// action compares the request's with (the values of its conditions on
// ImageSha384 or PCR0), for the denial's details.
func (st *statement) measurements(action, resource string) []string {
	if !st.appliesIgnoringConditions(action, resource) {
		return nil
	}
	var out []string
	for _, c := range st.conditions {
		if (c.key == keyImageSHA384 || c.key == keyPCRPrefix+"0") && !strings.HasPrefix(c.op, "StringNot") && c.op != "Null" && c.op != "Bool" {
			out = append(out, c.values...)
		}
	}
	return out
}

func (st *statement) appliesIgnoringConditions(action, resource string) bool {
	bare := *st
	bare.conditions = nil
	return bare.applies(action, resource, nil)
}
