package kms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

var (
	// ErrNoCredentials is returned (wrapped) when the host has not pushed
	// credentials yet.
	ErrNoCredentials = errors.New("kms: no credentials: the host has not pushed any")
	// ErrCredentialsExpired is returned (wrapped) for credentials whose
	// expiry has passed: by Set, and by an operation whose credentials
	// expired before the host pushed new ones.
	ErrCredentialsExpired = errors.New("kms: credentials expired")
)

// PushedCredentials are AWS credentials that the host pushes into the
// enclave, which has no IMDS of its own: the host fetches the parent
// instance role's credentials from IMDSv2 and sends them over its protocol
// whenever they are renewed, and the enclave calls Set. It implements
// [aws.CredentialsProvider] for [Config.Credentials]; the SDK asks it for
// credentials on every request, so a Set takes effect at the next request.
//
// Credentials are only for availability: the host can read them anyway,
// since it fetched them; what keeps the sealing key from it is the key
// policy's attestation condition. PushedCredentials still never puts the
// secret access key or session token into an error or a string (String
// and GoString print the expiry only), so that they do not land in logs.
//
// The zero value is usable and uses time.Now; its methods are safe for
// concurrent use.
type PushedCredentials struct {
	now func() time.Time

	mu    sync.RWMutex
	creds aws.Credentials
	set   bool
}

var _ aws.CredentialsProvider = (*PushedCredentials)(nil)

// NewPushedCredentials returns an empty PushedCredentials whose expiry
// checks use now (nil: time.Now).
func NewPushedCredentials(now func() time.Time) *PushedCredentials {
	return &PushedCredentials{now: now}
}

func (p *PushedCredentials) clock() time.Time {
	if p.now == nil {
		return time.Now()
	}
	return p.now()
}

// Set replaces the credentials with c. It refuses, keeping the previous
// ones, credentials without an access key id or secret, temporary ones
// (with a session token) without an expiry, and ones that have expired.
func (p *PushedCredentials) Set(c aws.Credentials) error {
	// Temporary credentials (the instance role's, from IMDS) come with
	// their expiry; without it, Retrieve could not tell they expired.
	if c.SessionToken != "" && !c.CanExpire {
		return errors.New("kms: temporary credentials (with a session token) without an expiry")
	}
	if err := check(c, p.clock()); err != nil {
		return err
	}
	c.Source = "nitrosign: pushed by the host"
	p.mu.Lock()
	p.creds, p.set = c, true
	p.mu.Unlock()
	return nil
}

// check refuses credentials that cannot sign a request at now. Its errors
// name no field's value but the expiry.
func check(c aws.Credentials, now time.Time) error {
	switch {
	case c.AccessKeyID == "" || c.SecretAccessKey == "":
		return errors.New("kms: credentials without an access key id or secret access key")
	case c.CanExpire && c.Expires.IsZero():
		return errors.New("kms: credentials that can expire have no expiry time")
	case c.CanExpire && !now.Before(c.Expires):
		return fmt.Errorf("%w at %s (now %s)", ErrCredentialsExpired, c.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Retrieve returns the credentials last Set, or an error if there are none
// or they have expired.
func (p *PushedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.RLock()
	c, ok := p.creds, p.set
	p.mu.RUnlock()
	if !ok {
		return aws.Credentials{}, ErrNoCredentials
	}
	if err := check(c, p.clock()); err != nil {
		return aws.Credentials{}, fmt.Errorf("%w; the host must push fresh ones", err)
	}
	return c, nil
}

// String describes the credentials without their secrets.
func (p *PushedCredentials) String() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch {
	case !p.set:
		return "kms.PushedCredentials{none}"
	case p.creds.CanExpire:
		return "kms.PushedCredentials{expires " + p.creds.Expires.UTC().Format(time.RFC3339) + "}"
	default:
		return "kms.PushedCredentials{long-term}"
	}
}

// GoString is String, so that %#v does not print the fields.
func (p *PushedCredentials) GoString() string { return p.String() }
