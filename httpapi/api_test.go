package httpapi_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/httpapi"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/minikms/minikms/pki"
)

var endpoints = []string{"/v1/audit/records", "/v1/audit/chain", "/v1/audit/checkpoints"}

func TestAPIRequiresMutualTLS(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, nil)
	plain, anon := s.plain(t), s.anonymous(t)
	for _, p := range endpoints {
		if msg := wantError(t, plain.get(p), http.StatusForbidden, httpapi.CodeMTLSRequired); !contains(msg, "HTTPS", "certificate") {
			t.Errorf("%s over HTTP: message %q", p, msg)
		}
		if msg := wantError(t, anon.get(p), http.StatusUnauthorized, httpapi.CodeUnauthorized); !contains(msg, "certificate") {
			t.Errorf("%s without a certificate: message %q", p, msg)
		}
	}
	noSuccessSince(t, env, 6)

	// A member certificate of another miniKMS (same tenant and member
	// names, another root): the handshake fails, no handler runs.
	other := testkms.Start(t, testkms.Options{})
	foreign := s.withCert(t, other.ClientCertificate(t, "acme", "aud1", engine.RoleAuditor))
	for _, p := range append([]string{"/healthz"}, endpoints...) {
		r, err := foreign.try(p)
		if err == nil {
			t.Fatalf("%s with a foreign certificate: %d %q, want a failed handshake", p, r.status, r.body)
		}
		// The server's alert (tls: bad certificate), or the connection
		// it closed if the alert was lost.
		if e := err.Error(); !strings.Contains(e, "tls: bad certificate") && !strings.Contains(e, "reset by peer") && !strings.Contains(e, "EOF") {
			t.Errorf("%s with a foreign certificate: %v, want a bad certificate alert", p, err)
		}
	}
	noSuccessSince(t, env, 6)

	// Unknown API paths answer not_found, with or without a certificate.
	aud := s.member(t, "acme", "aud1", engine.RoleAuditor)
	for _, c := range []*client{aud, anon, plain} {
		for _, p := range []string{"/v1/x", "/v1/", "/v1/audit", "/v1/audit/records/1", "/v1/audit/keys"} {
			if msg := wantError(t, c.get(p), http.StatusNotFound, httpapi.CodeNotFound); msg != "no such API endpoint" {
				t.Errorf("%s%s: message %q", c.base, p, msg)
			}
		}
	}
	// The API only reads: other methods get an error (today 404
	// not_found; 405 would do as well), never records.
	for _, p := range endpoints {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			r, err := aud.do(m, p)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d %q", m, p, r.status, r.body)
			}
			if strings.Contains(string(r.body), "entry_hash") || strings.Contains(string(r.body), "checkpoints") {
				t.Errorf("%s %s served %q", m, p, r.body)
			}
		}
	}
	// The public handler keeps everything outside /v1/.
	for _, p := range []string{"/", "/v2/audit/records", "/healthz", "/v1audit"} {
		if r := aud.get(p); r.status != http.StatusOK || string(r.body) != "public "+p+" tls=true" {
			t.Errorf("%s: %d %q", p, r.status, r.body)
		}
	}
	noSuccessSince(t, env, 6)
}

func TestAPIRolesAndRefusalsAreAudited(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, nil)
	app := s.member(t, "acme", "app1", engine.RoleApp)
	for i, p := range endpoints {
		r := app.get(p)
		msg := wantError(t, r, http.StatusForbidden, httpapi.CodeForbidden)
		if msg != "role app may not read the audit log (auditor and admin may)" {
			t.Errorf("%s: message %q", p, msg)
		}
		rec := lastRecord(t, env)
		if rec.Seq != int64(7+i) {
			t.Fatalf("refusal %d recorded at %d, want %d", i, rec.Seq, 7+i)
		}
		wantCallRecord(t, rec, app, r, "acme", "app1", engine.RoleApp, "http.audit."+p[strings.LastIndex(p, "/")+1:],
			audit.StatusFailure, "Permission Denied", nil)
	}

	// Auditors and admins read.
	for _, role := range []engine.Role{engine.RoleAuditor, engine.RoleAdmin} {
		c := s.member(t, "globex", "m-"+string(role), role)
		for _, p := range endpoints {
			if r := c.get(p); r.status != http.StatusOK {
				t.Errorf("%s reading %s: %d %q", role, p, r.status, r.body)
			}
		}
	}
}

func TestAPIRecordsTenantView(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, nil)
	stored := allRecords(t, env)
	wantView := func(r *response, want ...int64) {
		t.Helper()
		got := lines(t, r)
		if !slices.Equal(seqs(got), want) {
			t.Fatalf("records %v, want %v", seqs(got), want)
		}
		all := allRecords(t, env)
		for _, j := range got {
			if w := audit.ToJSON(&all[j.Seq-1]); !reflect.DeepEqual(j, w) {
				t.Errorf("record %d:\n got %+v\nwant %+v", j.Seq, j, w)
			}
		}
		if h := r.header.Get("X-Minikms-Last-Seq"); h != strconv.FormatInt(want[len(want)-1], 10) {
			t.Errorf("X-Minikms-Last-Seq %q, want %d", h, want[len(want)-1])
		}
	}

	acme := s.member(t, "acme", "aud1", engine.RoleAuditor)
	r := acme.get("/v1/audit/records")
	wantView(r, 1, 3, 5)
	if got := lines(t, r); got[2].Status != "failure" || got[2].Reason != "Permission Denied" || got[2].Details["message"] != "no" || !got[0].Time.Equal(stored[0].Time) {
		t.Errorf("record content lost: %+v", got)
	}
	rec := lastRecord(t, env)
	if rec.Seq != 7 {
		t.Fatalf("the read was recorded at %d, want 7", rec.Seq)
	}
	wantCallRecord(t, rec, acme, r, "acme", "aud1", engine.RoleAuditor, "http.audit.records", audit.StatusSuccess, "",
		map[string]string{"records": "3", "query": ""})

	globex := s.member(t, "globex", "aud1", engine.RoleAuditor)
	r = globex.get("/v1/audit/records")
	wantView(r, 2, 6)
	wantCallRecord(t, lastRecord(t, env), globex, r, "globex", "aud1", engine.RoleAuditor, "http.audit.records", audit.StatusSuccess, "",
		map[string]string{"records": "2", "query": ""})

	// acme's admin sees acme's records, its auditor's read (7) among them,
	// and nothing of globex (2, 6, 8) or of no tenant (4).
	admin := s.member(t, "acme", "root", engine.RoleAdmin)
	r = admin.get("/v1/audit/records")
	wantView(r, 1, 3, 5, 7)
	wantCallRecord(t, lastRecord(t, env), admin, r, "acme", "root", engine.RoleAdmin, "http.audit.records", audit.StatusSuccess, "",
		map[string]string{"records": "4", "query": ""})

	// A tenant with no record gets an empty body and no last sequence.
	initech := s.member(t, "initech", "aud1", engine.RoleAuditor)
	r = initech.get("/v1/audit/records")
	if got := lines(t, r); len(got) != 0 || len(r.body) != 0 {
		t.Errorf("initech sees %q", r.body)
	}
	if _, ok := r.header["X-Minikms-Last-Seq"]; ok {
		t.Errorf("an empty page has X-Minikms-Last-Seq %q", r.header.Get("X-Minikms-Last-Seq"))
	}
	if n := headSeq(t, env); n != 10 {
		t.Errorf("head %d after 4 reads, want 10", n)
	}
}

func TestAPIRecordsFilters(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, nil)
	acme := s.member(t, "acme", "aud1", engine.RoleAuditor)
	lines(t, acme.get("/v1/audit/records")) // record 7: acme's first read

	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	for _, tc := range []struct {
		query url.Values
		want  []int64
	}{
		{url.Values{"action": {"kmip.Create"}}, []int64{1}},
		{url.Values{"action": {"kmip.Encrypt"}}, []int64{3}},
		{url.Values{"action": {"server.start"}}, nil}, // tenant ""
		{url.Values{"action": {"kmip.create"}}, nil},  // exact match
		{url.Values{"object": {"k1"}}, []int64{1, 3}},
		{url.Values{"object": {"g1"}}, nil},           // globex's object
		{url.Values{"member": {"admin"}}, []int64{5}}, // not globex's admin (6)
		{url.Values{"member": {"app1"}, "action": {"kmip.Encrypt"}}, []int64{3}},
		{url.Values{"member": {"app1"}, "object": {"k2"}}, nil},
		{url.Values{"from": {ts(time.Hour)}, "to": {ts(2 * time.Hour)}}, []int64{3}}, // from inclusive, to exclusive
		{url.Values{"from": {ts(time.Hour + time.Microsecond)}, "to": {ts(3 * time.Hour)}}, []int64{5}},
		{url.Values{"from": {"2020-01-01T04:00:00+02:00"}, "to": {"2020-01-01T04:00:00+01:00"}}, []int64{5}},
		{url.Values{"to": {ts(time.Hour)}}, []int64{1}},
		{url.Values{"to": {ts(0)}}, nil},
		{url.Values{"from": {ts(3 * time.Hour)}, "to": {ts(time.Hour)}}, nil},
		{url.Values{"after": {"1"}, "limit": {"1"}}, []int64{3}},
		{url.Values{"after": {"3"}, "to": {ts(3 * time.Hour)}}, []int64{5}},
		{url.Values{"after": {"0"}, "limit": {"2"}}, []int64{1, 3}},
		{url.Values{"limit": {"10000"}, "to": {ts(3 * time.Hour)}}, []int64{1, 3, 5}},
		{url.Values{"after": {"5"}, "limit": {"1"}}, []int64{7}},
		{url.Values{"after": {"1000"}}, nil},
		{url.Values{"action": {"http.audit.records"}, "member": {"aud1"}, "limit": {"1"}}, []int64{7}},
		{url.Values{"action": {"kmip.Destroy"}, "object": {"k2"}, "member": {"admin"}, "from": {ts(0)}, "to": {ts(3 * time.Hour)}, "after": {"4"}, "limit": {"5"}}, []int64{5}},
	} {
		q := tc.query.Encode()
		r := acme.get("/v1/audit/records?" + q)
		got := lines(t, r)
		if !slices.Equal(seqs(got), tc.want) {
			t.Errorf("?%s: records %v, want %v", q, seqs(got), tc.want)
		}
		for _, j := range got {
			if j.Tenant != "acme" {
				t.Errorf("?%s: record %d of tenant %q", q, j.Seq, j.Tenant)
			}
		}
		wantLast := ""
		if len(tc.want) > 0 {
			wantLast = strconv.FormatInt(tc.want[len(tc.want)-1], 10)
		}
		if h := r.header.Get("X-Minikms-Last-Seq"); h != wantLast {
			t.Errorf("?%s: X-Minikms-Last-Seq %q, want %q", q, h, wantLast)
		}
		wantCallRecord(t, lastRecord(t, env), acme, r, "acme", "aud1", engine.RoleAuditor, "http.audit.records", audit.StatusSuccess, "",
			map[string]string{"records": strconv.Itoa(len(tc.want)), "query": q})
	}
}

func TestAPIBadParameters(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, nil)
	acme := s.member(t, "acme", "aud1", engine.RoleAuditor)
	page := []struct{ query, param string }{
		{"limit=0", "limit"},
		{"limit=10001", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
		{"limit=", ""}, // empty: the default
		{"after=-1", "after"},
		{"after=1.5", "after"},
		{"after=x&limit=5", "after"},
		{"after=99999999999999999999", "after"},
	}
	times := []struct{ query, param string }{
		{"from=garbage", "from"},
		{"to=garbage", "to"},
		{"from=2020-01-01", "from"},
		{"to=2020-01-01T00:00:00", "to"}, // no zone
		{"from=1577836800", "from"},      // not RFC 3339
		{"action=x&to=2020-13-01T00:00:00Z", "to"},
	}
	check := func(path, query, param string) {
		t.Helper()
		before := headSeq(t, env)
		r := acme.get(path + "?" + query)
		if param == "" {
			if r.status != http.StatusOK {
				t.Errorf("%s?%s: %d %q", path, query, r.status, r.body)
			}
			return
		}
		msg := wantError(t, r, http.StatusBadRequest, httpapi.CodeBadRequest)
		if !strings.HasPrefix(msg, param+": ") {
			t.Errorf("%s?%s: message %q does not name %s", path, query, msg, param)
		}
		rec := lastRecord(t, env)
		if rec.Seq != before+1 {
			t.Fatalf("%s?%s: %d records appended, want 1", path, query, rec.Seq-before)
		}
		wantCallRecord(t, rec, acme, r, "acme", "aud1", engine.RoleAuditor, "http.audit."+path[strings.LastIndex(path, "/")+1:],
			audit.StatusFailure, "Invalid Field", map[string]string{"message": msg})
	}
	for _, p := range page {
		check("/v1/audit/records", p.query, p.param)
		check("/v1/audit/chain", p.query, p.param)
	}
	for _, p := range times {
		check("/v1/audit/records", p.query, p.param)
	}
	// Valid boundaries.
	for _, q := range []string{"limit=1", "limit=10000", "after=0", "from=2020-01-01T00:00:00Z&to=2020-01-01T00:00:00.5Z"} {
		check("/v1/audit/records", q, "")
	}
}

// fetchChain reads the chain (all of it, or a page) as c sees it.
func fetchChain(t testing.TB, c *client, query string) ([]audit.JSONRecord, *response) {
	t.Helper()
	r := c.get("/v1/audit/chain" + query)
	return lines(t, r), r
}

// fetchCheckpoints reads /v1/audit/checkpoints strictly.
func fetchCheckpoints(t testing.TB, c *client) (audit.Checkpoints, *response) {
	t.Helper()
	r := c.get("/v1/audit/checkpoints")
	if r.status != http.StatusOK {
		t.Fatalf("checkpoints: %d %q", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("checkpoints Content-Type %q", ct)
	}
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	var out audit.Checkpoints
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("checkpoints %q: %v", r.body, err)
	}
	return out, r
}

// source converts what the API served into an audit.Source.
func source(t testing.TB, chain []audit.JSONRecord, cps audit.Checkpoints) *memSource {
	t.Helper()
	m := &memSource{}
	for _, j := range chain {
		r, err := audit.FromJSON(j)
		if err != nil {
			t.Fatal(err)
		}
		m.recs = append(m.recs, r)
	}
	for _, j := range cps.Checkpoints {
		c, err := audit.CheckpointFromJSON(j)
		if err != nil {
			t.Fatal(err)
		}
		m.cps = append(m.cps, c)
	}
	return m
}

func verify(t testing.TB, src audit.Source, key crypto.PublicKey) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), src, audit.VerifyOptions{CheckpointKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestAPIChainRedactsAndVerifies(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	cp, key, keyFunc := checkpointKey(t, env)
	s := startHTTP(t, env, func(c *httpapi.Config) { c.CheckpointKey = keyFunc })
	if err := cp.Checkpoint(t.Context()); err != nil { // signs 6
		t.Fatal(err)
	}
	acme := s.member(t, "acme", "aud1", engine.RoleAuditor)
	globex := s.member(t, "globex", "aud1", engine.RoleAuditor)
	lines(t, globex.get("/v1/audit/records"))          // 7 globex
	lines(t, acme.get("/v1/audit/records"))            // 8 acme
	if err := cp.Checkpoint(t.Context()); err != nil { // signs 8
		t.Fatal(err)
	}

	chain, r := fetchChain(t, acme, "")
	if !slices.Equal(seqs(chain), []int64{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("chain %v, want 1 to 8", seqs(chain))
	}
	if h := r.header.Get("X-Minikms-Last-Seq"); h != "8" {
		t.Errorf("X-Minikms-Last-Seq %q, want 8", h)
	}
	wantCallRecord(t, lastRecord(t, env), acme, r, "acme", "aud1", engine.RoleAuditor, "http.audit.chain", audit.StatusSuccess, "",
		map[string]string{"records": "8", "query": ""})
	stored := allRecords(t, env)
	raw := strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n")
	for i, j := range chain {
		st := &stored[i]
		if st.Tenant == "acme" {
			if w := audit.ToJSON(st); !reflect.DeepEqual(j, w) {
				t.Errorf("own record %d:\n got %+v\nwant %+v", j.Seq, j, w)
			}
			continue
		}
		// Another tenant's (or no tenant's) record: hashes only.
		var fields map[string]any
		if err := json.Unmarshal([]byte(raw[i]), &fields); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(maps.Keys(fields))
		if !slices.Equal(keys, []string{"content_hash", "entry_hash", "prev_hash", "redacted", "seq"}) {
			t.Errorf("redacted record %d has fields %v: %s", j.Seq, keys, raw[i])
		}
		want := audit.JSONRecord{Seq: st.Seq, Redacted: true, PrevHash: hex.EncodeToString(st.PrevHash),
			ContentHash: hex.EncodeToString(audit.ContentHash(st)), EntryHash: hex.EncodeToString(st.Hash)}
		if !reflect.DeepEqual(j, want) {
			t.Errorf("redacted record %d:\n got %+v\nwant %+v", j.Seq, j, want)
		}
		for _, secret := range []string{st.Tenant, st.Action, st.Member, st.Object, st.Remote} {
			if secret != "" && strings.Contains(raw[i], secret) {
				t.Errorf("redacted record %d leaks %q: %s", j.Seq, secret, raw[i])
			}
		}
	}

	cps, r := fetchCheckpoints(t, acme)
	wantCallRecord(t, lastRecord(t, env), acme, r, "acme", "aud1", engine.RoleAuditor, "http.audit.checkpoints", audit.StatusSuccess, "",
		map[string]string{"checkpoints": "2"})
	if cps.KeyID != cp.KeyID() {
		t.Errorf("key_id %q, want %q", cps.KeyID, cp.KeyID())
	}
	pub, err := audit.ParsePublicKeyPEM(cps.PublicKey)
	if err != nil {
		t.Fatalf("public_key %q: %v", cps.PublicKey, err)
	}
	if !key.PublicKey.Equal(pub) {
		t.Error("public_key is not the checkpoint key")
	}
	stCps, err := env.Store.AuditCheckpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(cps.Checkpoints) != 2 || len(stCps) != 2 {
		t.Fatalf("%d checkpoints served, %d stored, want 2", len(cps.Checkpoints), len(stCps))
	}
	for i, c := range cps.Checkpoints {
		if w := audit.CheckpointToJSON(stCps[i]); !reflect.DeepEqual(c, w) {
			t.Errorf("checkpoint %d:\n got %+v\nwant %+v", i, c, w)
		}
	}
	if cps.Checkpoints[0].Seq != 6 || cps.Checkpoints[1].Seq != 8 {
		t.Errorf("checkpoints at %d and %d, want 6 and 8", cps.Checkpoints[0].Seq, cps.Checkpoints[1].Seq)
	}

	// The auditor verifies the chain it fetched with the published key.
	src := source(t, chain, cps)
	rep := verify(t, src, pub)
	if rep.Problem != nil || rep.Records != 8 || rep.Head.Seq != 8 || rep.Checkpoints != 2 || rep.Unsigned != 0 {
		t.Fatalf("verify the fetched chain: %+v (problem %v)", rep, rep.Problem)
	}
	if !slices.Equal(rep.Head.Hash, stored[7].Hash) {
		t.Error("verified head is not the stored head")
	}

	// Damage is detected.
	for _, tc := range []struct {
		name   string
		damage func(*memSource)
		key    crypto.PublicKey
		seq    int64
		kind   string
	}{
		{"own record edited", func(m *memSource) { m.recs[2].Action = "kmip.Decrypt" }, pub, 3, audit.Modified},
		{"own record time", func(m *memSource) { m.recs[0].Time = m.recs[0].Time.Add(time.Second) }, pub, 1, audit.Modified},
		{"own details", func(m *memSource) { m.recs[4].Details = map[string]string{"message": "yes"} }, pub, 5, audit.Modified},
		{"redacted content hash", func(m *memSource) { m.recs[1].ContentHash[0] ^= 1 }, pub, 2, audit.Modified},
		{"redacted record removed", func(m *memSource) { m.recs = slices.Delete(m.recs, 3, 4) }, pub, 4, audit.Removed},
		{"truncated", func(m *memSource) { m.recs = m.recs[:7] }, pub, 8, audit.Truncated},
		{"checkpoint forged", func(m *memSource) { m.cps[1].Signature[8] ^= 1 }, pub, 8, audit.BadSigning},
		{"another key", func(*memSource) {}, mustKey(t), 6, audit.BadSigning},
	} {
		m := source(t, chain, cps)
		tc.damage(m)
		rep := verify(t, m, tc.key)
		if rep.Problem == nil || rep.Problem.Seq != tc.seq || rep.Problem.Kind != tc.kind {
			t.Errorf("%s: problem %v, want %s at %d", tc.name, rep.Problem, tc.kind, tc.seq)
		}
	}

	// globex verifies its own view too (acme's records redacted).
	gchain, _ := fetchChain(t, globex, "?limit=9")
	if !slices.Equal(seqs(gchain), []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("globex chain %v", seqs(gchain))
	}
	for _, j := range gchain {
		if j.Redacted != (j.Seq != 2 && j.Seq != 6 && j.Seq != 7) {
			t.Errorf("globex's view of record %d: redacted=%v", j.Seq, j.Redacted)
		}
	}
	gcps, _ := fetchCheckpoints(t, globex)
	if rep := verify(t, source(t, gchain, gcps), pub); rep.Problem != nil || rep.Records != 9 || rep.Unsigned != 1 {
		t.Errorf("verify globex's view: %+v (problem %v)", rep, rep.Problem)
	}
}

func mustKey(t testing.TB) crypto.PublicKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func TestAPIChainPaging(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, nil)
	acme := s.member(t, "acme", "aud1", engine.RoleAuditor)
	full, _ := fetchChain(t, acme, "") // 1..6, then the read is 7

	page, r := fetchChain(t, acme, "?after=2&limit=2")
	if !slices.Equal(seqs(page), []int64{3, 4}) || r.header.Get("X-Minikms-Last-Seq") != "4" {
		t.Fatalf("after=2&limit=2: %v, last %q", seqs(page), r.header.Get("X-Minikms-Last-Seq"))
	}
	if !reflect.DeepEqual(page, full[2:4]) {
		t.Errorf("page differs from the whole chain:\n%+v\n%+v", page, full[2:4])
	}
	wantCallRecord(t, lastRecord(t, env), acme, r, "acme", "aud1", engine.RoleAuditor, "http.audit.chain", audit.StatusSuccess, "",
		map[string]string{"records": "2", "query": "after=2&limit=2"})

	// Walk the chain three records at a time.
	var walked []audit.JSONRecord
	var after int64
	for len(walked) < 9 {
		page, r := fetchChain(t, acme, fmt.Sprintf("?after=%d&limit=3", after))
		if len(page) == 0 || len(page) > 3 {
			t.Fatalf("after=%d: %d records", after, len(page))
		}
		walked = append(walked, page...)
		after, _ = strconv.ParseInt(r.header.Get("X-Minikms-Last-Seq"), 10, 64)
		if after != page[len(page)-1].Seq {
			t.Fatalf("X-Minikms-Last-Seq %d, last record %d", after, page[len(page)-1].Seq)
		}
	}
	if got := seqs(walked); !slices.Equal(got[:9], []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("walked %v", got)
	}
	if !reflect.DeepEqual(walked[:6], full) {
		t.Error("the walked chain differs from the whole chain")
	}
	stored := allRecords(t, env)
	for _, j := range walked {
		if j.EntryHash != hex.EncodeToString(stored[j.Seq-1].Hash) || j.PrevHash != hex.EncodeToString(stored[j.Seq-1].PrevHash) {
			t.Errorf("record %d: hashes differ from the store", j.Seq)
		}
	}

	// Past the head: an empty page.
	head := headSeq(t, env)
	page, r = fetchChain(t, acme, "?after="+strconv.FormatInt(head, 10))
	if len(page) != 0 || len(r.body) != 0 {
		t.Errorf("after the head: %q", r.body)
	}
	if _, ok := r.header["X-Minikms-Last-Seq"]; ok {
		t.Error("an empty page has X-Minikms-Last-Seq")
	}
	page, _ = fetchChain(t, acme, "?limit=1")
	if !slices.Equal(seqs(page), []int64{1}) {
		t.Errorf("limit=1: %v", seqs(page))
	}
}

func TestAPICheckpointsKey(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	var keyFunc func(context.Context) (crypto.PublicKey, error)
	s := startHTTP(t, env, func(c *httpapi.Config) {
		c.CheckpointKey = func(ctx context.Context) (crypto.PublicKey, error) { return keyFunc(ctx) }
	})
	noKey := startHTTP(t, env, nil) // Config.CheckpointKey nil
	acme := s.member(t, "acme", "aud1", engine.RoleAuditor)
	acmeNoKey := noKey.member(t, "acme", "aud1", engine.RoleAuditor)

	// Nothing yet: no key, an empty list (not null).
	r := acmeNoKey.get("/v1/audit/checkpoints")
	var empty audit.Checkpoints
	if r.status != http.StatusOK || json.Unmarshal(r.body, &empty) != nil || empty.KeyID != "" || empty.PublicKey != "" ||
		empty.Checkpoints == nil || len(empty.Checkpoints) != 0 || !bytes.Contains(r.body, []byte(`"checkpoints":[]`)) {
		t.Fatalf("no key, no checkpoint: %d %q", r.status, r.body)
	}
	if head, _ := env.Store.AuditHead(t.Context()); empty.HeadSeq != head.Seq-1 { // then the read itself was recorded
		t.Fatalf("head_seq %d, want the head before the read was recorded (now %d)", empty.HeadSeq, head.Seq)
	}
	wantCallRecord(t, lastRecord(t, env), acmeNoKey, r, "acme", "aud1", engine.RoleAuditor, "http.audit.checkpoints", audit.StatusSuccess, "",
		map[string]string{"checkpoints": "0"})

	cp, key, _ := checkpointKey(t, env)
	if err := cp.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ := fetchCheckpoints(t, acmeNoKey)
	if got.KeyID != "" || got.PublicKey != "" || len(got.Checkpoints) != 1 || got.Checkpoints[0].Seq != 1 || got.Checkpoints[0].KeyID != cp.KeyID() {
		t.Errorf("without a configured key: %+v", got)
	}

	// The key is not created yet.
	keyFunc = func(context.Context) (crypto.PublicKey, error) {
		return nil, fmt.Errorf("checkpoint key: %w", engine.ErrNotFound)
	}
	got, _ = fetchCheckpoints(t, acme)
	if got.KeyID != "" || got.PublicKey != "" || len(got.Checkpoints) != 1 {
		t.Errorf("key not found: %+v", got)
	}

	keyFunc = func(context.Context) (crypto.PublicKey, error) { return key.Public(), nil }
	got, _ = fetchCheckpoints(t, acme)
	if got.KeyID != cp.KeyID() || len(got.Checkpoints) != 1 {
		t.Errorf("with the key: %+v", got)
	}
	if pub, err := audit.ParsePublicKeyPEM(got.PublicKey); err != nil || !key.PublicKey.Equal(pub) {
		t.Errorf("public_key %q: %v", got.PublicKey, err)
	}

	// The key cannot be read: unavailable, and no checkpoint is served.
	keyFunc = func(context.Context) (crypto.PublicKey, error) { return nil, errors.New("HSM unreachable") }
	before := headSeq(t, env)
	r = acme.get("/v1/audit/checkpoints")
	if msg := wantError(t, r, http.StatusServiceUnavailable, httpapi.CodeUnavailable); strings.Contains(msg, "HSM") {
		t.Errorf("the internal error leaks: %q", msg)
	}
	// A key of a type that cannot be encoded: an error, no checkpoint.
	keyFunc = func(context.Context) (crypto.PublicKey, error) { return struct{}{}, nil }
	r = acme.get("/v1/audit/checkpoints")
	if r.status < 500 || strings.Contains(string(r.body), "checkpoints") {
		t.Errorf("an unusable key: %d %q", r.status, r.body)
	}
	noSuccessSince(t, env, before)
}

func TestAPIFailsClosed(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	cp, _, keyFunc := checkpointKey(t, env)
	if err := cp.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	down := &failingLog{}
	s := startHTTP(t, env, func(c *httpapi.Config) { c.Audit = down; c.CheckpointKey = keyFunc })
	aud := s.member(t, "acme", "aud1", engine.RoleAuditor)
	admin := s.member(t, "acme", "root", engine.RoleAdmin)
	app := s.member(t, "acme", "app1", engine.RoleApp)
	var calls int64
	for _, c := range []*client{aud, admin, app} {
		for _, p := range []string{
			"/v1/audit/records", "/v1/audit/records?action=kmip.Create", "/v1/audit/records?limit=0", "/v1/audit/records?from=x",
			"/v1/audit/chain", "/v1/audit/chain?after=2&limit=2", "/v1/audit/chain?after=-1",
			"/v1/audit/checkpoints",
		} {
			r := c.get(p)
			if msg := wantError(t, r, http.StatusServiceUnavailable, httpapi.CodeUnavailable); msg != "the audit log cannot record this request; try again later" {
				t.Errorf("%s: message %q", p, msg)
			}
			for _, leak := range []string{"kmip", "entry_hash", "checkpoints", "signature", "PUBLIC KEY"} {
				if strings.Contains(string(r.body), leak) {
					t.Errorf("%s served %q while the audit log is down", p, r.body)
				}
			}
			calls++
			if n := down.calls.Load(); n != calls {
				t.Fatalf("%s: %d attempts to record, want %d", p, n, calls)
			}
		}
	}
	// Requests refused before any identity is known do not record.
	wantError(t, s.plain(t).get("/v1/audit/records"), http.StatusForbidden, httpapi.CodeMTLSRequired)
	wantError(t, s.anonymous(t).get("/v1/audit/records"), http.StatusUnauthorized, httpapi.CodeUnauthorized)
	if n := headSeq(t, env); n != 6 {
		t.Errorf("head %d, want 6", n)
	}
}

func TestAPIStoreUnavailable(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, func(c *httpapi.Config) { c.AuditStore = failingStore{env.Store} })
	aud := s.member(t, "acme", "aud1", engine.RoleAuditor)
	for _, p := range endpoints {
		msg := wantError(t, aud.get(p), http.StatusServiceUnavailable, httpapi.CodeUnavailable)
		if strings.Contains(msg, errStoreDown.Error()) {
			t.Errorf("%s: the internal error leaks: %q", p, msg)
		}
	}
}

func TestAPIRevokedMemberOnKeptAliveConnection(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	seed(t, env)
	s := startHTTP(t, env, nil)
	aud := s.member(t, "acme", "aud1", engine.RoleAuditor)
	r := aud.get("/v1/audit/records")
	if got := lines(t, r); !slices.Equal(seqs(got), []int64{1, 3, 5}) || r.reused {
		t.Fatalf("before revocation: %v, reused=%v", seqs(got), r.reused)
	}
	if r = aud.get("/v1/audit/records?limit=1"); r.status != http.StatusOK || !r.reused {
		t.Fatalf("second request: %d, reused=%v", r.status, r.reused)
	}

	leaf, err := x509.ParseCertificate(aud.cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := env.Auth.Revoke(t.Context(), "acme", pki.SerialHex(leaf), pki.ReasonKeyCompromise); err != nil || !ok {
		t.Fatalf("Revoke: %v, %v", ok, err)
	}
	if err := env.Refresh(); err != nil {
		t.Fatal(err)
	}
	before := headSeq(t, env)
	for _, p := range endpoints {
		r = aud.get(p)
		if !r.reused {
			t.Fatalf("%s: the kept-alive connection was not reused", p)
		}
		if msg := wantError(t, r, http.StatusUnauthorized, httpapi.CodeUnauthorized); msg != "the client certificate is no longer accepted" {
			t.Errorf("%s: message %q", p, msg)
		}
	}
	noSuccessSince(t, env, before)
	// A new connection with the revoked certificate fails its handshake.
	if r, err := s.withCert(t, *aud.cert).try("/v1/audit/records"); err == nil {
		t.Errorf("a new connection with a revoked certificate: %d %q", r.status, r.body)
	}
	// Other members are unaffected.
	if r := s.member(t, "acme", "aud2", engine.RoleAuditor).get("/v1/audit/records"); r.status != http.StatusOK {
		t.Errorf("another auditor: %d %q", r.status, r.body)
	}
}

// TestAPIClientHangupDoesNotFailAuditLog: a client that goes away while its
// request is recorded cancels the request's context; that must not count as
// the audit log failing (KMIP records with a context of its own).
func TestAPIClientHangupDoesNotFailAuditLog(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	h := httpapi.New(httpapi.Config{Identifier: env.Verifier, Audit: env.Audit, AuditStore: env.Store})
	cert := env.ClientCertificate(t, "acme", "app1", engine.RoleApp)
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1/v1/audit/records", nil)
	req.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: chain}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if err := env.Audit.Healthy(); err != nil {
		t.Errorf("a client hanging up made the audit log unhealthy (the KMIP server then refuses every operation): %v", err)
	}
}

// noSuccessSince checks that no request after record seq was recorded as
// served (refusals may be recorded, as failures).
func noSuccessSince(t testing.TB, env *testkms.Env, seq int64) {
	t.Helper()
	for _, r := range allRecords(t, env)[seq:] {
		if r.Status != audit.StatusFailure {
			t.Errorf("record %d after %d: %s %s by %s/%s", r.Seq, seq, r.Action, r.Status, r.Tenant, r.Member)
		}
	}
}

// TestAPIUnauthenticatedRefusalsAreAudited: requests refused before any
// identity is known are recorded (with the address, and the certificate
// hash when there is one), within the refusal rate.
func TestAPIUnauthenticatedRefusalsAreAudited(t *testing.T) {
	env := testkms.Start(t, testkms.Options{})
	s := startHTTP(t, env, nil)
	for _, c := range []struct {
		cl   *client
		code string
	}{{s.plain(t), httpapi.CodeMTLSRequired}, {s.anonymous(t), httpapi.CodeUnauthorized}} {
		r := c.cl.get("/v1/audit/chain")
		wantError(t, r, map[string]int{httpapi.CodeMTLSRequired: http.StatusForbidden, httpapi.CodeUnauthorized: http.StatusUnauthorized}[c.code], c.code)
		rec := lastRecord(t, env)
		if rec.Action != "http.audit.chain" || rec.Status != audit.StatusFailure || rec.Reason != c.code || rec.Remote == "" || rec.Tenant != "" {
			t.Fatalf("refusal record %+v", rec)
		}
	}
	// A flood is recorded up to the burst, then counted.
	before := headSeq(t, env)
	cl := s.plain(t)
	for range 100 {
		cl.get("/v1/audit/records")
	}
	if n := headSeq(t, env) - before; n < 1 || n > 40 {
		t.Fatalf("%d records for 100 refusals in a burst, want between 1 and 40", n)
	}
}
