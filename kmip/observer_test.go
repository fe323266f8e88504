package kmip_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"

	"github.com/minikms/minikms/kmip"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder is a kmip.Observer keeping what it is told.
type recorder struct {
	mu        sync.Mutex
	items     []string // "Operation Status Reason ran"
	messages  []okmip.ResultReason
	opened    int
	closed    int
	refused   []kmip.RefusalCause
	handshake []error
}

func (r *recorder) BatchItem(op okmip.Operation, st okmip.ResultStatus, reason okmip.ResultReason, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ran := "ran"
	if d < 0 {
		ran = "not-run"
	}
	r.items = append(r.items, strings.Join([]string{ttlv.EnumStr(op), ttlv.EnumStr(st), okmipName(reason), ran}, " "))
}
func (r *recorder) Message(reason okmip.ResultReason, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, reason)
}
func (r *recorder) ConnectionOpened() { r.mu.Lock(); r.opened++; r.mu.Unlock() }
func (r *recorder) ConnectionClosed() { r.mu.Lock(); r.closed++; r.mu.Unlock() }
func (r *recorder) ConnectionRefused(c kmip.RefusalCause) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, c)
}
func (r *recorder) HandshakeFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handshake = append(r.handshake, err)
}

func okmipName[T ~uint32](v T) string {
	if v == 0 {
		return "-"
	}
	return ttlv.EnumStr(v)
}

// TestObserverAndRequestIDs: the observer hears every batch item with its
// final result, messages refused as a whole and connections; every log
// line about a message carries its request id, which its audit records
// carry too; and debug logging of a whole session never shows key
// material, plaintext or ciphertext.
func TestObserverAndRequestIDs(t *testing.T) {
	logs := &syncBuffer{}
	rec := &recorder{}
	env := startKMS(t, func(c *kmip.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Observer = rec
	})
	w := dialAdmin(t, env)
	id := w.activeKey()
	key := ok[*payloads.GetResponsePayload](w, v14, &payloads.GetRequestPayload{UniqueIdentifier: id})
	material, err := key.Object.(*okmip.SymmetricKey).KeyBlock.GetBytes()
	if err != nil || len(material) != 32 {
		t.Fatalf("key material: %v (%d bytes)", err, len(material))
	}
	plain := []byte("observer-test PLAINTEXT that must never be logged")
	gcm := &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM, TagLength: 16}
	enc := ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm, Data: plain})
	ok[*payloads.DecryptResponsePayload](w, v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm,
		Data: enc.Data, IVCounterNonce: enc.IVCounterNonce, AuthenticatedEncryptionTag: enc.AuthenticatedEncryptionTag})
	// A failed decryption (wrong tag) and a failed Get.
	badTag := bytes.Clone(enc.AuthenticatedEncryptionTag)
	badTag[0] ^= 1
	w.fails(v14, &payloads.DecryptRequestPayload{UniqueIdentifier: id, CryptographicParameters: gcm,
		Data: enc.Data, IVCounterNonce: enc.IVCounterNonce, AuthenticatedEncryptionTag: badTag}, okmip.ResultReasonCryptographicFailure)
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: "no-such-object"}, okmip.ResultReasonItemNotFound)
	// A batch stopped by its first item: the second is cancelled.
	w.do(newRequest(v14, &payloads.GetRequestPayload{UniqueIdentifier: "missing"}, &payloads.GetRequestPayload{UniqueIdentifier: id}))
	// A message refused as a whole.
	bad, _ := w.roundTripRaw(rawMessage(rawHeader(hdr(okmip.ProtocolVersion{ProtocolVersionMajor: 9}, 1)),
		rawItem(okmip.OperationQuery, "", rawPayload(&payloads.QueryRequestPayload{}))))
	wantMessageError(t, bad, okmip.ResultReasonInvalidMessage)
	w.conn.Close()
	waitConns(t, env, 0, 5*time.Second)

	rec.mu.Lock()
	items, messages, opened, closed := rec.items, rec.messages, rec.opened, rec.closed
	rec.mu.Unlock()
	want := []string{
		"Create Success - ran", "Activate Success - ran", "Get Success - ran", "Encrypt Success - ran", "Decrypt Success - ran",
		"Decrypt OperationFailed CryptographicFailure ran", "Get OperationFailed ItemNotFound ran",
		"Get OperationFailed ItemNotFound ran", "Get OperationFailed OperationCanceledByRequester not-run",
	}
	if strings.Join(items, "\n") != strings.Join(want, "\n") {
		t.Errorf("observed batch items:\n%s\nwant:\n%s", strings.Join(items, "\n"), strings.Join(want, "\n"))
	}
	if len(messages) != 9 || messages[8] != okmip.ResultReasonInvalidMessage || messages[0] != 0 {
		t.Errorf("observed messages %v: want 9, the last refused as Invalid Message", messages)
	}
	if opened != 1 || closed != 1 {
		t.Errorf("connections opened %d, closed %d; want 1 and 1", opened, closed)
	}

	// Every line about a message carries a request id; the audit records
	// carry the same ids.
	out := logs.String()
	ids := map[string]bool{}
	opLines := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] != "kmip operation" {
			continue
		}
		opLines++
		rid, _ := m[kmip.LogKeyRequestID].(string)
		if len(rid) != 16 {
			t.Errorf("log line without a request id: %s", line)
		}
		ids[rid] = true
	}
	if opLines != 8 || len(ids) != 8 {
		t.Errorf("%d operation log lines with %d request ids, want 8 lines (the cancelled item is not logged) of 8 messages:\n%s", opLines, len(ids), out)
	}
	seen := map[string]bool{}
	for _, r := range auditRecords(t, env) {
		if !strings.HasPrefix(r.Action, "kmip.") {
			continue
		}
		rid := r.Details[kmip.AuditRequestID]
		if rid == "" {
			t.Errorf("audit record %d (%s) has no request id: %v", r.Seq, r.Action, r.Details)
		}
		if r.Action != kmip.ActionMessage && !ids[rid] {
			t.Errorf("audit record %d (%s): request id %q is in no log line", r.Seq, r.Action, rid)
		}
		seen[rid] = true
	}
	if len(seen) != 9 {
		t.Errorf("audit records carry %d request ids, want 9 (one per message)", len(seen))
	}

	// Nothing secret in the debug log.
	for what, secret := range map[string][]byte{"key material": material, "plaintext": plain, "ciphertext": enc.Data} {
		for _, form := range []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
			base64.StdEncoding.EncodeToString(secret), base64.RawStdEncoding.EncodeToString(secret)} {
			if strings.Contains(out, form) {
				t.Errorf("the debug log contains the %s", what)
			}
		}
		if strings.Contains(out, hex.EncodeToString(secret[:8])) {
			t.Errorf("the debug log contains part of the %s", what)
		}
	}
	if !strings.Contains(out, `"level":"DEBUG"`) {
		t.Fatal("no debug lines: the test proves nothing")
	}
}
