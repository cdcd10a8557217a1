package attestation

import "testing"

func TestZZScratchNitriteOnRefused(t *testing.T) {
	for _, tc := range verifyCases() {
		if tc.check == "" || tc.check == CheckOptions || tc.check == CheckPCRs || tc.check == CheckNonce || tc.check == CheckDebug || tc.check == CheckUserData {
			continue
		}
		b := tc.build(t)
		opts := testOptions(b.ca)
		if tc.opts != nil {
			tc.opts(&opts)
		}
		res, err := nitriteVerify(b.doc, opts)
		if err == nil && res.SignatureOK {
			t.Logf("nitrite ACCEPTS %-45s (we: %s)", tc.name, tc.check)
		} else if err != nil && len(err.Error()) > 6 && err.Error()[:6] == "panic:" {
			t.Logf("nitrite PANICS  %-45s (we: %s)", tc.name, tc.check)
		}
	}
}
