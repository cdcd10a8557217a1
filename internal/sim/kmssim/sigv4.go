package kmssim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signature Version 4, as the KMS endpoint checks it: the Authorization
// header, not presigned query strings.
const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	sigService    = "kms"
	sigTerminator = "aws4_request"
	amzDateFormat = "20060102T150405Z"
	// maxSkew is how far X-Amz-Date may be from the server's clock.
	maxSkew = 5 * time.Minute
)

func errMissingAuth() *apiError {
	return newError(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
}

func errIncompleteSignature(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "IncompleteSignatureException", format, args...)
}

func errInvalidSignature(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidSignatureException", format, args...)
}

func errUnrecognizedClient() *apiError {
	return newError(http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
	signature                          []byte
}

// parseAuthorization reads
//
//	AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request,
//	    SignedHeaders=h1;h2;..., Signature=HEX
func parseAuthorization(h string) (*authorization, *apiError) {
	alg, rest, _ := strings.Cut(h, " ")
	if alg != sigAlgorithm {
		return nil, errIncompleteSignature("Unsupported authorization type %s; only %s is accepted.", quote(alg), sigAlgorithm)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, errIncompleteSignature("Authorization header has a malformed component %s.", quote(part))
		}
		if _, dup := fields[k]; dup {
			return nil, errIncompleteSignature("Authorization header has %s twice.", k)
		}
		fields[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, errIncompleteSignature("Authorization header requires '%s' parameter.", k)
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != sigTerminator || scope[0] == "" {
		return nil, errIncompleteSignature("Credential %s is not ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request.", quote(fields["Credential"]))
	}
	a := &authorization{accessKeyID: scope[0], date: scope[1], region: scope[2], service: scope[3]}
	a.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	for i, name := range a.signedHeaders {
		if name == "" || name != strings.ToLower(name) || i > 0 && name <= a.signedHeaders[i-1] {
			return nil, errIncompleteSignature("SignedHeaders %s is not a sorted list of distinct lower-case names.", quote(fields["SignedHeaders"]))
		}
	}
	if !slices.Contains(a.signedHeaders, "host") {
		return nil, errIncompleteSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if !slices.Contains(a.signedHeaders, "x-amz-date") {
		return nil, errIncompleteSignature("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}
	sig, err := hex.DecodeString(fields["Signature"])
	if err != nil || len(sig) != sha256.Size || fields["Signature"] != strings.ToLower(fields["Signature"]) {
		return nil, errIncompleteSignature("Signature is not 64 lower-case hexadecimal digits.")
	}
	a.signature = sig
	return a, nil
}

// authenticate checks the request's SigV4 signature, fully: the access key
// id names a known identity, the scope is this region and the kms service
// on the day of X-Amz-Date, X-Amz-Date is within maxSkew of now, the
// session token is the identity's, and the signature is the HMAC of the
// canonical request (method, path, query, signed headers, body digest)
// under the identity's secret. It returns the identity.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (*identity, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errMissingAuth()
	}
	a, apiErr := parseAuthorization(h)
	if apiErr != nil {
		return nil, apiErr
	}
	id, ok := s.identities[a.accessKeyID]
	if !ok {
		return nil, errUnrecognizedClient()
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(id.SessionToken)) != 1 {
		return nil, errUnrecognizedClient()
	}
	if a.service != sigService {
		return nil, errInvalidSignature("Credential should be scoped to correct service: '%s'.", sigService)
	}
	if a.region != s.region {
		return nil, errInvalidSignature("Credential should be scoped to a valid region, not %s.", quote(a.region))
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return nil, errIncompleteSignature("X-Amz-Date %s is not in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z'.", quote(amzDate))
	}
	if a.date != amzDate[:8] {
		return nil, errInvalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: %s != %s.", quote(a.date), quote(amzDate[:8]))
	}
	now = now.UTC()
	if t.Before(now.Add(-maxSkew)) {
		return nil, errInvalidSignature("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, now.Add(-maxSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if t.After(now.Add(maxSkew)) {
		return nil, errInvalidSignature("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			amzDate, now.Add(maxSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	creq := canonicalRequest(r, a.signedHeaders, body)
	scope := a.date + "/" + a.region + "/" + a.service + "/" + sigTerminator
	digest := sha256.Sum256([]byte(creq))
	toSign := sigAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(digest[:])
	key := hmacSHA256([]byte("AWS4"+id.SecretAccessKey), a.date)
	key = hmacSHA256(key, a.region)
	key = hmacSHA256(key, a.service)
	key = hmacSHA256(key, sigTerminator)
	if !hmac.Equal(hmacSHA256(key, toSign), a.signature) {
		return nil, errInvalidSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return id, nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest is SigV4's canonical form of r:
//
//	METHOD \n PATH \n QUERY \n name:value \n ... \n \n SIGNED;HEADERS \n HEX(SHA-256(body))
//
// with header values as canonicalValue makes them, several values of one
// header joined by commas.
func canonicalRequest(r *http.Request, signed []string, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	b.WriteString(canonicalPath(r.URL.EscapedPath()) + "\n")
	b.WriteString(canonicalQuery(r.URL.RawQuery) + "\n")
	for _, name := range signed {
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			values = r.Header.Values(name)
		}
		for i, v := range values {
			values[i] = canonicalValue(v)
		}
		b.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n")
	digest := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(digest[:]))
	return b.String()
}

// canonicalValue folds runs of spaces (U+0020) in a header value to one,
// and trims white space at both ends, as the AWS SDKs do before signing.
func canonicalValue(v string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(v[i])
	}
	return strings.TrimSpace(b.String())
}

// canonicalPath is the path as the client escaped it, or "/" for an empty
// one.
func canonicalPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// canonicalQuery sorts the query's parameters by name, then value, each
// escaped as SigV4 requires (RFC 3986 unreserved characters kept).
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return raw // the signature will not match
	}
	var pairs [][2]string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{sigEscape(k), sigEscape(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p[0] + "=" + p[1]
	}
	return strings.Join(out, "&")
}

func sigEscape(s string) string {
	const upperHex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + string(upperHex[c>>4]) + string(upperHex[c&0xf]))
		}
	}
	return b.String()
}
