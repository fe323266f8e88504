-- 0004: the change feed that keeps the caches of several nodes coherent
-- (PostgreSQL only: a SQLite store has one process serving it).
--
-- Every update or deletion of an object appends a row to object_changes and
-- sends its content on the channel minikms_changes, in the writer's
-- transaction (so it is seen exactly when the change commits). Nodes LISTEN
-- and drop their cached copy; after a broken connection they replay the
-- rows they missed (by seq), so a lost notification never leaves a stale
-- cache. Rows are pruned after an hour by any node (see changes.go).
-- A trigger, not the store's code, writes them: any writer (a restore, an
-- operator's SQL) is seen.
CREATE TABLE object_changes (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant  text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    rev     bigint NOT NULL, -- the new revision; 0: the object was deleted
    changed timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX object_changes_by_time ON object_changes (changed);

CREATE FUNCTION minikms_object_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s       bigint;
    t       text;
    i       text;
    r       bigint;
    payload text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        t := OLD.tenant; i := OLD.id; r := 0;
    ELSE
        t := NEW.tenant; i := NEW.id; r := NEW.rev;
    END IF;
    INSERT INTO object_changes (tenant, id, rev) VALUES (t, i, r) RETURNING seq INTO s;
    payload := json_build_object('s', s, 'r', r, 't', t, 'i', i)::text;
    -- A notification carries at most 8000 bytes: a longer one carries the
    -- seq only, and listeners read the row.
    IF octet_length(payload) > 7000 THEN
        payload := json_build_object('s', s)::text;
    END IF;
    PERFORM pg_notify('minikms_changes', payload);
    RETURN NULL;
END
$$;

CREATE TRIGGER objects_changed AFTER UPDATE OR DELETE ON objects
    FOR EACH ROW EXECUTE FUNCTION minikms_object_changed();

-- Identity changes (revocations, client registrations) bump pki_generation,
-- and new tenants (their CAs) are meta rows: nodes poll both, and this
-- notification makes them reload at once.
CREATE FUNCTION minikms_identity_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('minikms_identity', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER pki_generation_changed AFTER UPDATE ON pki_generation
    FOR EACH ROW EXECUTE FUNCTION minikms_identity_changed();

CREATE TRIGGER meta_added AFTER INSERT ON meta
    FOR EACH ROW EXECUTE FUNCTION minikms_identity_changed();
