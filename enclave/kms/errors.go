package kms

import (
	"errors"
	"fmt"
	"strings"

	smithy "github.com/aws/smithy-go"
)

// ErrAccessDenied matches (with errors.Is) every [*AccessDeniedError].
var ErrAccessDenied = errors.New("kms: access denied")

// AccessDeniedError is KMS's AccessDeniedException: the key policy (or
// the role's IAM policy) refused the request. For the enclave's Recipient
// operations it most often means that the image is not the one the key
// policy names: its PCR0 (kms:RecipientAttestation:ImageSha384) changed.
type AccessDeniedError struct {
	// Operation is the KMS operation refused, such as "Decrypt".
	Operation string
	// Message is KMS's explanation, naming the principal, the action and
	// the key.
	Message string

	err error // the SDK's error
}

func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("kms: %s: access denied: %s", e.Operation, e.Message)
}

// Is reports whether target is ErrAccessDenied.
func (e *AccessDeniedError) Is(target error) bool { return target == ErrAccessDenied }

// Unwrap returns the SDK's error (a smithy.APIError).
func (e *AccessDeniedError) Unwrap() error { return e.err }

// ErrInvalidCiphertext matches (with errors.Is) every
// [*InvalidCiphertextError].
var ErrInvalidCiphertext = errors.New("kms: invalid ciphertext")

// InvalidCiphertextError is KMS's InvalidCiphertextException or
// IncorrectKeyException: the ciphertext does not decrypt under the key
// with the encryption context given (another key, another context, or a
// damaged blob). Unlike a refused or failed call, it is an answer about
// the input: the same input gets it again.
type InvalidCiphertextError struct {
	// Operation is the KMS operation, such as "Decrypt"; Code is KMS's
	// error code.
	Operation, Code string
	// Message is KMS's explanation.
	Message string

	err error // the SDK's error
}

func (e *InvalidCiphertextError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("kms: %s: %s", e.Operation, e.Code)
	}
	return fmt.Sprintf("kms: %s: %s: %s", e.Operation, e.Code, e.Message)
}

// Is reports whether target is ErrInvalidCiphertext.
func (e *InvalidCiphertextError) Is(target error) bool { return target == ErrInvalidCiphertext }

// Unwrap returns the SDK's error (a smithy.APIError).
func (e *InvalidCiphertextError) Unwrap() error { return e.err }

// apiError turns an error of the SDK's operation op into this package's:
// an AccessDeniedError for AccessDeniedException, an
// InvalidCiphertextError for InvalidCiphertextException and
// IncorrectKeyException, else the error wrapped.
func apiError(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); code {
		case "AccessDeniedException":
			return &AccessDeniedError{Operation: op, Message: ae.ErrorMessage(), err: err}
		case "InvalidCiphertextException", "IncorrectKeyException":
			return &InvalidCiphertextError{Operation: op, Code: code, Message: ae.ErrorMessage(), err: err}
		}
	}
	return fmt.Errorf("kms: %s: %w", op, err)
}

// opError is an error of this package's (or one that may be) in operation
// op, said once with the package's prefix: "kms: OP: cause".
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string {
	return "kms: " + e.op + ": " + strings.TrimPrefix(e.err.Error(), "kms: ")
}

func (e *opError) Unwrap() error { return e.err }
