package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minikms/minikms/audit"
	"github.com/minikms/minikms/engine"
)

// `minikms backup` and `minikms restore`: a logical copy of a store (either
// kind) into a file, and from a file into a fresh store (either kind).
//
// The file format (version 1) is gzip-compressed JSON lines:
//
//	line 1      the header: {"format":"minikms-backup","version":1,"created":...,
//	            "source":{"store":"sqlite|postgres","node":...,"minikms":...},
//	            "root_kcv":{"<root version>":"<check value>"},"salt_check":...,
//	            "counts":{...},"identity_generation":N,"last_object_seq":N}
//	lines 2..   one item each, kinds in this order: {"meta":{...}},
//	            {"certificate":{...}}, {"revocation":{...}}, {"client":{...}},
//	            {"object":{...}}, {"audit":{...}} (the `audit export` form),
//	            {"checkpoint":{...}}
//	last line   the trailer: {"end":{"items":N,"sha256":"<hex>"}}, where
//	            sha256 covers every byte before the trailer (header included)
//	            and items counts the item lines.
//
// Binary values are base64; times of objects and identity records are Unix
// seconds, of audit records RFC 3339 with nanoseconds (the precision each
// keeps). Key material is only ever the wrapped form the store holds: a
// backup needs no root key to take, and the same root key to restore.

const (
	backupFormat  = "minikms-backup"
	backupVersion = 1
	// maxBackupLine bounds one line of a backup file (an object's
	// attributes and material are far smaller), so that a damaged file
	// cannot make restore read without end.
	maxBackupLine = 64 << 20
)

type backupHeader struct {
	Format             string            `json:"format"`
	Version            int               `json:"version"`
	Created            time.Time         `json:"created"`
	Source             backupSource      `json:"source"`
	RootKCV            map[string]string `json:"root_kcv"`
	SaltCheck          map[string]string `json:"salt_check,omitempty"`
	Counts             backupCounts      `json:"counts"`
	IdentityGeneration int64             `json:"identity_generation"`
	LastObjectSeq      int64             `json:"last_object_seq"`
}

type backupSource struct {
	Store   string `json:"store"` // "sqlite" or "postgres"
	Node    string `json:"node"`
	MiniKMS string `json:"minikms"`
}

type backupCounts struct {
	Meta             int64 `json:"meta"`
	Certificates     int64 `json:"certificates"`
	Revocations      int64 `json:"revocations"`
	Clients          int64 `json:"clients"`
	Objects          int64 `json:"objects"`
	AuditRecords     int64 `json:"audit_records"`
	AuditCheckpoints int64 `json:"audit_checkpoints"`
}

func (c backupCounts) total() int64 {
	return c.Meta + c.Certificates + c.Revocations + c.Clients + c.Objects + c.AuditRecords + c.AuditCheckpoints
}

// backupLine is one line after the header: exactly one field is set.
type backupLine struct {
	Meta        *metaJSON             `json:"meta,omitempty"`
	Certificate *certJSON             `json:"certificate,omitempty"`
	Revocation  *revocationJSON       `json:"revocation,omitempty"`
	Client      *clientJSON           `json:"client,omitempty"`
	Object      *objectJSON           `json:"object,omitempty"`
	Audit       *audit.JSONRecord     `json:"audit,omitempty"`
	Checkpoint  *audit.JSONCheckpoint `json:"checkpoint,omitempty"`
	End         *backupEnd            `json:"end,omitempty"`
}

type backupEnd struct {
	Items  int64  `json:"items"`
	SHA256 string `json:"sha256"`
}

type metaJSON struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

type certJSON struct {
	Serial    string `json:"serial"`
	Tenant    string `json:"tenant"`
	Member    string `json:"member"`
	Role      string `json:"role"`
	Kind      string `json:"kind"`
	NotBefore int64  `json:"not_before"`
	NotAfter  int64  `json:"not_after"`
	DER       []byte `json:"der"`
	IssuedAt  int64  `json:"issued_at"`
}

type revocationJSON struct {
	Tenant    string `json:"tenant"`
	Serial    string `json:"serial"`
	Reason    int    `json:"reason"`
	RevokedAt int64  `json:"revoked_at"`
}

type clientJSON struct {
	SPKIHash     string `json:"spki_hash"`
	Tenant       string `json:"tenant"`
	Member       string `json:"member"`
	Role         string `json:"role"`
	Subject      string `json:"subject"`
	RegisteredAt int64  `json:"registered_at"`
}

type objectJSON struct {
	Seq     int64    `json:"seq"`
	Tenant  string   `json:"tenant"`
	ID      string   `json:"id"`
	Type    uint32   `json:"type"`
	State   uint32   `json:"state"`
	Names   []string `json:"names,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Created int64    `json:"created"`
	Rev     int64    `json:"rev"`
	Attrs   []byte   `json:"attrs"`
	// Wrapped is null for an object without material (not the same as
	// empty).
	Wrapped     []byte `json:"wrapped"`
	RootVersion uint32 `json:"root_version"`
}

// toLine converts a store item (not the summary) to its line.
func toLine(it engine.BackupItem) (backupLine, error) {
	switch {
	case it.Meta != nil:
		return backupLine{Meta: &metaJSON{Key: it.Meta.Key, Value: it.Meta.Value}}, nil
	case it.Certificate != nil:
		c := it.Certificate
		return backupLine{Certificate: &certJSON{Serial: c.Serial, Tenant: c.Tenant, Member: c.Member, Role: string(c.Role), Kind: c.Kind,
			NotBefore: c.NotBefore.Unix(), NotAfter: c.NotAfter.Unix(), DER: c.DER, IssuedAt: c.IssuedAt.Unix()}}, nil
	case it.Revocation != nil:
		r := it.Revocation
		return backupLine{Revocation: &revocationJSON{Tenant: r.Tenant, Serial: r.Serial, Reason: r.Reason, RevokedAt: r.RevokedAt.Unix()}}, nil
	case it.Client != nil:
		c := it.Client
		return backupLine{Client: &clientJSON{SPKIHash: c.SPKIHash, Tenant: c.Tenant, Member: c.Member, Role: string(c.Role), Subject: c.Subject,
			RegisteredAt: c.RegisteredAt.Unix()}}, nil
	case it.Object != nil:
		o := it.Object
		return backupLine{Object: &objectJSON{Seq: o.Seq, Tenant: o.Tenant, ID: o.ID, Type: uint32(o.Type), State: uint32(o.State),
			Names: o.Names, Groups: o.Groups, Created: o.Created.Unix(), Rev: o.Rev, Attrs: o.Attrs, Wrapped: o.Wrapped, RootVersion: o.RootVersion}}, nil
	case it.Audit != nil:
		if it.Audit.Redacted {
			return backupLine{}, fmt.Errorf("audit record %d is redacted", it.Audit.Seq)
		}
		j := audit.ToJSON(it.Audit)
		return backupLine{Audit: &j}, nil
	case it.Checkpoint != nil:
		j := audit.CheckpointToJSON(*it.Checkpoint)
		return backupLine{Checkpoint: &j}, nil
	}
	return backupLine{}, fmt.Errorf("unexpected backup item %q", it.Kind())
}

// kind names the line's kind, and checks that exactly one field is set.
func (l *backupLine) kind() (string, error) {
	var kinds []string
	for name, set := range map[string]bool{"meta": l.Meta != nil, "certificate": l.Certificate != nil, "revocation": l.Revocation != nil,
		"client": l.Client != nil, "object": l.Object != nil, "audit": l.Audit != nil, "checkpoint": l.Checkpoint != nil, "end": l.End != nil} {
		if set {
			kinds = append(kinds, name)
		}
	}
	if len(kinds) != 1 {
		return "", fmt.Errorf("a line must hold exactly one item, not %d", len(kinds))
	}
	return kinds[0], nil
}

// item converts a line back to a store item.
func (l *backupLine) item() (engine.BackupItem, error) {
	switch {
	case l.Meta != nil:
		return engine.BackupItem{Meta: &engine.MetaEntry{Key: l.Meta.Key, Value: nonNilBytes(l.Meta.Value)}}, nil
	case l.Certificate != nil:
		c := l.Certificate
		return engine.BackupItem{Certificate: &engine.CertRecord{Serial: c.Serial, Tenant: c.Tenant, Member: c.Member, Role: engine.Role(c.Role),
			Kind: c.Kind, NotBefore: unixUTC(c.NotBefore), NotAfter: unixUTC(c.NotAfter), DER: nonNilBytes(c.DER), IssuedAt: unixUTC(c.IssuedAt)}}, nil
	case l.Revocation != nil:
		r := l.Revocation
		return engine.BackupItem{Revocation: &engine.Revocation{Tenant: r.Tenant, Serial: r.Serial, Reason: r.Reason, RevokedAt: unixUTC(r.RevokedAt)}}, nil
	case l.Client != nil:
		c := l.Client
		return engine.BackupItem{Client: &engine.ExternalClient{SPKIHash: c.SPKIHash, Tenant: c.Tenant, Member: c.Member, Role: engine.Role(c.Role),
			Subject: c.Subject, RegisteredAt: unixUTC(c.RegisteredAt)}}, nil
	case l.Object != nil:
		o := l.Object
		if len(o.Names) == 0 {
			o.Names = nil
		}
		if len(o.Groups) == 0 {
			o.Groups = nil
		}
		return engine.BackupItem{Object: &engine.StoredObject{Seq: o.Seq, Tenant: o.Tenant, ID: o.ID, Type: engine.ObjectType(o.Type),
			State: engine.State(o.State), Names: o.Names, Groups: o.Groups, Created: unixUTC(o.Created), Rev: o.Rev,
			Attrs: nonNilBytes(o.Attrs), Wrapped: o.Wrapped, RootVersion: o.RootVersion}}, nil
	case l.Audit != nil:
		if l.Audit.Redacted {
			return engine.BackupItem{}, fmt.Errorf("audit record %d is redacted", l.Audit.Seq)
		}
		r, err := audit.FromJSON(*l.Audit)
		if err != nil {
			return engine.BackupItem{}, err
		}
		if !bytes.Equal(audit.Hash(&r), r.Hash) {
			return engine.BackupItem{}, fmt.Errorf("audit record %d does not hash to its entry hash", r.Seq)
		}
		return engine.BackupItem{Audit: &r}, nil
	case l.Checkpoint != nil:
		c, err := audit.CheckpointFromJSON(*l.Checkpoint)
		if err != nil {
			return engine.BackupItem{}, err
		}
		return engine.BackupItem{Checkpoint: &c}, nil
	}
	return engine.BackupItem{}, errors.New("not an item")
}

func unixUTC(s int64) time.Time { return time.Unix(s, 0).UTC() }

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// countKind adds one item of kind to c.
func (c *backupCounts) add(kind string) {
	switch kind {
	case "meta":
		c.Meta++
	case "certificate":
		c.Certificates++
	case "revocation":
		c.Revocations++
	case "client":
		c.Clients++
	case "object":
		c.Objects++
	case "audit":
		c.AuditRecords++
	case "checkpoint":
		c.AuditCheckpoints++
	}
}

// kindRank is the order of kinds in a file.
var kindRank = map[string]int{"meta": 1, "certificate": 2, "revocation": 3, "client": 4, "object": 5, "audit": 6, "checkpoint": 7}

// hashingWriter writes lines and hashes what it writes.
type hashingWriter struct {
	w     io.Writer
	h     hash.Hash
	items int64
}

func (hw *hashingWriter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	hw.h.Write(b)
	_, err = hw.w.Write(b)
	return err
}

// backupStats is what a backup wrote.
type backupStats struct {
	header backupHeader
	sha256 string
	head   engine.AuditHead
}

// writeBackup writes a snapshot of bs to w in the file format.
func writeBackup(ctx context.Context, bs engine.BackupStore, w io.Writer, src backupSource, progress func(done, total int64)) (backupStats, error) {
	gz := gzip.NewWriter(w)
	hw := &hashingWriter{w: gz, h: sha256.New()}
	var (
		st      backupStats
		sum     *engine.BackupSummary
		meta    []engine.MetaEntry
		started bool
	)
	// The header names the root key check values, which are meta rows: the
	// (few, small) meta rows are held back until the header is written.
	start := func() error {
		if started {
			return nil
		}
		started = true
		if sum == nil {
			return errors.New("the store's snapshot has no summary")
		}
		h := backupHeader{Format: backupFormat, Version: backupVersion, Created: time.Now().UTC(), Source: src, RootKCV: map[string]string{},
			Counts: backupCounts{Meta: sum.Meta, Certificates: sum.Certificates, Revocations: sum.Revocations, Clients: sum.Clients,
				Objects: sum.Objects, AuditRecords: sum.AuditRecords, AuditCheckpoints: sum.Checkpoints},
			IdentityGeneration: sum.Generation, LastObjectSeq: sum.LastSeq}
		for _, m := range meta {
			if v, ok := strings.CutPrefix(m.Key, "root.kcv."); ok {
				h.RootKCV[v] = string(m.Value)
			} else if v, ok := saltCheckVersion(m.Key); ok {
				if h.SaltCheck == nil {
					h.SaltCheck = map[string]string{}
				}
				h.SaltCheck[v] = string(m.Value)
			}
		}
		st.header = h
		if err := hw.line(h); err != nil {
			return err
		}
		for i := range meta {
			if err := hw.line(backupLine{Meta: &metaJSON{Key: meta[i].Key, Value: meta[i].Value}}); err != nil {
				return err
			}
			hw.items++
		}
		meta = nil
		return nil
	}
	err := bs.Backup(ctx, func(it engine.BackupItem) error {
		switch {
		case it.Summary != nil:
			sum = it.Summary
			return nil
		case it.Meta != nil && !started:
			meta = append(meta, *it.Meta)
			return nil
		}
		if err := start(); err != nil {
			return err
		}
		l, err := toLine(it)
		if err != nil {
			return err
		}
		if it.Audit != nil {
			st.head = engine.AuditHead{Seq: it.Audit.Seq, Hash: it.Audit.Hash}
		}
		hw.items++
		if progress != nil {
			progress(hw.items, st.header.Counts.total())
		}
		return hw.line(l)
	})
	if err == nil {
		err = start()
	}
	if err != nil {
		return st, err
	}
	if hw.items != st.header.Counts.total() {
		return st, fmt.Errorf("the snapshot held %d items but counted %d", hw.items, st.header.Counts.total())
	}
	st.sha256 = hex.EncodeToString(hw.h.Sum(nil))
	b, err := json.Marshal(backupLine{End: &backupEnd{Items: hw.items, SHA256: st.sha256}})
	if err != nil {
		return st, err
	}
	if _, err := gz.Write(append(b, '\n')); err != nil {
		return st, err
	}
	return st, gz.Close()
}

// saltCheckMetaKey is the engine's meta key of the salt check value (of
// root version 1; "hkdf.salt.check.N" of version N).
const saltCheckMetaKey = "hkdf.salt.check"

// saltCheckVersion returns the root version a salt check meta key is of.
func saltCheckVersion(key string) (string, bool) {
	if key == saltCheckMetaKey {
		return "1", true
	}
	v, ok := strings.CutPrefix(key, saltCheckMetaKey+".")
	return v, ok
}

// errStopReading ends readBackup early without an error.
var errStopReading = errors.New("stop reading")

// readBackup reads a backup file, calling fn with the summary and then
// every item, and checks everything a file can get wrong: the format and
// version, one item per line, kinds in order, the counts, the trailer, the
// SHA-256, and nothing after the trailer. fn sees items before the
// checksum is verified: a caller that writes them must undo them on error
// (Restore does: one transaction).
func readBackup(r io.Reader, fn func(engine.BackupItem) error) (backupHeader, error) {
	var h backupHeader
	gz, err := gzip.NewReader(r)
	if err != nil {
		return h, fmt.Errorf("not a miniKMS backup (not gzip: %v)", err)
	}
	br := bufio.NewReaderSize(gz, 1<<16)
	sum := sha256.New()
	readLine := func() ([]byte, error) {
		var line []byte
		for {
			chunk, err := br.ReadSlice('\n')
			line = append(line, chunk...)
			if len(line) > maxBackupLine {
				return nil, fmt.Errorf("a line is longer than %d bytes", maxBackupLine)
			}
			switch {
			case err == nil:
				return line, nil
			case errors.Is(err, bufio.ErrBufferFull):
				continue
			case errors.Is(err, io.EOF):
				if len(line) > 0 {
					return nil, errors.New("the file is truncated (its last line is incomplete)")
				}
				return nil, errors.New("the file is truncated (no end marker)")
			case errors.Is(err, io.ErrUnexpectedEOF):
				return nil, errors.New("the file is truncated")
			default:
				return nil, fmt.Errorf("the file is corrupted (%v)", err)
			}
		}
	}
	line, err := readLine()
	if err != nil {
		return h, err
	}
	sum.Write(line)
	dec := func(b []byte, v any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	if err := dec(line, &h); err != nil || h.Format != backupFormat {
		return h, errors.New("not a miniKMS backup (no backup header)")
	}
	if h.Version != backupVersion {
		return h, fmt.Errorf("backup format version %d: this miniKMS reads version %d only", h.Version, backupVersion)
	}
	if err := fn(engine.BackupItem{Summary: &engine.BackupSummary{
		Meta: h.Counts.Meta, Certificates: h.Counts.Certificates, Revocations: h.Counts.Revocations, Clients: h.Counts.Clients,
		Objects: h.Counts.Objects, AuditRecords: h.Counts.AuditRecords, Checkpoints: h.Counts.AuditCheckpoints,
		Generation: h.IdentityGeneration, LastSeq: h.LastObjectSeq,
	}}); err != nil {
		return h, err
	}
	var (
		counts backupCounts
		items  int64
		rank   int
		prev   int64 // the previous object's or audit record's seq
	)
	for n := 2; ; n++ {
		line, err := readLine()
		if err != nil {
			return h, err
		}
		var l backupLine
		if err := dec(line, &l); err != nil {
			return h, fmt.Errorf("the file is corrupted (line %d: %v)", n, err)
		}
		kind, err := l.kind()
		if err != nil {
			return h, fmt.Errorf("the file is corrupted (line %d: %v)", n, err)
		}
		if kind == "end" {
			if got := hex.EncodeToString(sum.Sum(nil)); got != l.End.SHA256 {
				return h, errors.New("the file is corrupted (its SHA-256 does not match the end marker's)")
			}
			if l.End.Items != items || counts != h.Counts {
				return h, fmt.Errorf("the file is inconsistent (%d items, the header counts %d)", items, h.Counts.total())
			}
			// Nothing may follow the end marker.
			switch _, err := br.ReadByte(); {
			case errors.Is(err, io.EOF):
				return h, nil
			case errors.Is(err, io.ErrUnexpectedEOF):
				return h, errors.New("the file is truncated")
			case err != nil:
				return h, fmt.Errorf("the file is corrupted (%v)", err)
			}
			return h, errors.New("the file is corrupted (data after the end marker)")
		}
		sum.Write(line)
		if kindRank[kind] < rank {
			return h, fmt.Errorf("the file is corrupted (line %d: %s out of order)", n, kind)
		}
		if kindRank[kind] != rank {
			prev = 0
		}
		rank = kindRank[kind]
		it, err := l.item()
		if err != nil {
			return h, fmt.Errorf("the file is corrupted (line %d: %v)", n, err)
		}
		switch {
		case it.Object != nil:
			if it.Object.Seq <= prev {
				return h, fmt.Errorf("the file is corrupted (line %d: objects out of order)", n)
			}
			prev = it.Object.Seq
		case it.Audit != nil:
			if it.Audit.Seq != prev+1 {
				return h, fmt.Errorf("the file is corrupted (line %d: audit record %d follows %d)", n, it.Audit.Seq, prev)
			}
			prev = it.Audit.Seq
		}
		counts.add(kind)
		items++
		if err := fn(it); err != nil {
			return h, err
		}
	}
}

// backupItems yields the items of the file at path (the summary first),
// then the error that made the file unusable, if any.
func backupItems(path string, progress func(done int64)) iter.Seq2[engine.BackupItem, error] {
	return func(yield func(engine.BackupItem, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			yield(engine.BackupItem{}, err)
			return
		}
		defer f.Close()
		var n int64
		_, err = readBackup(f, func(it engine.BackupItem) error {
			if !yield(it, nil) {
				return errStopReading
			}
			n++
			if progress != nil {
				progress(n)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopReading) {
			yield(engine.BackupItem{}, fmt.Errorf("backup %s: %w", path, err))
		}
	}
}

// checkBackup reads the whole file once, without writing anything: it
// returns the header and the meta the key checks need, or why the file is
// unusable.
func checkBackup(path string) (backupHeader, map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return backupHeader{}, nil, err
	}
	defer f.Close()
	meta := map[string][]byte{}
	h, err := readBackup(f, func(it engine.BackupItem) error {
		if it.Meta == nil {
			return nil
		}
		if _, salt := saltCheckVersion(it.Meta.Key); salt || strings.HasPrefix(it.Meta.Key, "root.kcv.") {
			meta[it.Meta.Key] = it.Meta.Value
		}
		return nil
	})
	if err != nil {
		return h, nil, fmt.Errorf("backup %s: %w", path, err)
	}
	// The header's check values are the file's meta rows.
	kcvs, salts := map[string]string{}, map[string]string{}
	for k, v := range meta {
		if s, ok := strings.CutPrefix(k, "root.kcv."); ok {
			kcvs[s] = string(v)
		} else if s, ok := saltCheckVersion(k); ok {
			salts[s] = string(v)
		}
	}
	if !maps.Equal(kcvs, h.RootKCV) || !maps.Equal(salts, h.SaltCheck) {
		return h, nil, fmt.Errorf("backup %s: the header's check values differ from the file's content", path)
	}
	return h, meta, nil
}

// storeKind names the kind of store a MINIKMS_DB_URL selects.
func storeKind(dbURL string) string {
	if isPostgresURL(dbURL) {
		return "postgres"
	}
	return "sqlite"
}

// runBackup is `minikms backup`.
func runBackup(ctx context.Context, args []string) (err error) {
	fl := flag.NewFlagSet("backup", flag.ContinueOnError)
	out := fl.String("out", "", "the backup file to write (- for standard output); it must not exist")
	dbURL := fl.String("db-url", "", "the store (a SQLite file path or a postgres:// URL); default "+envDBURL)
	dataDir := fl.String("data-dir", "", "development data directory (its database)")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	if *out == "" {
		return fmt.Errorf("%w: --out FILE (or --out - for standard output) is required", errUsage)
	}
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		return err
	}
	switch {
	case *dbURL != "":
		cfg.dbURL = *dbURL
	case *dataDir != "":
		cfg.dbURL = filepath.Join(*dataDir, "minikms.db")
	}
	if cfg.dbURL == "" {
		return fmt.Errorf("%w: which store? --db-url, --data-dir or %s", errUsage, envDBURL)
	}
	if cfg.nodeName == "" {
		cfg.nodeName, _ = os.Hostname()
	}
	if err := checkStoreExists(cfg.dbURL); err != nil {
		return err
	}
	// The root key is not needed (nor read): the store holds only wrapped
	// material, copied as it is.
	st, err := openStore(ctx, cfg.dbURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	bs, ok := st.(engine.BackupStore)
	if !ok {
		return fmt.Errorf("store %s cannot be backed up", storeName(cfg.dbURL))
	}
	var stats backupStats
	n := &node{cfg: cfg, store: st, audit: audit.NewLog(st, cfg.nodeName)}
	defer func() {
		d := map[string]string{"file": *out}
		if stats.sha256 != "" {
			d["sha256"] = stats.sha256
			d["objects"] = strconv.FormatInt(stats.header.Counts.Objects, 10)
			d["audit_seq"] = strconv.FormatInt(stats.head.Seq, 10)
		}
		n.recordAdmin(ctx, "admin.backup", d, &err)
	}()

	w, commit, abort, err := createOutput(*out)
	if err != nil {
		return err
	}
	p := newProgress(os.Stderr, "backing up") // root.go
	stats, err = writeBackup(ctx, bs, w, backupSource{Store: storeKind(cfg.dbURL), Node: cfg.nodeName, MiniKMS: version}, p.update)
	p.finish()
	if err == nil {
		err = commit()
	}
	if err != nil {
		abort()
		stats.sha256 = ""
		return fmt.Errorf("backup of %s: %w", storeName(cfg.dbURL), err)
	}
	c := stats.header.Counts
	fmt.Fprintf(os.Stderr, "backup of %s written to %s: %d objects, %d audit records (up to %d), %d certificates, %d meta entries; sha256 %s\n",
		storeName(cfg.dbURL), *out, c.Objects, c.AuditRecords, stats.head.Seq, c.Certificates, c.Meta, stats.sha256)
	return nil
}

// createOutput opens the backup destination: standard output, or a
// temporary file (owner only: it holds wrapped keys and the sealed CA keys)
// renamed to path by commit once complete and durable, so a failed backup
// never leaves a file that looks like one.
func createOutput(path string) (w io.Writer, commit func() error, abort func(), err error) {
	if path == "-" {
		return os.Stdout, func() error { return nil }, func() {}, nil
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, nil, nil, fmt.Errorf("%s exists: choose a new file name (a backup never overwrites one)", path)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".minikms-backup-*")
	if err != nil {
		return nil, nil, nil, err
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 1<<16)
	commit = func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		// Link, not rename: never replaces a file created meanwhile.
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		os.Remove(tmp)
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
		return nil
	}
	abort = func() {
		f.Close()
		os.Remove(tmp)
	}
	return bw, commit, abort, nil
}

// recordAdmin records an administrative command with details (auditAdmin,
// with details of its own).
func (n *node) recordAdmin(ctx context.Context, action string, details map[string]string, errp *error) {
	if errors.Is(*errp, errUsage) {
		return
	}
	e := engine.AuditEvent{Member: "cli:" + cliUser(), Role: "operator", Action: action, Status: audit.StatusSuccess, Details: details}
	if s := os.Getenv("SUDO_USER"); s != "" {
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["sudo_user"] = s
	}
	if *errp != nil {
		e.Status, e.Reason = audit.StatusFailure, (*errp).Error()
	}
	if err := n.audit.Record(ctx, []engine.AuditEvent{e}); err != nil && *errp == nil {
		*errp = fmt.Errorf("%s was done, but the audit log could not record it: %w", action, err)
	}
}

func runRestore(ctx context.Context, args []string) (err error) {
	fl := flag.NewFlagSet("restore", flag.ContinueOnError)
	in := fl.String("in", "", "the backup file to restore (- for standard input)")
	if err := fl.Parse(args); err != nil {
		return errUsage
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	if *in == "" {
		return fmt.Errorf("%w: --in FILE (or --in - for standard input) is required", errUsage)
	}
	cfg := config{}
	if err := cfg.fromEnv(); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	path := *in
	if path == "-" {
		// The file is read twice (checked, then restored): keep a copy.
		tmp, err := spoolStdin()
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		path = tmp
	}

	// 1. The file: complete and intact, before anything else.
	h, meta, err := checkBackup(path)
	if err != nil {
		return err
	}
	// 2. The root key (and salt): the backup's, before anything is written.
	log := newLogger(false)
	n := &node{cfg: cfg, log: log}
	defer n.close()
	if n.keyring, err = n.openKeyring(ctx); err != nil {
		return err
	}
	others, err := engine.CheckRestoreKeys(ctx, n.keyring, cfg.salt, meta)
	if err != nil {
		return fmt.Errorf("refusing to restore %s: %w", *in, err)
	}
	for _, v := range slices.Sorted(maps.Keys(others)) {
		fmt.Fprintf(os.Stderr, "warning: the backup also holds root key version %d (check value %s), from an unfinished root rotation: objects still wrapped under it need that key as well\n", v, others[v])
	}
	// 3. The target: a fresh store.
	created := false
	if !isPostgresURL(cfg.dbURL) {
		if _, err := os.Stat(cfg.dbURL); errors.Is(err, os.ErrNotExist) {
			created = true
		}
	}
	if n.store, err = openStore(ctx, cfg.dbURL, log); err != nil {
		return err
	}
	bs, ok := n.store.(engine.BackupStore)
	if !ok {
		return fmt.Errorf("store %s cannot be restored into", storeName(cfg.dbURL))
	}
	n.audit = audit.NewLog(n.store, cfg.nodeName)
	details := map[string]string{"file": *in, "backup_created": h.Created.Format(time.RFC3339), "backup_node": h.Source.Node,
		"backup_store": h.Source.Store, "objects": strconv.FormatInt(h.Counts.Objects, 10)}
	p := newProgress(os.Stderr, "restoring")
	err = bs.Restore(ctx, backupItems(path, func(done int64) { p.update(done, h.Counts.total()) }))
	p.finish()
	switch {
	case errors.Is(err, engine.ErrNotEmpty):
		// The attempt is recorded in the store it was aimed at (an empty
		// store is left empty).
		err = fmt.Errorf("store %s is not empty: restore only into a fresh store (a new SQLite file, an empty PostgreSQL database); nothing was written", storeName(cfg.dbURL))
		n.recordAdmin(ctx, "admin.restore", details, &err)
		return err
	case err != nil:
		n.store.Close()
		if created {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(cfg.dbURL + suffix)
			}
		}
		return fmt.Errorf("restore into %s failed, nothing was written: %w", storeName(cfg.dbURL), err)
	}
	n.recordAdmin(ctx, "admin.restore", details, &err)
	if err != nil {
		return err
	}
	// The restored chain, with the restore's own record, must verify.
	rep, verr := audit.Verify(ctx, n.store, audit.VerifyOptions{})
	if verr != nil {
		return fmt.Errorf("restored, but the audit chain could not be read back: %w", verr)
	}
	if rep.Problem != nil {
		return fmt.Errorf("restored, but the audit chain does not verify (%s): the backed-up chain was damaged; run `minikms audit verify` on the source", rep.Problem)
	}
	c := h.Counts
	fmt.Printf("restored %s (backup of %s store on %s, %s) into %s: %d objects, %d certificates, %d revocations, %d clients, %d meta entries; audit chain intact (%d records)\n",
		*in, h.Source.Store, h.Source.Node, h.Created.Format(time.RFC3339), storeName(cfg.dbURL),
		c.Objects, c.Certificates, c.Revocations, c.Clients, c.Meta, rep.Records)
	return nil
}

// spoolStdin copies standard input to a private temporary file.
func spoolStdin() (string, error) {
	f, err := os.CreateTemp("", "minikms-restore-*")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, os.Stdin); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("read standard input: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
