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
	srv    *Server
	eng    *engine.Engine
	p      engine.Principal
	remote string
	log    *slog.Logger

	version     kmip.ProtocolVersion
	placeholder string
	sensitive   [][]byte
	events      []engine.AuditEvent
	// streams are the open streamed Encrypts and Decrypts (stream.go).
	streams map[string]*stream
	// reqID identifies the message in progress in logs and audit records;
	// refused is its Result Reason when refused as a whole; itemDur times
	// its batch items (observer.go).
	reqID   string
	refused kmip.ResultReason
	itemDur []time.Duration
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
// encoded response. Every batch item, and every message refused as a
// whole, is recorded in the audit log before the response is returned; if
// the log cannot record, the client gets a General Failure instead.
func (s *session) handleMessage(msg []byte) []byte {
	raw, err := splitRequest(msg)
	if err != nil {
		return s.refuse(kmip.V1_0, nil, kmip.ResultReasonInvalidMessage, "malformed request message: "+err.Error())
	}
	var hdr kmip.RequestHeader
	dec, err := ttlv.NewTTLVDecoder(raw.header)
	if err == nil {
		err = decodeSafely(func() error { return dec.TagAny(kmip.TagRequestHeader, &hdr) })
	}
	if err != nil {
		return s.refuse(kmip.V1_0, nil, kmip.ResultReasonInvalidMessage, "malformed request header: "+err.Error())
	}
	v := responseVersion(hdr.ProtocolVersion)
	if !supportedVersion(hdr.ProtocolVersion) {
		return s.refuse(v, &hdr, kmip.ResultReasonInvalidMessage, fmt.Sprintf("protocol version %s is not supported (1.0 to 1.4 are)", hdr.ProtocolVersion))
	}
	if int(hdr.BatchCount) != len(raw.items) {
		return s.refuse(v, &hdr, kmip.ResultReasonInvalidMessage, fmt.Sprintf("Batch Count is %d but the message has %d batch items", hdr.BatchCount, len(raw.items)))
	}
	cont := hdr.BatchErrorContinuationOption
	switch cont {
	case 0:
		cont = kmip.BatchErrorContinuationOptionStop // the KMIP default
	case kmip.BatchErrorContinuationOptionStop, kmip.BatchErrorContinuationOptionContinue:
	case kmip.BatchErrorContinuationOptionUndo:
		if err := s.checkUndoable(raw.items); err != nil {
			reason, text := resultFor(context.Background(), s.log, v, err)
			return s.refuse(v, &hdr, reason, text)
		}
	default:
		return s.refuse(v, &hdr, kmip.ResultReasonInvalidField, "unknown Batch Error Continuation Option")
	}
	if hdr.MaximumResponseSize < 0 {
		return s.refuse(v, &hdr, kmip.ResultReasonInvalidField, "Maximum Response Size is negative")
	}
	if err := s.srv.auditHealthy(); err != nil {
		s.log.Warn("request refused: the audit log cannot record", "err", err)
		s.noteRefused(kmip.ResultReasonGeneralFailure)
		return messageError(v, &hdr, kmip.ResultReasonGeneralFailure, auditUnavailable)
	}

	s.version = v
	s.placeholder = ""
	s.events = s.events[:0]
	resp := &kmip.ResponseMessage{
		Header: kmip.ResponseHeader{
			ProtocolVersion: v, TimeStamp: now().Truncate(time.Second), BatchCount: hdr.BatchCount,
			ClientCorrelationValue: hdr.ClientCorrelationValue,
		},
		BatchItem: make([]kmip.ResponseBatchItem, len(raw.items)),
	}
	stopped := false
	var undo *undoLog
	if cont == kmip.BatchErrorContinuationOptionUndo {
		undo = newUndoLog()
	}
	for i := range raw.items {
		bi := &raw.items[i]
		out := &resp.BatchItem[i]
		out.Operation = kmip.Operation(bi.operation)
		out.UniqueBatchItemID = bi.batchID
		if stopped {
			out.ResultStatus = kmip.ResultStatusOperationFailed
			out.ResultReason = kmip.ResultReasonOperationCanceledByRequester
			out.ResultMessage = "not processed: an earlier batch item failed and the continuation option is " + ttlv.EnumStr(cont)
			s.events = append(s.events, s.opEvent(out.Operation, nil, nil, out, ""))
			continue
		}
		start := time.Now()
		placeholder := s.placeholder
		var req any
		var payload kmip.OperationPayload
		var err error
		if undo == nil {
			req, payload, err = s.execute(bi)
		} else {
			req, payload, err = s.executeUndoable(undo, i, bi)
		}
		if err != nil {
			reason, text := resultFor(context.Background(), s.log, v, err)
			out.ResultStatus = kmip.ResultStatusOperationFailed
			out.ResultReason = reason
			out.ResultMessage = text
			s.placeholder = ""
			if cont == kmip.BatchErrorContinuationOptionStop {
				stopped = true
			}
			if undo != nil {
				stopped = true
				s.undoBefore(undo, resp.BatchItem[:i], i)
			}
		} else {
			out.ResultStatus = kmip.ResultStatusSuccess
			out.ResponsePayload = payload
		}
		s.events = append(s.events, s.opEvent(out.Operation, req, payload, out, placeholder))
		s.itemDur = append(s.itemDur, time.Since(start))
		s.log.Debug("kmip operation", "op", ttlv.EnumStr(out.Operation), "status", ttlv.EnumStr(out.ResultStatus),
			"reason", reasonText(out), "duration", time.Since(start))
	}
	b, err := encodeSafely(resp)
	if err != nil {
		s.log.Error("response encoding failed", "err", err)
		for i := range s.events {
			s.events[i].Status, s.events[i].Reason = "failure", ttlv.EnumStr(kmip.ResultReasonGeneralFailure)
			s.events[i].Details = map[string]string{"message": "the response could not be encoded"}
		}
		b = messageError(v, &hdr, kmip.ResultReasonGeneralFailure, genericFailure)
		s.noteRefused(kmip.ResultReasonGeneralFailure)
	} else if max := int(hdr.MaximumResponseSize); max > 0 && len(b) > max {
		clear(b)
		for i := range resp.BatchItem {
			out := &resp.BatchItem[i]
			if out.ResultStatus == kmip.ResultStatusSuccess {
				out.ResultStatus = kmip.ResultStatusOperationFailed
				out.ResultReason = kmip.ResultReasonResponseTooLarge
				out.ResultMessage = fmt.Sprintf("the response exceeds the Maximum Response Size of %d bytes", max)
				out.ResponsePayload = nil
				s.events[i].Status, s.events[i].Reason = "failure", ttlv.EnumStr(out.ResultReason)
				s.events[i].Details = map[string]string{"message": out.ResultMessage}
			}
		}
		b = ttlv.MarshalTTLV(resp)
	}
	s.observeItems(resp.BatchItem) // observer.go
	s.tagEvents(s.events)
	if err := s.srv.record(s.events); err != nil {
		s.log.Error("audit log cannot record; response withheld", "err", err)
		clear(b)
		s.scrub()
		s.noteRefused(kmip.ResultReasonGeneralFailure)
		return messageError(v, &hdr, kmip.ResultReasonGeneralFailure, auditUnavailable)
	}
	return b
}

// executeUndoable runs item i of an Undo batch: it snapshots the object
// the item names first and notes what it changed after.
func (s *session) executeUndoable(u *undoLog, i int, bi *rawBatchItem) (any, kmip.OperationPayload, error) {
	h, req, err := s.decode(bi)
	if err != nil {
		return req, nil, err
	}
	target, _ := objectOf(req)
	if target == "" {
		target = s.placeholder
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.RequestTimeout)
	defer cancel()
	if err := u.before(ctx, s, target); err != nil {
		return req, nil, err
	}
	payload, err := s.serve(bi, h, req)
	if err != nil {
		return req, nil, err
	}
	if err := u.after(ctx, s, i, kmip.Operation(bi.operation), target, payload); err != nil {
		return req, nil, err
	}
	return req, payload, nil
}

// undoBefore reverses the items before the failed item failedAt: those
// whose effects are gone answer Operation Undone.
func (s *session) undoBefore(u *undoLog, done []kmip.ResponseBatchItem, failedAt int) {
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.RequestTimeout)
	defer cancel()
	undone := u.rollback(ctx, s)
	for i := range done {
		if done[i].ResultStatus != kmip.ResultStatusSuccess {
			continue
		}
		if ok, touched := undone[i]; touched && !ok {
			continue // still in effect: its Success stands
		}
		done[i].ResultStatus = kmip.ResultStatusOperationUndone
		done[i].ResponsePayload = nil
		s.events[i].Details = map[string]string{"undone": fmt.Sprintf("batch item %d failed; this operation was reversed", failedAt+1)}
	}
}

// auditUnavailable is what a client sees when its request cannot be
// audited.
const auditUnavailable = "the audit log cannot record operations; the operation's result is withheld (see the server's readiness)"

// refuse answers a message refused as a whole, after recording it.
func (s *session) refuse(v kmip.ProtocolVersion, hdr *kmip.RequestHeader, reason kmip.ResultReason, msg string) []byte {
	s.noteRefused(reason)
	if err := s.srv.record(s.tagEvents([]engine.AuditEvent{s.messageEvent(reason, msg)})); err != nil {
		s.log.Error("audit log cannot record a refused message", "err", err)
		s.noteRefused(kmip.ResultReasonGeneralFailure)
		return messageError(v, hdr, kmip.ResultReasonGeneralFailure, auditUnavailable)
	}
	return messageError(v, hdr, reason, msg)
}

func reasonText(bi *kmip.ResponseBatchItem) string {
	if bi.ResultReason == 0 {
		return ""
	}
	return ttlv.EnumStr(bi.ResultReason)
}

// execute runs one batch item; req is the decoded request payload (nil
// when it could not be decoded).
func (s *session) execute(bi *rawBatchItem) (req any, payload kmip.OperationPayload, err error) {
	h, req, err := s.decode(bi)
	if err != nil {
		return req, nil, err
	}
	payload, err = s.serve(bi, h, req)
	return req, payload, err
}

// decode checks one batch item and decodes its request payload.
func (s *session) decode(bi *rawBatchItem) (handler, any, error) {
	if bi.err != nil {
		return handler{}, nil, errReason(kmip.ResultReasonInvalidMessage, "malformed batch item: "+bi.err.Error())
	}
	if bi.extension != nil {
		var ext kmip.MessageExtension
		dec, err := ttlv.NewTTLVDecoder(bi.extension)
		if err == nil {
			err = decodeSafely(func() error { return dec.TagAny(kmip.TagMessageExtension, &ext) })
		}
		if err != nil {
			return handler{}, nil, errReason(kmip.ResultReasonInvalidMessage, "malformed Message Extension: "+err.Error())
		}
		if ext.CriticalityIndicator {
			return handler{}, nil, errReason(kmip.ResultReasonFeatureNotSupported, "message extension "+ext.VendorIdentification+" is critical and not supported")
		}
	}
	h, ok := handlers[kmip.Operation(bi.operation)]
	if !ok {
		return handler{}, nil, errReason(kmip.ResultReasonOperationNotSupported, "operation "+ttlv.EnumStr(kmip.Operation(bi.operation))+" is not supported")
	}
	if bi.payload == nil {
		return handler{}, nil, errReason(kmip.ResultReasonInvalidMessage, "the batch item has no Request Payload")
	}
	r := h.newReq()
	dec, err := ttlv.NewTTLVDecoder(bi.payload)
	if err == nil {
		err = decodeSafely(func() error { return dec.TagAny(kmip.TagRequestPayload, r) })
	}
	if err != nil {
		return handler{}, nil, errReason(kmip.ResultReasonInvalidMessage, "the request payload cannot be decoded: "+err.Error())
	}
	if err := checkPayloadFields(bi.payload, r); err != nil {
		return handler{}, r, errReason(kmip.ResultReasonInvalidMessage, "the request payload is malformed: "+err.Error())
	}
	return h, r, nil
}

// serve runs a decoded batch item under the request timeout.
func (s *session) serve(bi *rawBatchItem, h handler, req any) (payload kmip.OperationPayload, err error) {
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
