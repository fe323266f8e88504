package kmip_test

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/kmip"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// TestMain fails the package when a test leaves goroutines behind once its
// servers are shut down (every testkms server stops in t.Cleanup).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startKMS starts a complete miniKMS; adjust tunes the KMIP configuration.
func startKMS(t testing.TB, adjust func(*kmip.Config)) *testkms.Env {
	t.Helper()
	return testkms.Start(t, testkms.Options{KMIP: adjust})
}

// wireConn is a raw KMIP client on one TLS connection: it writes bytes
// exactly as given and reads framed responses, so malformed input reaches
// the server untouched.
type wireConn struct {
	t    testing.TB
	conn *tls.Conn
}

func dialAs(t testing.TB, env *testkms.Env, tenant, member string, role engine.Role) *wireConn {
	t.Helper()
	return &wireConn{t: t, conn: env.Dial(t, tenant, member, role)}
}

// dialAdmin connects as acme's admin.
func dialAdmin(t testing.TB, env *testkms.Env) *wireConn {
	t.Helper()
	return dialAs(t, env, "acme", "admin", engine.RoleAdmin)
}

func (w *wireConn) write(b []byte) {
	w.t.Helper()
	w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.conn.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// maxTestResponse bounds what the test client accepts from the server.
const maxTestResponse = 16 << 20

// readRaw reads one framed response (header and body).
func (w *wireConn) readRaw(timeout time.Duration) ([]byte, error) {
	w.conn.SetReadDeadline(time.Now().Add(timeout))
	var hdr [8]byte
	if _, err := io.ReadFull(w.conn, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	if n > maxTestResponse {
		return nil, fmt.Errorf("response announces %d bytes", n)
	}
	buf := make([]byte, 8+int(n))
	copy(buf, hdr[:])
	if _, err := io.ReadFull(w.conn, buf[8:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// response reads and decodes one response.
func (w *wireConn) response() (*okmip.ResponseMessage, []byte) {
	w.t.Helper()
	raw, err := w.readRaw(20 * time.Second)
	if err != nil {
		w.t.Fatalf("reading the response: %v", err)
	}
	return decodeResponse(w.t, raw), raw
}

// roundTripRaw writes a request and returns the decoded response and its
// encoding.
func (w *wireConn) roundTripRaw(req []byte) (*okmip.ResponseMessage, []byte) {
	w.t.Helper()
	w.write(req)
	return w.response()
}

// do sends one request message built by the kmip-go codec.
func (w *wireConn) do(msg *okmip.RequestMessage) (*okmip.ResponseMessage, []byte) {
	w.t.Helper()
	return w.roundTripRaw(ttlv.MarshalTTLV(msg))
}

// one sends a single-item request of version v and returns its item.
func (w *wireConn) one(v okmip.ProtocolVersion, pl okmip.OperationPayload) okmip.ResponseBatchItem {
	w.t.Helper()
	resp, _ := w.do(newRequest(v, pl))
	if len(resp.BatchItem) != 1 {
		w.t.Fatalf("%d batch items in the response, want 1", len(resp.BatchItem))
	}
	return resp.BatchItem[0]
}

// ok runs a single operation that must succeed and returns its payload.
func ok[T okmip.OperationPayload](w *wireConn, v okmip.ProtocolVersion, pl okmip.OperationPayload) T {
	w.t.Helper()
	bi := w.one(v, pl)
	if bi.ResultStatus != okmip.ResultStatusSuccess {
		w.t.Fatalf("%s failed: %s: %s", ttlv.EnumStr(pl.Operation()), ttlv.EnumStr(bi.ResultReason), bi.ResultMessage)
	}
	out, good := bi.ResponsePayload.(T)
	if !good {
		w.t.Fatalf("%s: response payload is %T", ttlv.EnumStr(pl.Operation()), bi.ResponsePayload)
	}
	return out
}

// fails runs a single operation that must fail with reason.
func (w *wireConn) fails(v okmip.ProtocolVersion, pl okmip.OperationPayload, reason okmip.ResultReason) okmip.ResponseBatchItem {
	w.t.Helper()
	bi := w.one(v, pl)
	wantFailure(w.t, bi, reason)
	return bi
}

// servesOK proves the server still answers a correct request on this
// connection.
func (w *wireConn) servesOK() {
	w.t.Helper()
	resp := ok[*payloads.DiscoverVersionsResponsePayload](w, okmip.V1_4, &payloads.DiscoverVersionsRequestPayload{})
	if len(resp.ProtocolVersion) != len(kmip.Versions) {
		w.t.Fatalf("DiscoverVersions lists %v", resp.ProtocolVersion)
	}
}

// expectClosed asserts the server closed the connection without sending
// anything more.
func (w *wireConn) expectClosed(within time.Duration) {
	w.t.Helper()
	w.conn.SetReadDeadline(time.Now().Add(within))
	var b [1]byte
	n, err := w.conn.Read(b[:])
	if n > 0 {
		w.t.Fatalf("the server sent data instead of closing the connection")
	}
	if !isClosed(err) {
		w.t.Fatalf("the connection was not closed within %v: %v", within, err)
	}
}

// isClosed reports whether err is how a closed connection reads.
func isClosed(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || strings.Contains(err.Error(), "tls:")
}

// servesNew proves the server serves a new connection.
func servesNew(t testing.TB, env *testkms.Env) {
	t.Helper()
	w := dialAdmin(t, env)
	w.servesOK()
	w.conn.Close()
}

// waitConns waits until the server has n open connections.
func waitConns(t testing.TB, env *testkms.Env, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for env.Server.ActiveConnections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server has %d open connections after %v, want %d", env.Server.ActiveConnections(), within, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decodeResponse(t testing.TB, raw []byte) *okmip.ResponseMessage {
	t.Helper()
	var resp okmip.ResponseMessage
	if err := ttlv.UnmarshalTTLV(raw, &resp); err != nil {
		t.Fatalf("undecodable response: %v\n%x", err, raw)
	}
	if int(resp.Header.BatchCount) != len(resp.BatchItem) {
		t.Fatalf("response Batch Count %d, %d batch items", resp.Header.BatchCount, len(resp.BatchItem))
	}
	return &resp
}

// newRequest builds a request whose items carry batch ids "1", "2", ...
func newRequest(v okmip.ProtocolVersion, pls ...okmip.OperationPayload) *okmip.RequestMessage {
	m := okmip.NewRequestMessage(v, pls...)
	for i := range m.BatchItem {
		m.BatchItem[i].UniqueBatchItemID = []byte(fmt.Sprint(i + 1))
	}
	return &m
}

func wantFailure(t testing.TB, bi okmip.ResponseBatchItem, reason okmip.ResultReason) {
	t.Helper()
	if bi.ResultStatus != okmip.ResultStatusOperationFailed || bi.ResultReason != reason {
		t.Fatalf("result %s/%s (%q), want Operation Failed/%s", ttlv.EnumStr(bi.ResultStatus), ttlv.EnumStr(bi.ResultReason), bi.ResultMessage, ttlv.EnumStr(reason))
	}
	if bi.ResponsePayload != nil {
		t.Fatalf("a failed item carries a payload: %#v", bi.ResponsePayload)
	}
}

func wantSuccess(t testing.TB, bi okmip.ResponseBatchItem) {
	t.Helper()
	if bi.ResultStatus != okmip.ResultStatusSuccess || bi.ResultReason != 0 {
		t.Fatalf("result %s/%s (%q), want Success", ttlv.EnumStr(bi.ResultStatus), ttlv.EnumStr(bi.ResultReason), bi.ResultMessage)
	}
}

// wantMessageError asserts a whole-message failure: one item, no
// operation, the reason, answered in a version the server supports.
func wantMessageError(t testing.TB, resp *okmip.ResponseMessage, reason okmip.ResultReason) {
	t.Helper()
	if !slices.Contains(kmip.Versions, resp.Header.ProtocolVersion) {
		t.Fatalf("answered in version %s, which the server does not support", resp.Header.ProtocolVersion)
	}
	if len(resp.BatchItem) != 1 {
		t.Fatalf("%d batch items in a whole-message failure, want 1", len(resp.BatchItem))
	}
	if resp.BatchItem[0].Operation != 0 {
		t.Fatalf("whole-message failure names operation %s", ttlv.EnumStr(resp.BatchItem[0].Operation))
	}
	wantFailure(t, resp.BatchItem[0], reason)
}

// ---- hand-built TTLV ----

// tItem encodes one TTLV item with its value padded to 8 bytes; length is
// the length field as written.
func tItemLen(tag int, typ byte, length uint32, val []byte) []byte {
	b := []byte{byte(tag >> 16), byte(tag >> 8), byte(tag), typ}
	b = binary.BigEndian.AppendUint32(b, length)
	b = append(b, val...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

func tItem(tag int, typ byte, val []byte) []byte { return tItemLen(tag, typ, uint32(len(val)), val) }

func tStruct(tag int, kids ...[]byte) []byte { return tItem(tag, 0x01, bytes.Join(kids, nil)) }

func tInt(tag int, v int32) []byte {
	return tItem(tag, 0x02, binary.BigEndian.AppendUint32(nil, uint32(v)))
}

func tEnum(tag int, v uint32) []byte { return tItem(tag, 0x05, binary.BigEndian.AppendUint32(nil, v)) }

func tBool(tag int, v bool) []byte {
	b := make([]byte, 8)
	if v {
		b[7] = 1
	}
	return tItem(tag, 0x06, b)
}

func tText(tag int, s string) []byte { return tItem(tag, 0x07, []byte(s)) }

func tBytes(tag int, b []byte) []byte { return tItem(tag, 0x08, b) }

// rawHeader encodes a Request Header with the codec.
func rawHeader(h okmip.RequestHeader) []byte { return ttlv.MarshalTTLV(&h) }

func hdr(v okmip.ProtocolVersion, count int32) okmip.RequestHeader {
	return okmip.RequestHeader{ProtocolVersion: v, BatchCount: count}
}

// rawPayload encodes a request payload.
func rawPayload(pl okmip.OperationPayload) []byte {
	enc := ttlv.NewTTLVEncoder()
	enc.TagAny(okmip.TagRequestPayload, pl)
	return enc.Bytes()
}

// rawItem is a batch item: operation, optional batch id, then the given
// raw fields (payload, extension, ...).
func rawItem(op okmip.Operation, id string, fields ...[]byte) []byte {
	kids := [][]byte{tEnum(okmip.TagOperation, uint32(op))}
	if id != "" {
		kids = append(kids, tBytes(okmip.TagUniqueBatchItemID, []byte(id)))
	}
	return tStruct(okmip.TagBatchItem, append(kids, fields...)...)
}

func rawMessage(parts ...[]byte) []byte { return tStruct(okmip.TagRequestMessage, parts...) }

// ---- reading raw responses ----

type rawTTLV struct {
	tag int
	typ byte
	val []byte
}

// walk lists every item of a TTLV encoding, depth first.
func walk(t testing.TB, b []byte) []rawTTLV {
	t.Helper()
	var out []rawTTLV
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("truncated TTLV in the response")
		}
		n := int(binary.BigEndian.Uint32(b[4:8]))
		padded := (n + 7) &^ 7
		if padded > len(b)-8 {
			t.Fatalf("TTLV item longer than the response")
		}
		it := rawTTLV{tag: int(b[0])<<16 | int(b[1])<<8 | int(b[2]), typ: b[3], val: b[8 : 8+n]}
		out = append(out, it)
		if it.typ == 0x01 {
			out = append(out, walk(t, it.val)...)
		}
		b = b[8+padded:]
	}
	return out
}

// tagValues returns the values of every item with tag.
func tagValues(t testing.TB, raw []byte, tag int) [][]byte {
	t.Helper()
	var out [][]byte
	for _, it := range walk(t, raw) {
		if it.tag == tag {
			out = append(out, it.val)
		}
	}
	return out
}

// ---- objects ----

func aesTemplate(extra ...okmip.Attribute) okmip.TemplateAttribute {
	return okmip.TemplateAttribute{Attribute: append([]okmip.Attribute{
		{AttributeName: okmip.AttributeNameCryptographicAlgorithm, AttributeValue: okmip.CryptographicAlgorithmAES},
		{AttributeName: okmip.AttributeNameCryptographicLength, AttributeValue: int32(256)},
		{AttributeName: okmip.AttributeNameCryptographicUsageMask, AttributeValue: okmip.CryptographicUsageEncrypt | okmip.CryptographicUsageDecrypt},
	}, extra...)}
}

func nameAttr(name string) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameName, AttributeValue: okmip.Name{NameValue: name, NameType: okmip.NameTypeUninterpretedTextString}}
}

func groupAttr(group string) okmip.Attribute {
	return okmip.Attribute{AttributeName: okmip.AttributeNameObjectGroup, AttributeValue: group}
}

func createAES(extra ...okmip.Attribute) *payloads.CreateRequestPayload {
	return &payloads.CreateRequestPayload{ObjectType: okmip.ObjectTypeSymmetricKey, TemplateAttribute: aesTemplate(extra...)}
}

// createKey creates an AES-256 key and returns its id.
func (w *wireConn) createKey(extra ...okmip.Attribute) string {
	w.t.Helper()
	return ok[*payloads.CreateResponsePayload](w, okmip.V1_4, createAES(extra...)).UniqueIdentifier
}

// activeKey creates and activates an AES-256 key.
func (w *wireConn) activeKey(extra ...okmip.Attribute) string {
	w.t.Helper()
	id := w.createKey(extra...)
	ok[*payloads.ActivateResponsePayload](w, okmip.V1_4, &payloads.ActivateRequestPayload{UniqueIdentifier: id})
	return id
}

// locate returns the ids matching attrs.
func (w *wireConn) locate(attrs ...okmip.Attribute) []string {
	w.t.Helper()
	return ok[*payloads.LocateResponsePayload](w, okmip.V1_4, &payloads.LocateRequestPayload{Attribute: attrs}).UniqueIdentifier
}

// uniqueName returns a name no other test uses.
func uniqueName(t testing.TB) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

var (
	v10 = okmip.V1_0
	v11 = okmip.V1_1
	v12 = okmip.V1_2
	v13 = okmip.V1_3
	v14 = okmip.V1_4
)

func registerOpaque(data []byte, extra ...okmip.Attribute) *payloads.RegisterRequestPayload {
	return &payloads.RegisterRequestPayload{
		ObjectType:        okmip.ObjectTypeOpaqueObject,
		TemplateAttribute: okmip.TemplateAttribute{Attribute: extra},
		Object:            &okmip.OpaqueObject{OpaqueDataType: okmip.OpaqueDataType(0x80000001), OpaqueDataValue: data},
	}
}
