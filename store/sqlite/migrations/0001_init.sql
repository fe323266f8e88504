-- 0001: metadata, managed objects, and the Name / Object Group indexes.
--
-- Every table is STRICT, so a value of the wrong type is an error instead of
-- a silent conversion.

-- meta holds a few small values (root key check values, salt check) that are
-- written once by InitMeta and never changed.
CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;

-- objects holds one row per managed object. seq is the rowid: AUTOINCREMENT
-- makes SQLite never hand out a seq again, even after the newest row is
-- deleted, so Locate paging by seq never sees a reused value.
CREATE TABLE objects (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    tenant       TEXT    NOT NULL,
    type         INTEGER NOT NULL CHECK (type BETWEEN 0 AND 4294967295),
    state        INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4294967295),
    created      INTEGER NOT NULL, -- Initial Date, unix seconds UTC
    rev          INTEGER NOT NULL CHECK (rev >= 0),
    attrs        BLOB    NOT NULL,
    wrapped      BLOB,             -- NULL: no key material
    root_version INTEGER NOT NULL CHECK (root_version BETWEEN 0 AND 4294967295)
) STRICT;

-- An index ends with the rowid (seq), so each of these yields a tenant's
-- objects already ordered by seq: ListObjects walks it backwards and stops
-- at the limit, with no sort and no scan of other tenants.
CREATE INDEX objects_by_tenant ON objects (tenant);
CREATE INDEX objects_by_tenant_type ON objects (tenant, type);
CREATE INDEX objects_by_tenant_state ON objects (tenant, state);
CREATE INDEX objects_by_tenant_type_state ON objects (tenant, type, state);

-- object_names and object_groups hold the values of the multi-valued Name
-- and Object Group attributes, in order (pos). tenant is copied from the
-- object so that a lookup by value never touches another tenant's rows.
-- first is 1 on the first position of a value within its object; the lookup
-- index covers only those rows, so an object whose value repeats is found
-- once.
CREATE TABLE object_names (
    seq    INTEGER NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
    pos    INTEGER NOT NULL,
    tenant TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    first  INTEGER NOT NULL CHECK (first IN (0, 1)),
    PRIMARY KEY (seq, pos)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX object_names_lookup ON object_names (tenant, value, seq) WHERE first = 1;

CREATE TABLE object_groups (
    seq    INTEGER NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
    pos    INTEGER NOT NULL,
    tenant TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    first  INTEGER NOT NULL CHECK (first IN (0, 1)),
    PRIMARY KEY (seq, pos)
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX object_groups_lookup ON object_groups (tenant, value, seq) WHERE first = 1;
