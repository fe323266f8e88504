package oasis

import (
	"errors"
	"fmt"

	"github.com/ovh/kmip-go"
	// The payloads package registers the typed operation payloads with
	// the kmip codec; without it every payload decodes as unknown.
	_ "github.com/ovh/kmip-go/payloads"
	"github.com/ovh/kmip-go/ttlv"
)

// safely runs f and turns a panic of the codec into an error. The ttlv
// package panics on some malformed input (an unknown XML type name, a value
// it cannot encode); a vector or a server response must never crash the
// harness.
func safely(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: codec panic: %v", what, r)
		}
	}()
	return f()
}

// encodeRequest decodes the XML text of a request (placeholders already
// substituted) into a kmip.RequestMessage with the ttlv XML decoder and
// encodes it to binary TTLV.
func encodeRequest(text string) ([]byte, error) {
	var out []byte
	err := safely("encode request", func() error {
		dec, err := ttlv.NewXMLDecoder([]byte(text))
		if err != nil {
			return fmt.Errorf("xml: %w", err)
		}
		var msg kmip.RequestMessage
		if err := dec.TagAny(kmip.TagRequestMessage, &msg); err != nil {
			return fmt.Errorf("decode RequestMessage: %w", err)
		}
		out = ttlv.MarshalTTLV(&msg)
		return nil
	})
	return out, err
}

// decodeResponse decodes a binary TTLV message into a generic tree.
func decodeResponse(data []byte) (ttlv.Value, error) {
	var v ttlv.Value
	err := safely("decode response", func() error {
		dec, err := ttlv.NewTTLVDecoder(data)
		if err != nil {
			return err
		}
		if err := v.DecodeTTLV(&dec); err != nil {
			return err
		}
		if dec.Tag() != 0 {
			return errors.New("trailing data after the message")
		}
		return nil
	})
	if err != nil {
		return ttlv.Value{}, err
	}
	if v.Tag != kmip.TagResponseMessage {
		return ttlv.Value{}, fmt.Errorf("message tag is %s, want ResponseMessage", ttlv.TagString(v.Tag))
	}
	return v, nil
}
