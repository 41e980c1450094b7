package watest

import (
	"fmt"
	"os"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	signallog "go.mau.fi/libsignal/logger"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// The root key is process-global because whatsmeow.WACertPubKey is: every
// Server of one test binary signs its intermediate certificate with it.
var (
	rootOnce sync.Once
	rootKey  *keys.KeyPair
)

// InstallRootKey generates a test root key pair and installs its public half
// as whatsmeow.WACertPubKey, once per process. New calls it; call it yourself
// only if a client must be created before the first Server. A test binary
// that calls it can no longer reach the real WhatsApp servers.
func InstallRootKey() {
	rootOnce.Do(func() {
		quietSignalLogger()
		rootKey = keys.NewKeyPair()
		whatsmeow.WACertPubKey = *rootKey.Pub
	})
}

// quietSignalLogger installs a libsignal logger up front: libsignal creates
// its default one lazily on first use, without synchronisation, which the
// race detector reports as soon as two clients (or a client and the double)
// encrypt at once.
func quietSignalLogger() {
	var l signallog.Loggable = signalLogger{}
	signallog.Setup(&l)
}

// signalLogger drops libsignal's debug and info chatter; whatsmeow reports
// the errors that matter with more context.
type signalLogger struct{}

func (signalLogger) Debug(string, string)   {}
func (signalLogger) Info(string, string)    {}
func (signalLogger) Warning(string, string) {}
func (signalLogger) Error(c, m string)      { fmt.Fprintf(os.Stderr, "libsignal: %s: %s\n", c, m) }
func (signalLogger) Configure(string)       {}

const intermediateSerial = 7

// makeCertChain builds the chain whatsmeow's verifyServerCert accepts: an
// intermediate signed (XEdDSA) by the root with issuer serial 0, and a leaf
// for the server's static key signed by the intermediate.
func makeCertChain(serverStatic *[32]byte) ([]byte, error) {
	InstallRootKey()
	now := time.Now()
	notBefore, notAfter := uint64(now.Add(-time.Hour).Unix()), uint64(now.Add(24*time.Hour).Unix())

	intermediate := keys.NewKeyPair()
	intermediateDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial),
		IssuerSerial: proto.Uint32(whatsmeow.WACertIssuerSerial),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(notBefore),
		NotAfter:     proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal intermediate details: %w", err)
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial + 1),
		IssuerSerial: proto.Uint32(intermediateSerial),
		Key:          serverStatic[:],
		NotBefore:    proto.Uint64(notBefore),
		NotAfter:     proto.Uint64(notAfter),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal leaf details: %w", err)
	}
	chain, err := proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{
			Details:   intermediateDetails,
			Signature: xeddsaSign(rootKey, intermediateDetails),
		},
		Leaf: &waCert.CertChain_NoiseCertificate{
			Details:   leafDetails,
			Signature: xeddsaSign(intermediate, leafDetails),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("marshal cert chain: %w", err)
	}
	return chain, nil
}

// xeddsaSign signs msg with a Curve25519 key the way libsignal verifies it.
func xeddsaSign(kp *keys.KeyPair, msg []byte) []byte {
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*kp.Priv), msg)
	return sig[:]
}
