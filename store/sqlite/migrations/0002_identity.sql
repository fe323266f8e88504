-- 0002: identity records of the PKI: certificates issued, revocations, and
-- externally issued client certificates pinned by public key.

CREATE TABLE pki_certificates (
    serial     TEXT    NOT NULL PRIMARY KEY, -- lower-case hex
    tenant     TEXT    NOT NULL,
    member     TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    der        BLOB    NOT NULL,
    issued_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX pki_certificates_by_tenant ON pki_certificates (tenant, issued_at);

CREATE TABLE pki_revocations (
    tenant     TEXT    NOT NULL,
    serial     TEXT    NOT NULL,
    reason     INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, serial)
) STRICT, WITHOUT ROWID;

CREATE TABLE pki_clients (
    spki_hash     TEXT    NOT NULL PRIMARY KEY,
    tenant        TEXT    NOT NULL,
    member        TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    registered_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- pki_generation has one row; every identity change increments it.
CREATE TABLE pki_generation (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    gen INTEGER NOT NULL
) STRICT;

INSERT INTO pki_generation (id, gen) VALUES (1, 0);
