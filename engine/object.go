package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Object is a managed object as the engine sees it: decoded attributes and
// lifecycle. It never contains plaintext key material. Objects handed out
// by the engine are snapshots; changing one changes nothing stored.
type Object struct {
	Tenant string
	ID     string
	Type   ObjectType
	// State is the stored state; EffectiveState applies the dates.
	State State
	Attrs *AttrSet
	Rev   int64
	Seq   int64

	wrapped     []byte
	rootVersion uint32
}

// Scope is the object's scope: its first Object Group.
func (o *Object) Scope() string {
	g := o.Attrs.Strings(AttrObjectGroup)
	if len(g) == 0 {
		return DefaultScope
	}
	return g[0]
}

// DefaultScope is the scope (Object Group) of objects created without one.
const DefaultScope = "default"

// HasMaterial reports whether key material is stored.
func (o *Object) HasMaterial() bool { return len(o.wrapped) > 0 }

// EffectiveState applies Activation and Deactivation Dates that have passed
// (KMIP transitions 3 and 5 happen when the date is reached, not only on a
// request).
func (o *Object) EffectiveState(now time.Time) State {
	s := o.State
	if s == StatePreActive {
		if ad := o.Attrs.Time(AttrActivationDate); !ad.IsZero() && !now.Before(ad) {
			s = StateActive
		}
	}
	if s == StateActive {
		if dd := o.Attrs.Time(AttrDeactivationDate); !dd.IsZero() && !now.Before(dd) {
			s = StateDeactivated
		}
	}
	return s
}

// ref is a copy of the object's identity for results of cryptographic
// operations: ID, tenant, type, state and revision, with an empty
// attribute set (copying the attributes on every Encrypt costs more than
// the encryption).
func (o *Object) ref() *Object {
	return &Object{Tenant: o.Tenant, ID: o.ID, Type: o.Type, State: o.State, Rev: o.Rev, Seq: o.Seq, Attrs: &AttrSet{}}
}

func (o *Object) clone() *Object {
	c := *o
	c.Attrs = o.Attrs.Clone()
	return &c
}

func (o *Object) toStored() (*StoredObject, error) {
	attrs, err := json.Marshal(o.Attrs)
	if err != nil {
		return nil, err
	}
	return &StoredObject{
		Tenant: o.Tenant, ID: o.ID, Type: o.Type, State: o.State,
		Names: o.Attrs.NameValues(), Groups: o.Attrs.Strings(AttrObjectGroup),
		Created: o.Attrs.Time(AttrInitialDate), Rev: o.Rev, Seq: o.Seq,
		Attrs: attrs, Wrapped: slices.Clone(o.wrapped), RootVersion: o.rootVersion,
	}, nil
}

func objectFromStored(s *StoredObject) (*Object, error) {
	attrs := NewAttrSet()
	if err := json.Unmarshal(s.Attrs, attrs); err != nil {
		return nil, fmt.Errorf("object %s: stored attributes: %w", s.ID, err)
	}
	return &Object{
		Tenant: s.Tenant, ID: s.ID, Type: s.Type, State: s.State, Attrs: attrs,
		Rev: s.Rev, Seq: s.Seq, wrapped: s.Wrapped, rootVersion: s.RootVersion,
	}, nil
}

// keyEntry holds the unwrapped material of one object in the cache. The
// material is zeroized when the entry leaves the cache; the prepared AES
// cipher (whose key schedule Go keeps internally and cannot be cleared)
// stays valid for requests already holding it.
type keyEntry struct {
	rev      int64
	format   MaterialFormat
	dataType uint32

	mu       sync.RWMutex
	material []byte

	once  sync.Once
	block cipher.Block
	gcm   cipher.AEAD // 12-byte nonce, 16-byte tag
	err   error
}

// copyMaterial returns a copy of the material the caller must clear.
func (k *keyEntry) copyMaterial() (Material, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.material == nil {
		return Material{}, fmt.Errorf("key material was evicted")
	}
	return Material{Format: k.format, DataType: k.dataType, Bytes: slices.Clone(k.material)}, nil
}

func (k *keyEntry) zeroize() {
	k.mu.Lock()
	clear(k.material)
	k.material = nil
	k.mu.Unlock()
}

// block returns the prepared block cipher for the key (AES or triple DES)
// and, for AES, the standard GCM (12-byte nonce, 16-byte tag).
func (k *keyEntry) cipher(alg Algorithm) (cipher.Block, cipher.AEAD, error) {
	k.once.Do(func() {
		k.mu.RLock()
		defer k.mu.RUnlock()
		if k.material == nil {
			k.err = fmt.Errorf("key material was evicted")
			return
		}
		switch alg {
		case AlgAES:
			k.block, k.err = aes.NewCipher(k.material)
			if k.err == nil {
				k.gcm, k.err = cipher.NewGCM(k.block)
			}
		case Alg3DES:
			key := k.material
			if len(key) == 16 { // two-key: K1 K2 K1
				key = append(append(make([]byte, 0, 24), key...), key[:8]...)
				defer clear(key)
			}
			k.block, k.err = des.NewTripleDESCipher(key)
		default:
			k.err = errf(ErrNotSupported, "encryption with cryptographic algorithm 0x%X is not supported (AES and triple DES are)", uint32(alg))
		}
	})
	return k.block, k.gcm, k.err
}
