-- 0003: the audit hash chain and its signed checkpoints (package audit).
-- The PostgreSQL twin of store/sqlite's 0003_audit.sql. Appends serialize
-- on a transaction-level advisory lock (see AppendAudit), not on a table
-- lock, so readers never wait for them.

CREATE TABLE kms_audit_log (
    seq        bigint           NOT NULL PRIMARY KEY, -- 1, 2, 3, ... without gaps
    time       bigint           NOT NULL,             -- Unix nanoseconds, UTC
    node       text COLLATE "C" NOT NULL,
    tenant     text COLLATE "C" NOT NULL,
    member     text COLLATE "C" NOT NULL,
    cert_hash  text COLLATE "C" NOT NULL,
    role       text COLLATE "C" NOT NULL,
    remote     text COLLATE "C" NOT NULL,             -- client address
    action     text COLLATE "C" NOT NULL,
    object     text COLLATE "C" NOT NULL,
    status     text COLLATE "C" NOT NULL,
    reason     text COLLATE "C" NOT NULL,
    details    jsonb            NOT NULL,             -- JSON object of strings
    prev_hash  bytea            NOT NULL,
    entry_hash bytea            NOT NULL
);

CREATE INDEX kms_audit_log_by_tenant ON kms_audit_log (tenant, seq);
CREATE INDEX kms_audit_log_by_time ON kms_audit_log (time);
CREATE INDEX kms_audit_log_by_object ON kms_audit_log (object) WHERE object <> '';

CREATE TABLE kms_audit_checkpoints (
    seq       bigint           NOT NULL,
    hash      bytea            NOT NULL,
    time      bigint           NOT NULL,             -- Unix nanoseconds, UTC
    key_id    text COLLATE "C" NOT NULL,
    signature bytea            NOT NULL,
    PRIMARY KEY (seq, key_id)
);
