package kmip_test

import (
	"bytes"
	"testing"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

func yes() *bool { b := true; return &b }

// streamEncrypt encrypts parts as one stream and returns the output of
// every part, the tag and the server IV.
func streamEncrypt(w *wireConn, id string, params *okmip.CryptographicParameters, iv, aad []byte, parts ...[]byte) (out [][]byte, tag, serverIV []byte) {
	w.t.Helper()
	first := ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: params,
		Data: parts[0], IVCounterNonce: iv, AuthenticatedEncryptionAdditionalData: aad, InitIndicator: yes()})
	if len(first.CorrelationValue) == 0 {
		w.t.Fatal("the opening part has no Correlation Value")
	}
	out = append(out, first.Data)
	for i, p := range parts[1:] {
		req := &payloads.EncryptRequestPayload{Data: p, CorrelationValue: first.CorrelationValue}
		if i == len(parts)-2 {
			req.FinalIndicator = yes()
		}
		r := ok[*payloads.EncryptResponsePayload](w, v14, req)
		if req.FinalIndicator != nil && r.CorrelationValue != nil {
			w.t.Fatal("the final part still answers a Correlation Value")
		}
		out = append(out, r.Data)
		tag = r.AuthenticatedEncryptionTag
	}
	return out, tag, first.IVCounterNonce
}

func TestStreamedEncryptEqualsOneShot(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	msg := bytes.Repeat([]byte("0123456789abcdef-streamed-"), 9) // 234 bytes, not whole blocks
	parts := [][]byte{msg[:7], msg[7:100], msg[100:101], msg[101:]}
	aad := []byte("header")

	t.Run("GCM, client IV of 8 bytes", func(t *testing.T) {
		w.t = t
		gcm := &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM, TagLength: 16}
		iv := []byte("8bytesIV")
		out, tag, _ := streamEncrypt(w, id, gcm, iv, aad, parts...)
		whole := ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm,
			Data: msg, IVCounterNonce: iv, AuthenticatedEncryptionAdditionalData: aad})
		if !bytes.Equal(bytes.Join(out, nil), whole.Data) || !bytes.Equal(tag, whole.AuthenticatedEncryptionTag) {
			t.Fatal("streamed GCM differs from one-shot GCM")
		}
		// Streamed decryption answers the plaintext only with the final,
		// verified part.
		d1 := ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm,
			Data: whole.Data[:50], IVCounterNonce: iv, AuthenticatedEncryptionAdditionalData: aad, InitIndicator: yes()})
		if len(d1.Data) != 0 {
			t.Fatalf("GCM decryption released %d bytes before the tag verified", len(d1.Data))
		}
		d2 := ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{Data: whole.Data[50:],
			CorrelationValue: d1.CorrelationValue, FinalIndicator: yes(), AuthenticatedEncryptionTag: whole.AuthenticatedEncryptionTag})
		if !bytes.Equal(d2.Data, msg) {
			t.Fatal("streamed GCM decryption does not give the message back")
		}
		// A wrong tag fails and ends the stream.
		d1 = ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm,
			Data: whole.Data, IVCounterNonce: iv, AuthenticatedEncryptionAdditionalData: aad, InitIndicator: yes()})
		bad := bytes.Clone(whole.AuthenticatedEncryptionTag)
		bad[0] ^= 1
		w.fails(v14, &payloads.DecryptRequestPayload{CorrelationValue: d1.CorrelationValue, FinalIndicator: yes(), AuthenticatedEncryptionTag: bad}, okmip.ResultReasonCryptographicFailure)
		w.fails(v14, &payloads.DecryptRequestPayload{CorrelationValue: d1.CorrelationValue, FinalIndicator: yes(), AuthenticatedEncryptionTag: whole.AuthenticatedEncryptionTag}, okmip.ResultReasonInvalidField)
	})
	t.Run("GCM, server IV", func(t *testing.T) {
		w.t = t
		gcm := &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM}
		out, tag, iv := streamEncrypt(w, id, gcm, nil, nil, parts...)
		if len(iv) != 12 || len(tag) != 16 {
			t.Fatalf("server IV %d bytes, tag %d bytes", len(iv), len(tag))
		}
		d := ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm,
			Data: bytes.Join(out, nil), IVCounterNonce: iv, AuthenticatedEncryptionTag: tag})
		if !bytes.Equal(d.Data, msg) {
			t.Fatal("one-shot decryption of a streamed encryption fails")
		}
	})
	for _, mode := range []okmip.BlockCipherMode{okmip.BlockCipherModeCBC, okmip.BlockCipherModeCTR} {
		t.Run(ttlvName(mode), func(t *testing.T) {
			w.t = t
			params := &okmip.CryptographicParameters{BlockCipherMode: mode}
			if mode == okmip.BlockCipherModeCBC {
				params.PaddingMethod = okmip.PaddingMethodPKCS5
			}
			out, _, iv := streamEncrypt(w, id, params, nil, nil, parts...)
			ct := bytes.Join(out, nil)
			whole := ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: params, Data: msg, IVCounterNonce: iv})
			if !bytes.Equal(ct, whole.Data) {
				t.Fatal("streamed encryption differs from one-shot")
			}
			// Decrypt in parts cut anywhere.
			d1 := ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: params,
				Data: ct[:33], IVCounterNonce: iv, InitIndicator: yes()})
			d2 := ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{Data: ct[33:], CorrelationValue: d1.CorrelationValue, FinalIndicator: yes()})
			if got := append(bytes.Clone(d1.Data), d2.Data...); !bytes.Equal(got, msg) {
				t.Fatal("streamed decryption does not give the message back")
			}
		})
	}
}

func ttlvName(m okmip.BlockCipherMode) string {
	if m == okmip.BlockCipherModeCBC {
		return "CBC"
	}
	return "CTR"
}

func TestStreamRefusals(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	cbc := &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeCBC, PaddingMethod: okmip.PaddingMethodPKCS5}
	open := func() []byte {
		return ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: cbc, Data: []byte("abc"), InitIndicator: yes()}).CorrelationValue
	}

	w.fails(v14, &payloads.EncryptRequestPayload{Data: []byte("x"), CorrelationValue: []byte("no such stream")}, okmip.ResultReasonInvalidField)
	w.fails(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, Data: []byte("x"), FinalIndicator: yes()}, okmip.ResultReasonInvalidField)

	c := open()
	w.fails(v14, &payloads.DecryptRequestPayload{Data: make([]byte, 16), CorrelationValue: c}, okmip.ResultReasonInvalidField) // an encryption stream
	other := &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeECB}
	w.fails(v14, &payloads.EncryptRequestPayload{Data: []byte("x"), CorrelationValue: c, CryptographicParameters: other}, okmip.ResultReasonInvalidField)
	// A failed part ended the stream.
	w.fails(v14, &payloads.EncryptRequestPayload{Data: []byte("x"), CorrelationValue: c}, okmip.ResultReasonInvalidField)

	// Repeating the opening parameters is allowed.
	c = open()
	ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{Data: []byte("x"), CorrelationValue: c, CryptographicParameters: cbc})

	// Streams belong to their connection.
	w2 := dialAdmin(t, env)
	w2.fails(v14, &payloads.EncryptRequestPayload{Data: []byte("x"), CorrelationValue: c}, okmip.ResultReasonInvalidField)
	w.t = t

	// A key revoked mid-stream stops it.
	ok[*payloads.RevokeResponsePayload](w, v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeKeyCompromise}})
	w.fails(v14, &payloads.EncryptRequestPayload{Data: []byte("x"), CorrelationValue: c, FinalIndicator: yes()}, okmip.ResultReasonPermissionDenied)

	// At most 16 open streams per connection.
	id2 := w2.activeKey()
	w2.t = t
	for i := 0; i < 16; i++ {
		ok[*payloads.EncryptResponsePayload](w2, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id2, CryptographicParameters: cbc, Data: []byte("a"), InitIndicator: yes()})
	}
	w2.fails(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id2, CryptographicParameters: cbc, Data: []byte("a"), InitIndicator: yes()}, okmip.ResultReasonPermissionDenied)
	w2.servesOK()

	// Another tenant cannot open a stream on the key.
	g := dialAs(t, env, "globex", "admin", engine.RoleAdmin)
	g.fails(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id2, CryptographicParameters: cbc, Data: []byte("a"), InitIndicator: yes()}, okmip.ResultReasonItemNotFound)
}
