package kmip_test

import (
	"bytes"
	"testing"

	"github.com/minikms/minikms/engine"
	okmip "github.com/ovh/kmip-go"
)

type rngRetrieveReq struct {
	DataLength *int32
}

func (*rngRetrieveReq) Operation() okmip.Operation { return okmip.OperationRNGRetrieve }

type rngSeedReq struct {
	Data []byte `ttlv:",omitempty"`
}

func (*rngSeedReq) Operation() okmip.Operation { return okmip.OperationRNGSeed }

func dataLen(n int32) *int32 { return &n }

func TestRNGOverKMIP(t *testing.T) {
	env := startKMS(t, nil)
	w := dialAdmin(t, env)
	a := fieldOf(t, w.one(v14, &rngRetrieveReq{DataLength: dataLen(32)}), okmip.TagData).([]byte)
	b := fieldOf(t, w.one(v12, &rngRetrieveReq{DataLength: dataLen(32)}), okmip.TagData).([]byte)
	if len(a) != 32 || len(b) != 32 || bytes.Equal(a, b) {
		t.Fatalf("RNG Retrieve gave %x then %x", a, b)
	}
	w.fails(v14, &rngRetrieveReq{DataLength: dataLen(engine.MaxRNGRetrieve + 1)}, okmip.ResultReasonInvalidField)
	w.fails(v14, &rngRetrieveReq{DataLength: dataLen(0)}, okmip.ResultReasonInvalidField)
	w.fails(v14, &rngRetrieveReq{}, okmip.ResultReasonMissingData)

	// The seed is accepted; none of it is used.
	if n := fieldOf(t, w.one(v14, &rngSeedReq{Data: bytes.Repeat([]byte{7}, 32)}), okmip.TagDataLength).(int32); n != 0 {
		t.Fatalf("RNG Seed accepted %d bytes", n)
	}
	w.fails(v14, &rngSeedReq{}, okmip.ResultReasonMissingData)
	w.fails(v14, &rngSeedReq{Data: make([]byte, engine.MaxRNGSeed+1)}, okmip.ResultReasonInvalidField)

	auditor := dialAs(t, env, "acme", "audit", engine.RoleAuditor)
	auditor.fails(v14, &rngRetrieveReq{DataLength: dataLen(8)}, okmip.ResultReasonPermissionDenied)
	auditor.fails(v14, &rngSeedReq{Data: []byte{1}}, okmip.ResultReasonPermissionDenied)
}
