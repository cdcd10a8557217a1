package nsmsim

import (
	"crypto/sha512"
	"fmt"
	"io"
	"os"
)

// Measurement is PCR0, PCR1 and PCR2 of an image, as defined in the package
// documentation.
type Measurement struct {
	PCR0, PCR1, PCR2 [48]byte
}

// kernelPCR1 is the simulator's PCR1: a constant, as AWS's is for every
// image built with one nitro-cli version.
var kernelPCR1 = sha512.Sum384([]byte("nitrosign nsmsim: kernel and bootstrap v1"))

// MeasureBytes measures an image made of the enclave binary and its
// genesis configuration.
func MeasureBytes(binary, genesis []byte) Measurement {
	return measurement(sha512.Sum384(binary), sha512.Sum384(genesis))
}

func measurement(b, g [48]byte) Measurement {
	return Measurement{
		PCR0: sha512.Sum384(append(b[:], g[:]...)),
		PCR1: kernelPCR1,
		PCR2: b,
	}
}

// Measure measures the image made of the enclave binary at binaryPath and
// the genesis configuration at genesisPath.
func Measure(binaryPath, genesisPath string) (Measurement, error) {
	b, err := hashFile(binaryPath)
	if err != nil {
		return Measurement{}, err
	}
	g, err := hashFile(genesisPath)
	if err != nil {
		return Measurement{}, err
	}
	return measurement(b, g), nil
}

// MeasureImage returns the PCR0 of the image made of the enclave binary at
// binaryPath and the genesis configuration at genesisPath:
// SHA-384(SHA-384(binary) ‖ SHA-384(genesis)).
func MeasureImage(binaryPath, genesisPath string) ([48]byte, error) {
	m, err := Measure(binaryPath, genesisPath)
	return m.PCR0, err
}

func hashFile(path string) ([48]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [48]byte{}, fmt.Errorf("nsmsim: measure: %w", err)
	}
	defer f.Close()
	h := sha512.New384()
	if _, err := io.Copy(h, f); err != nil {
		return [48]byte{}, fmt.Errorf("nsmsim: measure %s: %w", path, err)
	}
	return [48]byte(h.Sum(nil)), nil
}
