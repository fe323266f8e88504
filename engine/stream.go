package engine

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
)

// Streamed (multi-part) Encrypt and Decrypt, KMIP 1.3+: the first request
// carries Init Indicator, the server answers a Correlation Value, later
// requests carry it, the last one Final Indicator. The protocol layer
// keeps a connection's streams by correlation value; a CipherStream keeps
// the cipher state.
//
// Every part re-checks the key (state, dates, usage mask, tenant), so a
// key revoked or destroyed mid-stream stops the stream; Usage Limits are
// charged per part. CBC and ECB hold back an incomplete block (and, when
// decrypting with padding, the last block) until the final part. A
// streamed GCM encryption returns each part's ciphertext at once and the
// tag with the final part; a streamed GCM decryption returns no plaintext
// before the tag verifies, so it holds the ciphertext (at most
// MaxStreamedGCMDecrypt bytes) and answers the plaintext with the final
// part.

// Limits of a stream.
const (
	// MaxStreamSize bounds the data of one stream.
	MaxStreamSize = 1 << 30
	// MaxStreamedGCMDecrypt bounds a streamed GCM decryption, which is
	// held until its tag verifies.
	MaxStreamedGCMDecrypt = 16 << 20
)

// StreamRequest opens a stream: the Encrypt or Decrypt with Init
// Indicator, less its data.
type StreamRequest struct {
	Decrypt bool
	ID      string
	Params  *CryptographicParameters
	IV      []byte
	AAD     []byte
}

// CipherStream is one streamed Encrypt or Decrypt. It is not safe for
// concurrent use (a connection's requests are sequential).
type CipherStream struct {
	e         *Engine
	p         Principal
	id        string
	reqParams *CryptographicParameters
	decrypt   bool
	params    CryptographicParameters
	block     cipher.Block
	bs        int

	cbc     cipher.BlockMode
	ctr     cipher.Stream
	sealer  *gcmSealer
	opener  cipher.AEAD
	iv, aad []byte
	pending []byte // CBC/ECB: data not yet processed; GCM decrypt: ciphertext
	total   int
	done    bool

	// Object is the key's identity.
	Object *Object
	// IV is the IV the server generated, answered with the first part.
	IV []byte
}

// StartStream checks the key and the parameters and opens a stream.
func (e *Engine) StartStream(ctx context.Context, p Principal, req StreamRequest) (*CipherStream, error) {
	op, use := OpEncrypt, UsageEncrypt
	if req.Decrypt {
		op, use = OpDecrypt, UsageDecrypt
	}
	if err := authorize(p, op); err != nil {
		return nil, err
	}
	if e.asymmetricTarget(ctx, p, req.ID) {
		return nil, errf(ErrNotSupported, "streamed %s applies to symmetric keys; send RSA data in one request", opVerb(use)+"ion")
	}
	c, k, params, err := e.cryptoKey(ctx, p, req.ID, req.Params, use)
	if err != nil {
		return nil, err
	}
	block, stdGCM, err := k.cipher(c.obj.Attrs.Algorithm())
	if err != nil {
		return nil, err
	}
	s := &CipherStream{e: e, p: p, id: c.obj.ID, reqParams: req.Params, decrypt: req.Decrypt, params: params,
		block: block, bs: block.BlockSize(), Object: c.obj.ref()}
	switch params.BlockCipherMode {
	case ModeGCM:
		if stdGCM == nil {
			return nil, errf(ErrInvalidField, "GCM needs a 128-bit block cipher (AES)")
		}
		if req.Decrypt {
			if req.IV == nil {
				return nil, errf(ErrInvalidMessage, "GCM decryption needs the IV")
			}
			aead, _, err := gcmFor(block, stdGCM, params, req.IV)
			if err != nil {
				return nil, err
			}
			s.opener, s.iv, s.aad = aead, append([]byte(nil), req.IV...), append([]byte(nil), req.AAD...)
			break
		}
		aead, nonceSize, err := gcmFor(block, stdGCM, params, req.IV)
		if err != nil {
			return nil, err
		}
		iv := req.IV
		if iv == nil {
			if params.RandomIV != nil && !*params.RandomIV {
				return nil, errf(ErrMissingData, "an IV is required when Random IV is false")
			}
			iv = make([]byte, nonceSize)
			if _, err := rand.Read(iv); err != nil {
				return nil, err
			}
			s.IV = iv
			if err := e.reserveGCM(ctx, c.obj, k); err != nil { // rekey.go
				return nil, err
			}
		}
		s.sealer = newGCMSealer(block, iv, req.AAD, aead.Overhead())
	case ModeCBC, ModeECB:
		if params.PaddingMethod != 0 && params.PaddingMethod != PadNone && params.PaddingMethod != PadPKCS5 {
			return nil, errf(ErrNotSupported, "streamed CBC and ECB take PKCS#5 padding or none")
		}
		if params.BlockCipherMode == ModeECB {
			if req.IV != nil {
				return nil, errf(ErrInvalidField, "ECB takes no IV")
			}
			break
		}
		iv, err := s.blockStreamIV(req, params, "CBC", "the IV")
		if err != nil {
			return nil, err
		}
		if req.Decrypt {
			s.cbc = cipher.NewCBCDecrypter(block, iv)
		} else {
			s.cbc = cipher.NewCBCEncrypter(block, iv)
		}
	case ModeCTR:
		iv, err := s.blockStreamIV(req, params, "CTR", "the initial counter block")
		if err != nil {
			return nil, err
		}
		s.ctr = cipher.NewCTR(block, iv)
	default:
		return nil, errf(ErrNotSupported, "block cipher mode 0x%X is not supported (GCM, CBC, ECB, CTR are)", uint32(params.BlockCipherMode))
	}
	return s, nil
}

// blockStreamIV is the IV of a streamed CBC or CTR: the client's (one
// block; required to decrypt) or, to encrypt without one, a fresh random
// one that the first answer carries (s.IV).
func (s *CipherStream) blockStreamIV(req StreamRequest, params CryptographicParameters, mode, what string) ([]byte, error) {
	if req.Decrypt {
		if req.IV == nil {
			return nil, errf(ErrInvalidMessage, "%s decryption needs %s", mode, what)
		}
		if len(req.IV) != s.bs {
			return nil, errf(ErrInvalidField, "%s needs a %d-byte IV, got %d bytes", mode, s.bs, len(req.IV))
		}
		return req.IV, nil
	}
	iv, gen, err := blockIV(req.IV, params, s.bs)
	if err != nil {
		return nil, err
	}
	if gen {
		s.IV = iv
	}
	return iv, nil
}

// Next processes one part: data, and with final the end of the stream.
// tag is the authentication tag of a GCM decryption (nil: the last bytes
// of the data, as before KMIP 1.4). It returns the output of the part and,
// for a final GCM encryption, the tag. After an error or the final part
// the stream is closed.
func (s *CipherStream) Next(ctx context.Context, data []byte, final bool, tag []byte) (out, tagOut []byte, err error) {
	if s.done {
		return nil, nil, errf(ErrInvalidField, "the stream is closed")
	}
	defer func() {
		if err != nil || final {
			s.Close()
		}
	}()
	use := UsageEncrypt
	if s.decrypt {
		use = UsageDecrypt
	}
	// The key as it is now: a revocation or destruction ends the stream.
	c, _, _, err := s.e.cryptoKey(ctx, s.p, s.id, s.reqParams, use)
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxDataSize {
		return nil, nil, errf(ErrLimit, "data larger than %d bytes", MaxDataSize)
	}
	s.total += len(data)
	if s.total > MaxStreamSize {
		return nil, nil, errf(ErrLimit, "a stream carries at most %d bytes", MaxStreamSize)
	}
	if !s.decrypt {
		if err := s.e.consumeUsage(ctx, c.obj, len(data)); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case s.sealer != nil:
		out = s.sealer.seal(data)
		if final {
			tagOut = s.sealer.tag()
		}
	case s.opener != nil:
		if len(s.pending)+len(data) > MaxStreamedGCMDecrypt {
			return nil, nil, errf(ErrLimit, "a streamed GCM decryption holds at most %d bytes until its tag verifies", MaxStreamedGCMDecrypt)
		}
		s.pending = append(s.pending, data...)
		if !final {
			return []byte{}, nil, nil
		}
		ct := s.pending
		if tag != nil {
			if len(tag) != s.opener.Overhead() {
				return nil, nil, errf(ErrInvalidField, "authentication tag is %d bytes, expected %d", len(tag), s.opener.Overhead())
			}
			ct = append(ct, tag...)
		} else if len(ct) < s.opener.Overhead() {
			return nil, nil, errf(ErrInvalidField, "data is shorter than the authentication tag")
		}
		out, err = s.opener.Open(nil, s.iv, ct, s.aad)
		if err != nil {
			return nil, nil, errf(ErrCryptoFailure, "authentication tag does not verify")
		}
	case s.ctr != nil:
		out = make([]byte, len(data))
		s.ctr.XORKeyStream(out, data)
	default: // CBC, ECB
		if out, err = s.blocks(data, final); err != nil {
			return nil, nil, err
		}
	}
	return out, tagOut, nil
}

// blocks runs CBC or ECB over whole blocks, holding back the rest.
func (s *CipherStream) blocks(data []byte, final bool) ([]byte, error) {
	s.pending = append(s.pending, data...)
	var in []byte
	switch {
	case final && !s.decrypt:
		p, err := pad(s.pending, s.params.PaddingMethod, s.bs)
		if err != nil {
			return nil, err
		}
		clear(s.pending)
		s.pending = p
		in = p
	case final:
		if len(s.pending)%s.bs != 0 || (len(s.pending) == 0 && s.params.PaddingMethod == PadPKCS5) {
			return nil, errf(ErrBadCiphertext, "ciphertext length %d is not a multiple of the %d-byte block", s.total, s.bs)
		}
		in = s.pending
	default:
		n := len(s.pending) / s.bs * s.bs
		if s.decrypt && s.params.PaddingMethod == PadPKCS5 && n == len(s.pending) && n > 0 {
			n -= s.bs // the last block carries the padding
		}
		in = s.pending[:n]
	}
	out := make([]byte, len(in))
	if s.cbc != nil {
		s.cbc.CryptBlocks(out, in)
	} else {
		for i := 0; i < len(in); i += s.bs {
			if s.decrypt {
				s.block.Decrypt(out[i:i+s.bs], in[i:i+s.bs])
			} else {
				s.block.Encrypt(out[i:i+s.bs], in[i:i+s.bs])
			}
		}
	}
	rest := copy(s.pending, s.pending[len(in):])
	clear(s.pending[rest:])
	s.pending = s.pending[:rest]
	if final && s.decrypt {
		pt, err := unpad(out, s.params.PaddingMethod, s.bs)
		if err != nil {
			clear(out)
			return nil, err
		}
		return pt, nil
	}
	return out, nil
}

// Close ends the stream and clears what it holds.
func (s *CipherStream) Close() {
	s.done = true
	clear(s.pending)
	s.pending = nil
	if s.sealer != nil {
		clear(s.sealer.ks[:])
	}
}
