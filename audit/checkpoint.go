package audit

import (
	"context"
	"crypto"
	"crypto/rand"
	"log/slog"
	"time"

	"github.com/minikms/minikms/engine"
)

// DefaultCheckpointInterval is how often the chain head is signed.
const DefaultCheckpointInterval = 30 * time.Second

// Checkpointer signs the chain head periodically.
type Checkpointer struct {
	store  engine.AuditStore
	signer crypto.Signer
	keyID  string
	now    func() time.Time
	last   int64
}

// NewCheckpointer signs with signer (an ECDSA key: software, sealed under
// the root key, or held by the HSM).
func NewCheckpointer(store engine.AuditStore, signer crypto.Signer) (*Checkpointer, error) {
	id, err := KeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	return &Checkpointer{store: store, signer: signer, keyID: id, now: time.Now}, nil
}

// KeyID identifies the signing key (pin it with `audit verify --key-id`).
func (c *Checkpointer) KeyID() string { return c.keyID }

// Checkpoint signs the current head if it moved since the last checkpoint.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	head, err := c.store.AuditHead(ctx)
	if err != nil || head.Seq == 0 || head.Seq == c.last {
		return err
	}
	cp := engine.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, Time: c.now().UTC().Truncate(timePrecision), KeyID: c.keyID}
	cp.Signature, err = c.signer.Sign(rand.Reader, checkpointDigest(cp), crypto.SHA256)
	if err != nil {
		return err
	}
	if err := c.store.PutAuditCheckpoint(ctx, cp); err != nil {
		return err
	}
	c.last = head.Seq
	return nil
}

// Run checkpoints every interval until ctx ends, and once more at the end.
func (c *Checkpointer) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := c.Checkpoint(fctx); err != nil {
				log.Warn("final audit checkpoint failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				log.Warn("audit checkpoint failed", "err", err)
			}
		}
	}
}
