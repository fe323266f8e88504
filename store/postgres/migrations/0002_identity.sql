-- 0002: identity records of the PKI: certificates issued, revocations, and
-- externally issued client certificates pinned by public key.
-- The PostgreSQL twin of store/sqlite's 0002_identity.sql.

CREATE TABLE pki_certificates (
    serial     text COLLATE "C" NOT NULL PRIMARY KEY, -- lower-case hex
    tenant     text COLLATE "C" NOT NULL,
    member     text COLLATE "C" NOT NULL,
    role       text COLLATE "C" NOT NULL,
    kind       text COLLATE "C" NOT NULL,
    not_before bigint NOT NULL, -- unix seconds UTC
    not_after  bigint NOT NULL,
    der        bytea  NOT NULL,
    issued_at  bigint NOT NULL
);

CREATE INDEX pki_certificates_by_tenant ON pki_certificates (tenant, issued_at);

CREATE TABLE pki_revocations (
    tenant     text COLLATE "C" NOT NULL,
    serial     text COLLATE "C" NOT NULL,
    reason     bigint NOT NULL,
    revoked_at bigint NOT NULL,
    PRIMARY KEY (tenant, serial)
);

CREATE TABLE pki_clients (
    spki_hash     text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant        text COLLATE "C" NOT NULL,
    member        text COLLATE "C" NOT NULL,
    role          text COLLATE "C" NOT NULL,
    subject       text COLLATE "C" NOT NULL,
    registered_at bigint NOT NULL
);

-- pki_generation has one row; every identity change increments it (and
-- its row lock orders identity writers).
CREATE TABLE pki_generation (
    id  integer NOT NULL PRIMARY KEY CHECK (id = 1),
    gen bigint  NOT NULL
);

INSERT INTO pki_generation (id, gen) VALUES (1, 0);
