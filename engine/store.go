package engine

import (
	"context"
	"time"
)

// StoredObject is a managed object as the store keeps it: metadata in the
// clear (it is not secret), key material only wrapped.
type StoredObject struct {
	Tenant string
	ID     string
	Type   ObjectType
	State  State
	// Names and Groups are the values of the Name and Object Group
	// attributes, kept in indexed form for Locate.
	Names  []string
	Groups []string
	// Created is the Initial Date.
	Created time.Time
	// Rev starts at 1 and grows by one with every update.
	Rev int64
	// Seq is assigned by the store on create: strictly increasing in
	// creation order within a store. Locate pages by it.
	Seq int64
	// Attrs is the engine's encoding of the attribute set (JSON).
	Attrs []byte
	// Wrapped is the wrapped key material; nil once destroyed, or for
	// objects without material.
	Wrapped []byte
	// RootVersion is the root key version Wrapped is bound to.
	RootVersion uint32
}

// ObjectQuery selects objects of one tenant (Tenant is required and always
// matched exactly), newest first. Other empty fields do not filter. The engine applies the full Locate semantics on top; the store
// only narrows by what it indexes.
type ObjectQuery struct {
	Tenant string
	Types  []ObjectType // any of
	States []State      // any of
	Name   string       // has this Name value
	Group  string       // has this Object Group value
	// BeforeSeq > 0 returns only objects with Seq < BeforeSeq (paging).
	BeforeSeq int64
	// Limit caps the number returned. A store may cap it lower, so callers
	// page until a page comes back empty.
	Limit int
}

// Store persists managed objects and a few metadata values. Every method
// that writes returns only after the write is durable.
//
// Implementations: store/sqlite (embedded default), store/postgres.
type Store interface {
	// InitMeta stores value under key if the key is absent and returns the
	// value now stored (the existing one if the key was present).
	InitMeta(ctx context.Context, key string, value []byte) ([]byte, error)
	// GetMeta returns the value under key, or ErrNotFound.
	GetMeta(ctx context.Context, key string) ([]byte, error)
	// ListMeta returns every key starting with prefix, with its value.
	ListMeta(ctx context.Context, prefix string) (map[string][]byte, error)

	// CreateObject inserts o and sets o.Seq. ErrExists if (tenant, id)
	// or the id alone is taken.
	CreateObject(ctx context.Context, o *StoredObject) error
	// GetObject returns the object, or ErrNotFound if it is absent or
	// belongs to another tenant.
	GetObject(ctx context.Context, tenant, id string) (*StoredObject, error)
	// UpdateObject replaces the object if its stored Rev equals prevRev;
	// o.Rev must be prevRev+1. ErrConflict if another update won,
	// ErrNotFound if it is gone.
	UpdateObject(ctx context.Context, o *StoredObject, prevRev int64) error
	// ListObjects returns objects matching q, ordered by Seq descending.
	ListObjects(ctx context.Context, q ObjectQuery) ([]*StoredObject, error)

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// ObjectDeleter is a store that can remove an object outright (undoing its
// creation in a batch with the Undo continuation option). DeleteObject
// removes the object if its stored Rev is rev: ErrConflict if it changed,
// ErrNotFound if it is absent or in another tenant.
type ObjectDeleter interface {
	DeleteObject(ctx context.Context, tenant, id string, rev int64) error
}
