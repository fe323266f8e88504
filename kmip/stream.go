package kmip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"slices"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
)

// Streamed Encrypt and Decrypt (KMIP 1.3+, §4.29-4.30 of KMIP 1.4): a
// request with Init Indicator opens a stream and is answered with a
// Correlation Value; requests with that value continue it; Final Indicator
// ends it. Streams belong to the connection that opened them (a value is
// unknown on every other connection, and of no use in another tenant) and
// end with it; a failed part ends its stream. At most maxStreams are open
// on a connection. The cipher state is the engine's (engine/stream.go).

// maxStreams bounds the open streams of one connection.
const maxStreams = 16

type stream struct {
	cs      *engine.CipherStream
	decrypt bool
	// what the opening request set
	params  *kmip.CryptographicParameters
	iv, aad []byte
}

// sameParams reports whether a later part's Cryptographic Parameters
// (nil: not repeated) are the opening request's.
func sameParams(later, opening *kmip.CryptographicParameters) bool {
	return later == nil || (opening != nil && reflect.DeepEqual(*later, *opening))
}

// streamPart is the stream fields of an Encrypt or Decrypt request.
type streamPart struct {
	decrypt     bool
	id          string // Unique Identifier as sent (may be empty)
	params      *kmip.CryptographicParameters
	data, iv    []byte
	aad, tag    []byte
	correlation []byte
	init, final bool
}

// streaming reports whether a request is a part of a stream: an Init
// Indicator without a Final one, or a Correlation Value. Init and Final
// both true is a whole message in one request.
func (p *streamPart) streaming() bool {
	return p.correlation != nil || (p.init && !p.final)
}

// streamResult is the answer to one part.
type streamResult struct {
	id          string
	data, iv    []byte
	tag         []byte
	correlation []byte
}

func (s *session) streamStep(ctx context.Context, p streamPart) (streamResult, error) {
	r, err := s.streamStepData(ctx, p)
	if len(r.data) == 0 {
		r.data = nil // a part that completes no block answers no Data
	}
	return r, err
}

func (s *session) streamStepData(ctx context.Context, p streamPart) (streamResult, error) {
	var res streamResult
	verb := "encryption"
	if p.decrypt {
		verb = "decryption"
	}
	if p.correlation == nil {
		if len(s.streams) >= maxStreams {
			return res, errReason(kmip.ResultReasonPermissionDenied, "too many open streams on this connection: finish one with Final Indicator first")
		}
		id, err := s.id(p.id)
		if err != nil {
			return res, err
		}
		params, err := cryptoParams(p.params)
		if err != nil {
			return res, err
		}
		cs, err := s.eng.StartStream(ctx, s.p, engine.StreamRequest{Decrypt: p.decrypt, ID: id, Params: params, IV: p.iv, AAD: p.aad})
		if err != nil {
			return res, err
		}
		out, _, err := cs.Next(ctx, p.data, false, nil)
		if err != nil {
			return res, err
		}
		corr := make([]byte, 16)
		if _, err := rand.Read(corr); err != nil {
			cs.Close()
			return res, err
		}
		if s.streams == nil {
			s.streams = map[string]*stream{}
		}
		s.streams[hex.EncodeToString(corr)] = &stream{cs: cs, decrypt: p.decrypt, params: p.params, iv: slices.Clone(p.iv), aad: slices.Clone(p.aad)}
		if p.decrypt {
			s.scrubLater(out)
		}
		return streamResult{id: cs.Object.ID, data: out, iv: cs.IV, correlation: corr}, nil
	}
	key := hex.EncodeToString(p.correlation)
	st, ok := s.streams[key]
	if !ok {
		return res, errReason(kmip.ResultReasonInvalidField, "the Correlation Value names no open streamed "+verb+" on this connection")
	}
	res, err := s.continueStream(ctx, st, p)
	if err != nil || p.final {
		st.cs.Close()
		delete(s.streams, key) // a failed part ends its stream
	}
	return res, err
}

// continueStream runs a later part of the open stream st.
func (s *session) continueStream(ctx context.Context, st *stream, p streamPart) (streamResult, error) {
	var res streamResult
	if st.decrypt != p.decrypt {
		return res, errReason(kmip.ResultReasonInvalidField, "the Correlation Value names a stream of the other operation (Encrypt or Decrypt)")
	}
	if p.init {
		return res, errReason(kmip.ResultReasonInvalidField, "Init Indicator opens a stream; a Correlation Value continues one: not both")
	}
	if p.id != "" && p.id != st.cs.Object.ID {
		return res, errReason(kmip.ResultReasonInvalidField, "the Unique Identifier is not the stream's key")
	}
	// Cryptographic Parameters, IV and additional data belong to the
	// opening request; a later part may repeat them, not change them.
	if !sameParams(p.params, st.params) || (p.iv != nil && !bytes.Equal(p.iv, st.iv)) || (p.aad != nil && !bytes.Equal(p.aad, st.aad)) {
		return res, errReason(kmip.ResultReasonInvalidField, "Cryptographic Parameters, IV and additional data are set when the stream opens; a later part may only repeat them")
	}
	out, tag, err := st.cs.Next(ctx, p.data, p.final, p.tag)
	if err != nil {
		return res, err
	}
	if p.decrypt {
		s.scrubLater(out)
	}
	res = streamResult{id: st.cs.Object.ID, data: out, tag: tag}
	if !p.final {
		res.correlation = p.correlation
	}
	return res, nil
}

// closeStreams ends the connection's streams.
func (s *session) closeStreams() {
	for k, st := range s.streams {
		st.cs.Close()
		delete(s.streams, k)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// encryptPartResponse answers one part of a streamed Encrypt: a part that
// completes no block has no Data.
type encryptPartResponse struct {
	UniqueIdentifier           string
	Data                       []byte `ttlv:",omitempty"`
	IVCounterNonce             []byte `ttlv:",omitempty"`
	CorrelationValue           []byte `ttlv:",omitempty,version=v1.3.."`
	AuthenticatedEncryptionTag []byte `ttlv:",omitempty,version=v1.4.."`
}

func (*encryptPartResponse) Operation() kmip.Operation { return kmip.OperationEncrypt }

// decryptPartResponse answers one part of a streamed Decrypt.
type decryptPartResponse struct {
	UniqueIdentifier string
	Data             []byte `ttlv:",omitempty"`
	CorrelationValue []byte `ttlv:",omitempty,version=v1.3.."`
}

func (*decryptPartResponse) Operation() kmip.Operation { return kmip.OperationDecrypt }
