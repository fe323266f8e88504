package engine

import (
	"encoding/binary"
	"fmt"
)

// MaterialFormat says how Material.Bytes are encoded.
type MaterialFormat uint8

// Material formats.
const (
	// FormatRaw: symmetric key bytes, secret data, opaque data.
	FormatRaw MaterialFormat = 1
	// FormatPKCS8: a private key, PKCS#8 DER.
	FormatPKCS8 MaterialFormat = 2
	// FormatSPKI: a public key, X.509 SubjectPublicKeyInfo DER.
	FormatSPKI MaterialFormat = 3
	// FormatX509: a certificate, DER.
	FormatX509 MaterialFormat = 4
	// FormatOpaque: bytes registered in the KMIP Opaque key format.
	FormatOpaque MaterialFormat = 5
	// FormatWrappedOnly: no plaintext; the object holds only the wrapped
	// key block it was registered with (Registered), which the server
	// may not unwrap (keywrap.go).
	FormatWrappedOnly MaterialFormat = 6
)

// Material is the plaintext content of an object, as Get returns it and
// Register takes it. Callers clear Bytes when done.
type Material struct {
	Format MaterialFormat
	// DataType is the Secret Data Type or Opaque Data Type, 0 for keys.
	DataType uint32
	Bytes    []byte
	// Registered is the key block as a client registered it wrapped
	// (opaque to the engine, kept for Get As Registered), or nil.
	Registered []byte
}

// The plaintext that gets wrapped: 0x01 | format | u32 data type | bytes,
// or, with a registered wrapped form, 0x02 | format | u32 data type |
// u32 length of Registered | Registered | bytes.
const materialHeader = 6

func encodeMaterial(m Material) []byte {
	if len(m.Registered) > 0 {
		out := make([]byte, materialHeader+4, materialHeader+4+len(m.Registered)+len(m.Bytes))
		out[0] = 0x02
		out[1] = byte(m.Format)
		binary.BigEndian.PutUint32(out[2:6], m.DataType)
		binary.BigEndian.PutUint32(out[6:10], uint32(len(m.Registered)))
		return append(append(out, m.Registered...), m.Bytes...)
	}
	out := make([]byte, materialHeader, materialHeader+len(m.Bytes))
	out[0] = 0x01
	out[1] = byte(m.Format)
	binary.BigEndian.PutUint32(out[2:6], m.DataType)
	return append(out, m.Bytes...)
}

// decodeMaterial splits the header; Bytes and Registered alias b.
func decodeMaterial(b []byte) (Material, error) {
	if len(b) >= materialHeader+4 && b[0] == 0x02 {
		n := binary.BigEndian.Uint32(b[6:10])
		if uint64(n) > uint64(len(b)-materialHeader-4) {
			return Material{}, fmt.Errorf("unwrapped material has an unknown layout")
		}
		reg := b[materialHeader+4 : materialHeader+4+int(n)]
		return Material{Format: MaterialFormat(b[1]), DataType: binary.BigEndian.Uint32(b[2:6]), Registered: reg, Bytes: b[materialHeader+4+int(n):]}, nil
	}
	if len(b) < materialHeader || b[0] != 0x01 {
		return Material{}, fmt.Errorf("unwrapped material has an unknown layout")
	}
	return Material{Format: MaterialFormat(b[1]), DataType: binary.BigEndian.Uint32(b[2:6]), Bytes: b[materialHeader:]}, nil
}
