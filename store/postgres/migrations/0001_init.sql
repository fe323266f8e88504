-- 0001: metadata, managed objects, and the Name / Object Group indexes.
-- The PostgreSQL twin of store/sqlite's 0001_init.sql.
--
-- Text that is compared or ordered is COLLATE "C": byte-wise, whatever the
-- database's default collation, as SQLite's BINARY.

-- meta holds a few small values (root key check values, salt check) that are
-- written once by InitMeta and never changed.
CREATE TABLE meta (
    key   text COLLATE "C" NOT NULL PRIMARY KEY,
    value bytea            NOT NULL
);

-- objects holds one row per managed object. seq comes from an identity
-- sequence: never handed out twice, even after a failed insert or a
-- deleted row, so Locate paging by seq never sees a reused value.
CREATE TABLE objects (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text COLLATE "C" NOT NULL UNIQUE,
    tenant       text COLLATE "C" NOT NULL,
    type         bigint NOT NULL CHECK (type BETWEEN 0 AND 4294967295),
    state        bigint NOT NULL CHECK (state BETWEEN 0 AND 4294967295),
    created      bigint NOT NULL, -- Initial Date, unix seconds UTC
    rev          bigint NOT NULL CHECK (rev >= 0),
    attrs        bytea  NOT NULL,
    wrapped      bytea,           -- NULL: no key material
    root_version bigint NOT NULL CHECK (root_version BETWEEN 0 AND 4294967295)
);

-- Each index ends with seq, so it yields a tenant's objects already ordered
-- by seq: ListObjects walks it backwards and stops at the limit.
CREATE INDEX objects_by_tenant ON objects (tenant, seq);
CREATE INDEX objects_by_tenant_type ON objects (tenant, type, seq);
CREATE INDEX objects_by_tenant_state ON objects (tenant, state, seq);
CREATE INDEX objects_by_tenant_type_state ON objects (tenant, type, state, seq);

-- object_names and object_groups hold the values of the multi-valued Name
-- and Object Group attributes, in order (pos). tenant is copied from the
-- object so that a lookup by value never touches another tenant's rows.
-- first is true on the first position of a value within its object; the
-- lookup index covers only those rows, so an object whose value repeats is
-- found once.
--
-- value is bytea, not text: a Name may hold any string the engine accepts
-- (NUL included, which text refuses), and bytes compare exactly. The
-- lookup index is on lookup, not value: a value may be longer than a btree
-- entry can be (the engine allows 4096 bytes). lookup is the value itself
-- up to 255 bytes, else its first 224 bytes followed by its SHA-256 (256
-- bytes), so it stands for exactly one value; queries for a long value
-- also compare the value. (The store computes it: see labelLookup.)
CREATE TABLE object_names (
    seq    bigint           NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
    pos    integer          NOT NULL,
    tenant text COLLATE "C" NOT NULL,
    value  bytea            NOT NULL,
    lookup bytea            NOT NULL,
    first  boolean          NOT NULL,
    PRIMARY KEY (seq, pos)
);

CREATE INDEX object_names_lookup ON object_names (tenant, lookup, seq) WHERE first;

CREATE TABLE object_groups (
    seq    bigint           NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
    pos    integer          NOT NULL,
    tenant text COLLATE "C" NOT NULL,
    value  bytea            NOT NULL,
    lookup bytea            NOT NULL,
    first  boolean          NOT NULL,
    PRIMARY KEY (seq, pos)
);

CREATE INDEX object_groups_lookup ON object_groups (tenant, lookup, seq) WHERE first;
