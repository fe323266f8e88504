// Package kmip is miniKMS's KMIP 1.0–1.4 front end over mutual TLS: the
// listener, TTLV framing and its limits, batch semantics (ID placeholder,
// error continuation, unique batch item ids), one handler per operation
// that translates payloads into engine calls, and the single function that
// turns errors into KMIP Result Reasons (resultFor).
//
// Messages are framed and split into batch items by a small bounds-checked
// TTLV walker (wire.go) before anything is allocated for them; each item's
// payload is then decoded on its own with the github.com/ovh/kmip-go codec,
// so one malformed item fails alone with a precise reason.
//
// It must never put key material, plaintext or internal error text into a
// response or a log line, answer differently for another tenant's object
// than for a missing one, or send a client an attribute its protocol
// version does not define.
package kmip
