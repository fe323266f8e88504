package kmip_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/kmip"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// lockedBuffer collects log output from every goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func secret32(t *testing.T) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// encodings are the forms a secret could leak in: raw, hex, base64 and
// Go's %v of a byte slice.
func encodings(b []byte) []string {
	return []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		strings.Trim(fmt.Sprint(b), "[]")}
}

// TestNoSecretsInDebugLogs runs a workload touching every kind of secret
// (registered and generated key material, plaintext, secret data such as
// a PIN, wrapped keys, MAC keys, derivation input) with the engine and the
// KMIP server logging at debug level, successes and failures alike, and
// asserts that none of the secrets appears in the logs in any common
// encoding.
func TestNoSecretsInDebugLogs(t *testing.T) {
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(logger)
	defer slog.SetDefault(prev)
	env := testkms.Start(t, testkms.Options{
		KMIP:   func(c *kmip.Config) { c.Logger = logger },
		Engine: func(c *engine.Config) { c.Logger = logger },
	})
	w := dialAdmin(t, env)

	regKey, kek, macKey, plaintext, aad := secret32(t), secret32(t), secret32(t), secret32(t), secret32(t)
	pin := "PIN-" + hex.EncodeToString(secret32(t))[:24]
	secrets := map[string][]byte{"registered key": regKey, "KEK": kek, "MAC key": macKey, "plaintext": plaintext, "PIN": []byte(pin)}
	if env.RootKey != nil {
		secrets["root key"] = env.RootKey
	}

	// Registered and generated symmetric keys, fetched in the clear and wrapped.
	id := w.registerSym(okmip.CryptographicAlgorithmAES, regKey, okmip.CryptographicUsageEncrypt|okmip.CryptographicUsageDecrypt)
	kekID := w.kwKEK(kek, okmip.CryptographicUsageWrapKey|okmip.CryptographicUsageUnwrapKey)
	ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id})
	gen := w.activeKey()
	genKey := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: gen})
	if sk, isSym := genKey.Object.(*okmip.SymmetricKey); isSym {
		if b, err := sk.KeyMaterial(); err == nil {
			secrets["generated key"] = b
		}
	}
	ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id, KeyWrappingSpecification: wrapSpec(kekID, 0, 0)})
	// Plaintext through Encrypt and Decrypt, then failures carrying it.
	ct := ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: plaintext, CorrelationValue: nil,
		CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}, AuthenticatedEncryptionAdditionalData: aad})
	ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, Data: ct.Data, IVCounterNonce: ct.IVCounterNonce,
		AuthenticatedEncryptionTag: ct.AuthenticatedEncryptionTag, AuthenticatedEncryptionAdditionalData: aad, CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}})
	bad := append([]byte{}, ct.AuthenticatedEncryptionTag...)
	bad[0] ^= 1
	w.fails(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, Data: ct.Data, IVCounterNonce: ct.IVCounterNonce, AuthenticatedEncryptionTag: bad,
		AuthenticatedEncryptionAdditionalData: aad, CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}}, okmip.ResultReasonCryptographicFailure)
	w.fails(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: "no-such-key", Data: plaintext}, okmip.ResultReasonItemNotFound)
	w.fails(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: plaintext, IVCounterNonce: make([]byte, 3),
		CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeCBC}}, okmip.ResultReasonInvalidField)
	// A bad AES key length: the material is refused, and not echoed.
	w.fails(v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey, Object: symmetricKey(okmip.KeyFormatTypeRaw, regKey[:31])}, okmip.ResultReasonInvalidField)
	// Secret data: a PIN registered and read back.
	pinID := ok[*payloads.RegisterResponsePayload](w, v14, &payloads.RegisterRequestPayload{ObjectType: okmip.ObjectTypeSecretData,
		Object: &okmip.SecretData{SecretDataType: okmip.SecretDataTypePassword, KeyBlock: okmip.KeyBlock{KeyFormatType: okmip.KeyFormatTypeOpaque,
			KeyValue: &okmip.KeyValue{Plain: &okmip.PlainKeyValue{KeyMaterial: okmip.KeyMaterial{Bytes: ptr([]byte(pin))}}}}}}).UniqueIdentifier
	ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: pinID})
	// MAC with a registered HMAC key.
	macID := w.registerSym(okmip.CryptographicAlgorithmHMACSHA256, macKey, okmip.CryptographicUsageMACGenerate|okmip.CryptographicUsageMACVerify)
	wantSuccess(t, w.one(v14, &isoMAC{UniqueIdentifier: macID, Data: plaintext,
		CryptographicParameters: &okmip.CryptographicParameters{CryptographicAlgorithm: okmip.CryptographicAlgorithmHMACSHA256}}))
	// A request naming the PIN as if it were an identifier.
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: pin}, okmip.ResultReasonItemNotFound)
	// Lifecycle to the end: Revoke and Destroy the registered key.
	ok[*payloads.RevokeResponsePayload](w, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id, RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeCessationOfOperation}})
	ok[*payloads.DestroyResponsePayload](w, v14, &payloads.DestroyRequestPayload{UniqueIdentifier: id})
	w.conn.Close()
	waitConns(t, env, 0, 2e9)

	out := logs.String()
	if len(out) == 0 {
		t.Fatal("the workload logged nothing: the test would prove nothing")
	}
	t.Logf("the workload logged %d bytes", len(out))
	for what, s := range secrets {
		for _, enc := range encodings(s) {
			if len(enc) >= 8 && strings.Contains(out, enc) {
				t.Errorf("the %s appears in the logs (as %q)", what, enc[:8]+"...")
			}
		}
	}
	// The PIN's identifier-shaped use must not be echoed either.
	if strings.Contains(out, pin) {
		t.Errorf("the PIN appears in the logs")
	}
}
