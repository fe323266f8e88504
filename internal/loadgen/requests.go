package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// Bench objects are tagged so an administrator can find (and destroy) them:
// Locate by Object Group "minikms-bench".
const (
	benchGroup = "minikms-bench"
	// locateKeys is how many named keys the locate operation looks up, in
	// turn.
	locateKeys = 4
	// gcmTagSize is the tag the server appends to the ciphertext before
	// KMIP 1.4 (which has no Authenticated Encryption Tag field).
	gcmTagSize = 16
)

// mixSchedule is the mix operation: out of every 20 requests of a
// connection, 14 Encrypt (70%), 4 Decrypt (20%), 1 Get (5%) and 1 Locate
// (5%), in an order shuffled per connection so the connections do not move
// in lockstep.
var mixSchedule = map[Op]int{OpEncrypt: 14, OpDecrypt: 4, OpGet: 1, OpLocate: 1}

// request is one pre-encoded request and how to check its answer.
type request struct {
	op  kmip.Operation
	raw []byte
	// check inspects a successful answer's payload; nil when success and
	// a payload are all there is to check.
	check func(payload []byte) error
	// fresh, when set, encodes a new request for every send and raw is
	// unused (certify sends a new CSR each time).
	fresh func() ([]byte, error)
}

// bytes returns the encoded request to send now. An error is the client's
// own (making the request), counted under "client: ...".
func (q *request) bytes() ([]byte, error) {
	if q.fresh == nil {
		return q.raw, nil
	}
	raw, err := q.fresh()
	if err != nil {
		return nil, &clientError{err: err}
	}
	return raw, nil
}

// encodeRequest encodes a one-item request message. The header carries no
// Time Stamp, so the bytes of a request never change and are encoded once.
func encodeRequest(v kmip.ProtocolVersion, pl kmip.OperationPayload) []byte {
	msg := kmip.RequestMessage{
		Header:    kmip.RequestHeader{ProtocolVersion: v, BatchCount: 1},
		BatchItem: []kmip.RequestBatchItem{{Operation: pl.Operation(), RequestPayload: pl}},
	}
	return ttlv.MarshalTTLV(&msg)
}

// verify checks one response to q: its structure, a Success status, the
// operation it answers, a payload, and the operation's own check.
func (q *request) verify(msg []byte) error {
	res, err := parseResponse(msg)
	if err != nil {
		return err
	}
	if res.status != kmip.ResultStatusSuccess {
		return &resultError{status: res.status, reason: res.reason, message: string(res.message)}
	}
	if res.operation != q.op {
		return protoErr("wrong operation", "the answer is for %s, the request was %s", enumName(res.operation), enumName(q.op))
	}
	if res.payload == nil {
		return protoErr("unexpected payload", "%s succeeded without a response payload", enumName(q.op))
	}
	if q.check != nil {
		return q.check(res.payload)
	}
	return nil
}

// fixture is what setup prepared on the server before the load starts.
type fixture struct {
	keyID       string            // an active AES-256 key (encrypt, decrypt, get, mix)
	plaintext   []byte            // Size bytes
	sealed      []sealedPlaintext // one per worker (decrypt, mix)
	located     []string          // ids of the named keys, in name order (locate, mix)
	names       []string
	tlsVersion  uint16
	version     kmip.ProtocolVersion
	payloadSize int
	tagLength   int32
}

type sealedPlaintext struct {
	data, iv, tag []byte
}

// setupConn is a plain client for the few setup calls; it decodes answers
// fully with the codec.
type setupConn struct {
	conn    *tls.Conn
	version kmip.ProtocolVersion
	timeout time.Duration
	buf     []byte
}

// call sends one operation and returns its payload, or the failure.
func (s *setupConn) call(pl kmip.OperationPayload) (kmip.OperationPayload, error) {
	s.conn.SetDeadline(time.Now().Add(s.timeout))
	if _, err := s.conn.Write(encodeRequest(s.version, pl)); err != nil {
		return nil, err
	}
	var err error
	if s.buf, err = readFrame(s.conn, s.buf); err != nil {
		return nil, err
	}
	resp, err := decodeResponse(s.buf)
	if err != nil {
		return nil, err
	}
	if len(resp.BatchItem) != 1 {
		return nil, protoErr("batch count", "%d batch items in the answer", len(resp.BatchItem))
	}
	bi := resp.BatchItem[0]
	if bi.ResultStatus != kmip.ResultStatusSuccess {
		return nil, &resultError{status: bi.ResultStatus, reason: bi.ResultReason, message: bi.ResultMessage}
	}
	if bi.ResponsePayload == nil {
		return nil, protoErr("unexpected payload", "no response payload")
	}
	return bi.ResponsePayload, nil
}

// decodeResponse decodes a whole response with the codec. The codec
// trusts some inner lengths and can panic on a malformed message (found by
// FuzzParseResponse), so a panic is turned into a protocol error.
func decodeResponse(msg []byte) (resp kmip.ResponseMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = protoErr("undecodable response", "the KMIP codec failed on it: %v", r)
		}
	}()
	if err := ttlv.UnmarshalTTLV(msg, &resp); err != nil {
		return resp, protoErr("undecodable response", "%v", err)
	}
	return resp, nil
}

func callAs[T kmip.OperationPayload](s *setupConn, pl kmip.OperationPayload) (T, error) {
	var zero T
	out, err := s.call(pl)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", enumName(pl.Operation()), err)
	}
	t, ok := out.(T)
	if !ok {
		return zero, fmt.Errorf("%s: %w", enumName(pl.Operation()), protoErr("unexpected payload", "payload of type %T", out))
	}
	return t, nil
}

func aesTemplate(extra ...kmip.Attribute) kmip.TemplateAttribute {
	return kmip.TemplateAttribute{Attribute: append([]kmip.Attribute{
		{AttributeName: kmip.AttributeNameCryptographicAlgorithm, AttributeValue: kmip.CryptographicAlgorithmAES},
		{AttributeName: kmip.AttributeNameCryptographicLength, AttributeValue: int32(256)},
		{AttributeName: kmip.AttributeNameCryptographicUsageMask, AttributeValue: kmip.CryptographicUsageEncrypt | kmip.CryptographicUsageDecrypt},
		{AttributeName: kmip.AttributeNameObjectGroup, AttributeValue: benchGroup},
	}, extra...)}
}

func createKeyPayload(extra ...kmip.Attribute) *payloads.CreateRequestPayload {
	return &payloads.CreateRequestPayload{ObjectType: kmip.ObjectTypeSymmetricKey, TemplateAttribute: aesTemplate(extra...)}
}

func nameAttr(name string) kmip.Attribute {
	return kmip.Attribute{AttributeName: kmip.AttributeNameName, AttributeValue: kmip.Name{NameValue: name, NameType: kmip.NameTypeUninterpretedTextString}}
}

// gcmParams are the Cryptographic Parameters of encrypt and decrypt;
// tagLength, when not zero, is sent as Tag Length (servers such as PyKMIP
// require it for GCM).
func gcmParams(tagLength int32) *kmip.CryptographicParameters {
	random := true
	return &kmip.CryptographicParameters{BlockCipherMode: kmip.BlockCipherModeGCM, CryptographicAlgorithm: kmip.CryptographicAlgorithmAES, RandomIV: &random, TagLength: tagLength}
}

func queryPayload() *payloads.QueryRequestPayload {
	return &payloads.QueryRequestPayload{QueryFunction: []kmip.QueryFunction{kmip.QueryFunctionServerInformation}}
}

// prepare checks that the server answers (one Query) and creates what the
// operation needs.
func prepare(ctx context.Context, cfg Config, tlsCfg *tls.Config) (*fixture, error) {
	conn, err := dial(ctx, cfg, tlsCfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w%s", cfg.Addr, err, hint(err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s := &setupConn{conn: conn, version: cfg.Version, timeout: cfg.Timeout}
	fx := &fixture{tlsVersion: conn.ConnectionState().Version, version: cfg.Version, payloadSize: cfg.Size, tagLength: int32(cfg.TagLength)}
	// With TLS 1.3 a refused client certificate shows only on the first
	// read: this Query is what proves the server accepts us.
	if _, err := callAs[*payloads.QueryResponsePayload](s, queryPayload()); err != nil {
		return nil, fmt.Errorf("first request to %s: %w%s", cfg.Addr, err, hint(err))
	}
	needKey := cfg.Op == OpEncrypt || cfg.Op == OpDecrypt || cfg.Op == OpGet || cfg.Op == OpMix
	if needKey {
		cr, err := callAs[*payloads.CreateResponsePayload](s, createKeyPayload())
		if err != nil {
			return nil, fmt.Errorf("setup: creating the AES-256 key: %w", err)
		}
		fx.keyID = cr.UniqueIdentifier
		if _, err := callAs[*payloads.ActivateResponsePayload](s, &payloads.ActivateRequestPayload{UniqueIdentifier: fx.keyID}); err != nil {
			return nil, fmt.Errorf("setup: activating key %s: %w", fx.keyID, err)
		}
	}
	if cfg.Op == OpCertify {
		// Certify is for administrators: fail now, with the reason, rather
		// than after a second of refusals.
		if err := s.once(certifyRequest(cfg.Version)); err != nil {
			return nil, fmt.Errorf("setup: a first Certify: %w%s", err, certifyHint(err))
		}
	}
	if cfg.Op.usesPayload() {
		fx.plaintext = make([]byte, cfg.Size)
		rand.Read(fx.plaintext)
	}
	if cfg.Op == OpDecrypt || cfg.Op == OpMix {
		for range cfg.Conns {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			er, err := callAs[*payloads.EncryptResponsePayload](s, &payloads.EncryptRequestPayload{UniqueIdentifier: fx.keyID, CryptographicParameters: gcmParams(fx.tagLength), Data: fx.plaintext})
			if err != nil {
				return nil, fmt.Errorf("setup: encrypting the decrypt inputs: %w", err)
			}
			if len(er.IVCounterNonce) == 0 {
				return nil, fmt.Errorf("setup: encrypting the decrypt inputs: the server returned no IV for a server-generated one")
			}
			fx.sealed = append(fx.sealed, sealedPlaintext{data: er.Data, iv: er.IVCounterNonce, tag: er.AuthenticatedEncryptionTag})
		}
	}
	if cfg.Op == OpLocate || cfg.Op == OpMix {
		run := make([]byte, 6)
		rand.Read(run)
		for i := range locateKeys {
			name := fmt.Sprintf("%s-%s-%d", benchGroup, hex.EncodeToString(run), i)
			cr, err := callAs[*payloads.CreateResponsePayload](s, createKeyPayload(nameAttr(name)))
			if err != nil {
				return nil, fmt.Errorf("setup: creating the named keys Locate finds: %w", err)
			}
			fx.names = append(fx.names, name)
			fx.located = append(fx.located, cr.UniqueIdentifier)
		}
	}
	return fx, nil
}

// hint explains the usual cause of a failure to connect.
func hint(err error) string {
	kind := errorKind(err)
	switch {
	case kind == "network: connection refused":
		return " (is the server running and listening there?)"
	case kind == "tls: server certificate rejected":
		return " (check the CA that verifies the server, and that the server name is in its certificate)"
	case strings.HasPrefix(kind, "tls: remote"):
		return " (the server refused the client certificate: it must chain to one of its tenant CAs, or be registered, and not be revoked)"
	}
	return ""
}

// schedules returns, for each worker, the requests it sends in turn.
func (fx *fixture) schedules(op Op, workers int) [][]*request {
	v := fx.version
	out := make([][]*request, workers)
	var shared map[Op]*request
	one := func(op Op) *request {
		if shared == nil {
			shared = map[Op]*request{}
		}
		if q, ok := shared[op]; ok {
			return q
		}
		var q *request
		switch op {
		case OpEncrypt:
			q = fx.encryptRequest()
		case OpGet:
			q = fx.getRequest()
		case OpCreate:
			q = &request{op: kmip.OperationCreate, raw: encodeRequest(v, createKeyPayload()), check: checkCreated}
		case OpCertify:
			q = certifyRequest(v)
		case OpConnect, OpConnectResume:
			q = &request{op: kmip.OperationQuery, raw: encodeRequest(v, queryPayload())}
		}
		shared[op] = q
		return q
	}
	var locates []*request
	if op == OpLocate || op == OpMix {
		for i := range fx.names {
			locates = append(locates, fx.locateRequest(i))
		}
	}
	for w := range out {
		switch op {
		case OpDecrypt:
			out[w] = []*request{fx.decryptRequest(w)}
		case OpLocate:
			// Every worker cycles through the names, starting apart.
			for i := range locates {
				out[w] = append(out[w], locates[(w+i)%len(locates)])
			}
		case OpMix:
			var s []*request
			for _, o := range []Op{OpEncrypt, OpDecrypt, OpGet, OpLocate} {
				for range mixSchedule[o] {
					switch o {
					case OpDecrypt:
						s = append(s, fx.decryptRequest(w))
					case OpLocate:
						s = append(s, locates[w%len(locates)])
					default:
						s = append(s, one(o))
					}
				}
			}
			rng := mrand.New(mrand.NewPCG(uint64(w), 0x6d696e696b6d73))
			rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
			out[w] = s
		default:
			out[w] = []*request{one(op)}
		}
	}
	return out
}

func (fx *fixture) encryptRequest() *request {
	want := fx.payloadSize
	if fx.version.Minor() < 4 {
		want += gcmTagSize // the tag travels appended to the data
	}
	return &request{
		op:  kmip.OperationEncrypt,
		raw: encodeRequest(fx.version, &payloads.EncryptRequestPayload{UniqueIdentifier: fx.keyID, CryptographicParameters: gcmParams(fx.tagLength), Data: fx.plaintext}),
		check: func(payload []byte) error {
			var data, iv []byte
			err := scanTop(payload, func(it ttlvItem) error {
				switch it.tag {
				case kmip.TagData:
					data = it.val
				case kmip.TagIVCounterNonce:
					iv = it.val
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(data) != want || len(iv) == 0 {
				return protoErr("unexpected payload", "Encrypt answered %d bytes of data and a %d-byte IV; want %d bytes and a server IV", len(data), len(iv), want)
			}
			return nil
		},
	}
}

func (fx *fixture) decryptRequest(worker int) *request {
	s := fx.sealed[worker%len(fx.sealed)]
	plain := fx.plaintext
	return &request{
		op: kmip.OperationDecrypt,
		raw: encodeRequest(fx.version, &payloads.DecryptRequestPayload{UniqueIdentifier: fx.keyID, CryptographicParameters: gcmParams(fx.tagLength),
			Data: s.data, IVCounterNonce: s.iv, AuthenticatedEncryptionTag: s.tag}),
		check: func(payload []byte) error {
			data, err := firstValue(payload, kmip.TagData, typeByteString)
			if err != nil {
				return err
			}
			if !bytes.Equal(data, plain) {
				return protoErr("wrong plaintext", "Decrypt returned %d bytes that differ from the %d bytes encrypted", len(data), len(plain))
			}
			return nil
		},
	}
}

func (fx *fixture) getRequest() *request {
	id := fx.keyID
	return &request{
		op:  kmip.OperationGet,
		raw: encodeRequest(fx.version, &payloads.GetRequestPayload{UniqueIdentifier: id}),
		check: func(payload []byte) error {
			got, err := firstValue(payload, kmip.TagUniqueIdentifier, typeTextString)
			if err != nil {
				return err
			}
			if string(got) != id {
				return protoErr("unexpected payload", "Get answered for object %q, asked %q", got, id)
			}
			return nil
		},
	}
}

func (fx *fixture) locateRequest(i int) *request {
	id := fx.located[i]
	return &request{
		op:  kmip.OperationLocate,
		raw: encodeRequest(fx.version, &payloads.LocateRequestPayload{Attribute: []kmip.Attribute{nameAttr(fx.names[i])}}),
		check: func(payload []byte) error {
			var found int
			var match bool
			err := scanTop(payload, func(it ttlvItem) error {
				if it.tag == kmip.TagUniqueIdentifier {
					found++
					match = string(it.val) == id
				}
				return nil
			})
			if err != nil {
				return err
			}
			if found != 1 || !match {
				return protoErr("unexpected payload", "Locate by a unique name found %d objects, want exactly the named key", found)
			}
			return nil
		},
	}
}

// checkCreated requires the new object's identifier.
func checkCreated(payload []byte) error {
	id, err := firstValue(payload, kmip.TagUniqueIdentifier, typeTextString)
	if err != nil {
		return err
	}
	if len(id) == 0 {
		return protoErr("unexpected payload", "Create answered without a Unique Identifier")
	}
	return nil
}
