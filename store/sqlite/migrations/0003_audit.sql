-- 0003: the audit hash chain and its signed checkpoints (package audit).

CREATE TABLE kms_audit_log (
    seq        INTEGER NOT NULL PRIMARY KEY, -- 1, 2, 3, ... without gaps
    time       INTEGER NOT NULL,             -- Unix nanoseconds, UTC
    node       TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    member     TEXT    NOT NULL,
    cert_hash  TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    remote     TEXT    NOT NULL,             -- client address
    action     TEXT    NOT NULL,
    object     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    details    TEXT    NOT NULL,             -- JSON object of strings
    prev_hash  BLOB    NOT NULL,
    entry_hash BLOB    NOT NULL
) STRICT;

CREATE INDEX kms_audit_log_by_tenant ON kms_audit_log (tenant, seq);
CREATE INDEX kms_audit_log_by_time ON kms_audit_log (time);
CREATE INDEX kms_audit_log_by_object ON kms_audit_log (object) WHERE object <> '';

CREATE TABLE kms_audit_checkpoints (
    seq       INTEGER NOT NULL,
    hash      BLOB    NOT NULL,
    time      INTEGER NOT NULL,
    key_id    TEXT    NOT NULL,
    signature BLOB    NOT NULL,
    PRIMARY KEY (seq, key_id)
) STRICT;
