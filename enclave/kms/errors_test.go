package kms

import (
	"errors"
	"strings"
	"testing"

	smithy "github.com/aws/smithy-go"
)

// TestAPIError: KMS's error codes map to the package's errors, which
// callers tell apart with errors.Is, and keep the SDK's error.
func TestAPIError(t *testing.T) {
	for _, tc := range []struct {
		code               string
		denied, ciphertext bool
	}{
		{"AccessDeniedException", true, false},
		{"InvalidCiphertextException", false, true},
		{"IncorrectKeyException", false, true},
		{"KMSInvalidStateException", false, false},
		{"ThrottlingException", false, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			sdk := &smithy.GenericAPIError{Code: tc.code, Message: "the message"}
			err := apiError("Decrypt", sdk)
			if errors.Is(err, ErrAccessDenied) != tc.denied || errors.Is(err, ErrInvalidCiphertext) != tc.ciphertext {
				t.Errorf("%v: access denied %v, invalid ciphertext %v; want %v, %v", err, errors.Is(err, ErrAccessDenied), errors.Is(err, ErrInvalidCiphertext), tc.denied, tc.ciphertext)
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Errorf("%v does not keep the SDK's error", err)
			}
			if !strings.HasPrefix(err.Error(), "kms: Decrypt: ") || !strings.Contains(err.Error(), "the message") {
				t.Errorf("message %q", err)
			}
		})
	}
	plain := apiError("Decrypt", errors.New("connection reset"))
	if errors.Is(plain, ErrAccessDenied) || errors.Is(plain, ErrInvalidCiphertext) || plain.Error() != "kms: Decrypt: connection reset" {
		t.Errorf("a network error: %v", plain)
	}
}
