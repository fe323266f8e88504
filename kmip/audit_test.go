package kmip_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/kmip"
	"github.com/minikms/minikms/store/sqlite"
	okmip "github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/payloads"
)

// auditRecords returns every record of env's chain, after checking it
// verifies.
func auditRecords(t *testing.T, env *testkms.Env) []engine.AuditRecord {
	t.Helper()
	rep, err := audit.Verify(context.Background(), env.Store, audit.VerifyOptions{})
	if err != nil || rep.Problem != nil {
		t.Fatalf("chain does not verify: %v %v", err, rep.Problem)
	}
	recs, err := env.Store.AuditRecords(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestAuditRecordsOperations(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	id := w.activeKey()
	plain := []byte("audit-test plaintext 0123456789")
	enc := ok[*payloads.EncryptResponsePayload](w, v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id,
		CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM, TagLength: 16}, Data: plain})
	w.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: "no-such-object"}, okmip.ResultReasonItemNotFound)
	// A batch: Locate, then a failing item that stops the batch, then one
	// canceled.
	resp, _ := w.do(newRequest(v14,
		&payloads.LocateRequestPayload{},
		&payloads.ActivateRequestPayload{UniqueIdentifier: id},
		&payloads.GetRequestPayload{UniqueIdentifier: id}))
	if len(resp.BatchItem) != 3 {
		t.Fatalf("batch of 3 answered with %d items", len(resp.BatchItem))
	}
	// A message refused as a whole.
	bad, _ := w.roundTripRaw(rawMessage(rawHeader(hdr(okmip.ProtocolVersion{ProtocolVersionMajor: 9}, 1)),
		rawItem(okmip.OperationQuery, "", rawPayload(&payloads.QueryRequestPayload{}))))
	wantMessageError(t, bad, okmip.ResultReasonInvalidMessage)
	// An operation code KMIP does not define.
	resp, _ = w.roundTripRaw(rawMessage(rawHeader(hdr(v14, 1)), rawItem(okmip.Operation(0xFFFF), "a", tStruct(okmip.TagRequestPayload))))
	wantFailure(t, resp.BatchItem[0], okmip.ResultReasonOperationNotSupported)
	// Another tenant's view.
	g := dialAs(t, env, "globex", "app", engine.RoleApp)
	g.fails(v14, &payloads.GetRequestPayload{UniqueIdentifier: id}, okmip.ResultReasonItemNotFound)

	recs := auditRecords(t, env)
	type want struct{ tenant, member, action, object, status, reason string }
	var got []want
	for _, r := range recs {
		got = append(got, want{r.Tenant, r.Member, r.Action, r.Object, r.Status, r.Reason})
	}
	expect := []want{
		{"acme", "admin", "kmip.Create", id, "success", ""},
		{"acme", "admin", "kmip.Activate", id, "success", ""},
		{"acme", "admin", "kmip.Encrypt", id, "success", ""},
		{"acme", "admin", "kmip.Get", "no-such-object", "failure", "ItemNotFound"},
		{"acme", "admin", "kmip.Locate", id, "success", ""},    // the one match,
		{"acme", "admin", "kmip.Activate", id, "failure", "*"}, // already active: any reason
		{"acme", "admin", "kmip.Get", "", "failure", "OperationCanceledByRequester"},
		{"acme", "admin", "kmip.message", "", "failure", "InvalidMessage"},
		{"acme", "admin", "kmip.0x0000FFFF", "", "failure", "OperationNotSupported"},
		{"globex", "app", "kmip.Get", id, "failure", "ItemNotFound"},
	}
	if len(got) != len(expect) {
		t.Fatalf("records:\n%v\nwant:\n%v", got, expect)
	}
	for i := range expect {
		e, g := expect[i], got[i]
		if e.reason == "*" {
			if g.status != "failure" || g.reason == "" || g.action != e.action || g.object != e.object {
				t.Errorf("record %d = %+v, want a failed %s", i+1, g, e.action)
			}
			continue
		}
		if g != e {
			t.Errorf("record %d = %+v, want %+v", i+1, g, e)
		}
	}
	// Who: certificate hash, role and address of the client.
	cert := env.ClientCertificate(t, "acme", "admin", engine.RoleAdmin)
	sum := sha256.Sum256(cert.Certificate[0])
	local := w.conn.LocalAddr().String()
	for _, r := range recs[:9] {
		if r.CertHash != hex.EncodeToString(sum[:]) || r.Role != "admin" || r.Remote != local {
			t.Errorf("record %d: actor %s/%s from %s, want the client's certificate hash, role admin, %s", r.Seq, r.CertHash, r.Role, r.Remote, local)
		}
	}
	if recs[4].Details["matches"] == "" {
		t.Errorf("Locate record without its match count: %v", recs[4].Details)
	}
	// Never any secret: neither plaintext, nor ciphertext, nor key.
	for _, r := range recs {
		b, _ := audit.MarshalLine(&r)
		for _, secret := range [][]byte{plain, enc.Data, []byte(hex.EncodeToString(enc.Data))} {
			if bytes.Contains(b, secret) {
				t.Fatalf("record %d holds secret data: %s", r.Seq, b)
			}
		}
	}
}

// faultyStore fails audit appends on demand.
type faultyStore struct {
	engine.AuditStore
	fail    atomic.Bool
	appends atomic.Int64
}

func (f *faultyStore) AppendAudit(ctx context.Context, build func(engine.AuditHead) ([]engine.AuditRecord, error)) error {
	f.appends.Add(1)
	if f.fail.Load() {
		return errors.New("injected fault: disk I/O error")
	}
	return f.AuditStore.AppendAudit(ctx, build)
}

func TestAuditFailureFailsOperations(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	faulty := &faultyStore{AuditStore: st}
	log := audit.NewLog(faulty, "test")
	env := testkms.Start(t, testkms.Options{NoAudit: true, KMIP: func(c *kmip.Config) { c.Audit = log }})
	w := dialAdmin(t, env)
	id := w.activeKey()
	plain := []byte("must not come back")

	faulty.fail.Store(true)
	resp, raw := w.do(newRequest(v14, &payloads.EncryptRequestPayload{UniqueIdentifier: id,
		CryptographicParameters: &okmip.CryptographicParameters{BlockCipherMode: okmip.BlockCipherModeGCM, TagLength: 16}, Data: plain}))
	wantMessageError(t, resp, okmip.ResultReasonGeneralFailure)
	if bytes.Contains(raw, plain) {
		t.Fatal("the response carries data despite the failure")
	}
	if !strings.Contains(resp.BatchItem[0].ResultMessage, "audit") {
		t.Errorf("the failure does not name the audit log: %q", resp.BatchItem[0].ResultMessage)
	}
	if log.Healthy() == nil {
		t.Fatal("the log reports healthy after a failed append")
	}
	// While the log fails nothing runs: this Destroy must not happen.
	before := faulty.appends.Load()
	resp, _ = w.do(newRequest(v14, &payloads.RevokeRequestPayload{UniqueIdentifier: id,
		RevocationReason: okmip.RevocationReason{RevocationReasonCode: okmip.RevocationReasonCodeCessationOfOperation}}))
	wantMessageError(t, resp, okmip.ResultReasonGeneralFailure)
	if faulty.appends.Load() != before {
		t.Error("a request was executed (and its record attempted) while the audit log was failing")
	}
	faulty.fail.Store(false)
	if err := log.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := ok[*payloads.GetAttributesResponsePayload](w, v14, &payloads.GetAttributesRequestPayload{UniqueIdentifier: id, AttributeName: []okmip.AttributeName{okmip.AttributeNameState}})
	if len(got.Attribute) != 1 || got.Attribute[0].AttributeValue != okmip.StateActive {
		t.Fatalf("the Revoke refused during the outage took effect: %+v", got.Attribute)
	}
	recs, err := st.AuditRecords(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var withheld, recovered bool
	for _, r := range recs {
		if r.Action == "kmip.Encrypt" && strings.Contains(r.Details["response"], "withheld") {
			withheld = true
		}
		recovered = recovered || r.Action == "audit.recovered"
		if r.Action == "kmip.Revoke" {
			t.Error("the refused Revoke was recorded as performed")
		}
	}
	if !withheld || !recovered {
		t.Errorf("after recovery: withheld Encrypt recorded %v, recovery recorded %v", withheld, recovered)
	}
}

func TestAuditRecordsRefusedClients(t *testing.T) {
	env := startKMS(t, nil)
	bad := selfSignedClient(t)
	conn, err := tls.Dial("tcp", env.Addr, &tls.Config{RootCAs: env.Roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{bad}})
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 1))
		conn.Close()
	}
	// A port probe (no ClientHello) is not an authentication attempt.
	if c, err := net.Dial("tcp", env.Addr); err == nil {
		c.Close()
	}
	sum := sha256.Sum256(bad.Certificate[0])
	deadline := time.Now().Add(5 * time.Second)
	for {
		var refused []engine.AuditRecord
		for _, r := range auditRecords(t, env) {
			if r.Action == kmip.ActionTLSRefused {
				refused = append(refused, r)
			}
		}
		if len(refused) == 1 {
			r := refused[0]
			if r.Status != "failure" || r.Tenant != "" || r.Remote == "" || r.Reason == "" || r.CertHash != hex.EncodeToString(sum[:]) {
				t.Fatalf("refusal record %+v", r)
			}
			break
		}
		if len(refused) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d refusal records, want 1 (the probe is not one)", len(refused))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
