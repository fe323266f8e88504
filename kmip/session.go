package kmip

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/minikms/minikms/engine"
	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// session is the state of one client connection: its principal, the
// protocol version of the message in progress and the ID Placeholder.
type session struct {
	srv *Server
	eng *engine.Engine
	p   engine.Principal
	log *slog.Logger

	version     kmip.ProtocolVersion
	placeholder string
	sensitive   [][]byte
}

func (s *session) setPlaceholder(id string) { s.placeholder = id }

// scrubLater remembers a plaintext buffer to clear once the response that
// carries it is written.
func (s *session) scrubLater(b []byte) { s.sensitive = append(s.sensitive, b) }

func (s *session) scrub() {
	for _, b := range s.sensitive {
		clear(b)
	}
	s.sensitive = s.sensitive[:0]
}

// messageError is a whole-message failure: one batch item carrying reason.
func messageError(v kmip.ProtocolVersion, hdr *kmip.RequestHeader, reason kmip.ResultReason, msg string) []byte {
	resp := &kmip.ResponseMessage{
		Header: kmip.ResponseHeader{ProtocolVersion: v, TimeStamp: now().Truncate(time.Second), BatchCount: 1},
		BatchItem: []kmip.ResponseBatchItem{{
			ResultStatus: kmip.ResultStatusOperationFailed, ResultReason: reason, ResultMessage: msg,
		}},
	}
	if hdr != nil {
		resp.Header.ClientCorrelationValue = hdr.ClientCorrelationValue
	}
	return ttlv.MarshalTTLV(resp)
}

// responseVersion is the version to answer a request of version v with.
func responseVersion(v kmip.ProtocolVersion) kmip.ProtocolVersion {
	if supportedVersion(v) {
		return v
	}
	return Versions[0]
}

// handleMessage processes one framed request message and returns the
// encoded response.
func (s *session) handleMessage(msg []byte) []byte {
	raw, err := splitRequest(msg)
	if err != nil {
		return messageError(kmip.V1_0, nil, kmip.ResultReasonInvalidMessage, "malformed request message: "+err.Error())
	}
	var hdr kmip.RequestHeader
	dec, err := ttlv.NewTTLVDecoder(raw.header)
	if err == nil {
		err = decodeSafely(func() error { return dec.TagAny(kmip.TagRequestHeader, &hdr) })
	}
	if err != nil {
		return messageError(kmip.V1_0, nil, kmip.ResultReasonInvalidMessage, "malformed request header: "+err.Error())
	}
	v := responseVersion(hdr.ProtocolVersion)
	if !supportedVersion(hdr.ProtocolVersion) {
		return messageError(v, &hdr, kmip.ResultReasonInvalidMessage, fmt.Sprintf("protocol version %s is not supported (1.0 to 1.4 are)", hdr.ProtocolVersion))
	}
	if int(hdr.BatchCount) != len(raw.items) {
		return messageError(v, &hdr, kmip.ResultReasonInvalidMessage, fmt.Sprintf("Batch Count is %d but the message has %d batch items", hdr.BatchCount, len(raw.items)))
	}
	cont := hdr.BatchErrorContinuationOption
	switch cont {
	case 0:
		cont = kmip.BatchErrorContinuationOptionStop // the KMIP default
	case kmip.BatchErrorContinuationOptionStop, kmip.BatchErrorContinuationOptionContinue:
	case kmip.BatchErrorContinuationOptionUndo:
		return messageError(v, &hdr, kmip.ResultReasonFeatureNotSupported, "the Undo batch error continuation option is not supported")
	default:
		return messageError(v, &hdr, kmip.ResultReasonInvalidField, "unknown Batch Error Continuation Option")
	}
	if hdr.MaximumResponseSize < 0 {
		return messageError(v, &hdr, kmip.ResultReasonInvalidField, "Maximum Response Size is negative")
	}

	s.version = v
	s.placeholder = ""
	resp := &kmip.ResponseMessage{
		Header: kmip.ResponseHeader{
			ProtocolVersion: v, TimeStamp: now().Truncate(time.Second), BatchCount: hdr.BatchCount,
			ClientCorrelationValue: hdr.ClientCorrelationValue,
		},
		BatchItem: make([]kmip.ResponseBatchItem, len(raw.items)),
	}
	stopped := false
	for i := range raw.items {
		bi := &raw.items[i]
		out := &resp.BatchItem[i]
		out.Operation = kmip.Operation(bi.operation)
		out.UniqueBatchItemID = bi.batchID
		if stopped {
			out.ResultStatus = kmip.ResultStatusOperationFailed
			out.ResultReason = kmip.ResultReasonOperationCanceledByRequester
			out.ResultMessage = "not processed: an earlier batch item failed and the continuation option is Stop"
			continue
		}
		start := time.Now()
		payload, err := s.execute(bi)
		if err != nil {
			reason, text := resultFor(context.Background(), s.log, v, err)
			out.ResultStatus = kmip.ResultStatusOperationFailed
			out.ResultReason = reason
			out.ResultMessage = text
			s.placeholder = ""
			if cont == kmip.BatchErrorContinuationOptionStop {
				stopped = true
			}
		} else {
			out.ResultStatus = kmip.ResultStatusSuccess
			out.ResponsePayload = payload
		}
		s.log.Debug("kmip operation", "op", ttlv.EnumStr(out.Operation), "status", ttlv.EnumStr(out.ResultStatus),
			"reason", reasonText(out), "duration", time.Since(start))
	}
	b, err := encodeSafely(resp)
	if err != nil {
		s.log.Error("response encoding failed", "err", err)
		return messageError(v, &hdr, kmip.ResultReasonGeneralFailure, genericFailure)
	}
	if max := int(hdr.MaximumResponseSize); max > 0 && len(b) > max {
		clear(b)
		for i := range resp.BatchItem {
			out := &resp.BatchItem[i]
			if out.ResultStatus == kmip.ResultStatusSuccess {
				out.ResultStatus = kmip.ResultStatusOperationFailed
				out.ResultReason = kmip.ResultReasonResponseTooLarge
				out.ResultMessage = fmt.Sprintf("the response exceeds the Maximum Response Size of %d bytes", max)
				out.ResponsePayload = nil
			}
		}
		b = ttlv.MarshalTTLV(resp)
	}
	return b
}

func reasonText(bi *kmip.ResponseBatchItem) string {
	if bi.ResultReason == 0 {
		return ""
	}
	return ttlv.EnumStr(bi.ResultReason)
}

// execute runs one batch item.
func (s *session) execute(bi *rawBatchItem) (payload kmip.OperationPayload, err error) {
	if bi.err != nil {
		return nil, errReason(kmip.ResultReasonInvalidMessage, "malformed batch item: "+bi.err.Error())
	}
	if bi.extension != nil {
		var ext kmip.MessageExtension
		dec, err := ttlv.NewTTLVDecoder(bi.extension)
		if err == nil {
			err = decodeSafely(func() error { return dec.TagAny(kmip.TagMessageExtension, &ext) })
		}
		if err != nil {
			return nil, errReason(kmip.ResultReasonInvalidMessage, "malformed Message Extension: "+err.Error())
		}
		if ext.CriticalityIndicator {
			return nil, errReason(kmip.ResultReasonFeatureNotSupported, "message extension "+ext.VendorIdentification+" is critical and not supported")
		}
	}
	h, ok := handlers[kmip.Operation(bi.operation)]
	if !ok {
		return nil, errReason(kmip.ResultReasonOperationNotSupported, "operation "+ttlv.EnumStr(kmip.Operation(bi.operation))+" is not supported")
	}
	if bi.payload == nil {
		return nil, errReason(kmip.ResultReasonInvalidMessage, "the batch item has no Request Payload")
	}
	req := h.newReq()
	dec, err := ttlv.NewTTLVDecoder(bi.payload)
	if err == nil {
		err = decodeSafely(func() error { return dec.TagAny(kmip.TagRequestPayload, req) })
	}
	if err != nil {
		return nil, errReason(kmip.ResultReasonInvalidMessage, "the request payload cannot be decoded: "+err.Error())
	}
	if err := checkPayloadFields(bi.payload, req); err != nil {
		return nil, errReason(kmip.ResultReasonInvalidMessage, "the request payload is malformed: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.RequestTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("operation handler panicked", "op", ttlv.EnumStr(kmip.Operation(bi.operation)), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			payload, err = nil, errReason(kmip.ResultReasonGeneralFailure, genericFailure)
		}
	}()
	return h.serve(ctx, s, req)
}

// decodeSafely turns a codec panic on hostile input into an error.
func decodeSafely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("undecodable input: %v", r)
		}
	}()
	return f()
}

func encodeSafely(resp *kmip.ResponseMessage) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("encoder panic: %v", r)
		}
	}()
	return ttlv.MarshalTTLV(resp), nil
}
