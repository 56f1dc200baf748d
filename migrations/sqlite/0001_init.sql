-- scalehub initial schema.
--
-- Conventions: every time is unix milliseconds (INTEGER); every JSON document
-- is TEXT written by the hub (serde_json), so the schema does not depend on the
-- SQLite JSON1 build options. Child tables reference targets by integer id:
-- decisions are the big table, and an integer key keeps its rows and its index
-- small compared to repeating (namespace, kind, name) in every row.

-- One row per workload the hub has ever seen. A workload that opts out or is
-- deleted is never deleted here: removed_at is set, so its history stays
-- readable and a workload that comes back keeps its id and its history.
CREATE TABLE targets (
    id               INTEGER PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    uid              TEXT,
    state            TEXT    NOT NULL,
    spec             TEXT    NOT NULL DEFAULT 'null',
    error            TEXT,
    current_replicas INTEGER,
    desired_replicas INTEGER,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    removed_at       INTEGER,
    updated_at       INTEGER NOT NULL,
    UNIQUE (namespace, kind, name)
);

-- Keyset pagination: every sort order offered by list_targets has an index
-- whose columns are exactly its ORDER BY, so a page is one index range scan
-- however many targets there are. The UNIQUE constraint above serves the
-- default (namespace, kind, name) order.
CREATE INDEX targets_by_name    ON targets (name, namespace, kind);
CREATE INDEX targets_by_state   ON targets (state, namespace, kind, name);
CREATE INDEX targets_by_updated ON targets (updated_at, namespace, kind, name);

-- One row per tick (or API call) of a target: the whole reason chain.
-- AUTOINCREMENT so ids are never reused after pruning: clients page history
-- with ?before=<id>, and a reused id would point into the wrong place.
CREATE TABLE decisions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id        INTEGER NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    time             INTEGER NOT NULL,
    run_type         TEXT    NOT NULL,
    metrics          TEXT    NOT NULL DEFAULT 'null',
    raw_evaluation   INTEGER,
    evaluation       TEXT    NOT NULL DEFAULT 'null',
    reasons          TEXT    NOT NULL DEFAULT '[]',
    final_replicas   INTEGER,
    current_replicas INTEGER,
    scaled           INTEGER NOT NULL CHECK (scaled IN (0, 1)),
    scale_result     TEXT,
    error            TEXT,
    hooks            TEXT    NOT NULL DEFAULT '[]',
    outcome          TEXT    NOT NULL
);

-- History of one target, newest first, paged by (time, id).
CREATE INDEX decisions_by_target_time ON decisions (target_id, time DESC, id DESC);
-- Retention deletes the oldest rows across all targets.
CREATE INDEX decisions_by_time ON decisions (time);

-- Stabilisation windows and rate-policy events of a target's policy. Written
-- in the same transaction as the decision that produced it, so after a crash
-- the state is never ahead of or behind the recorded decisions.
CREATE TABLE policy_state (
    target_id  INTEGER PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Operator overrides, with their history: an override is never deleted, it is
-- ended (ended_at, ended_by) when cleared or replaced. An override whose
-- `until` has passed is inactive even while ended_at is still NULL.
CREATE TABLE overrides (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id       INTEGER NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('pin', 'bounds', 'pause')),
    replicas        INTEGER,
    min_replicas    INTEGER,
    max_replicas    INTEGER,
    pause_direction TEXT    CHECK (pause_direction IN ('up', 'down', 'both')),
    until           INTEGER,
    reason          TEXT    NOT NULL DEFAULT '',
    author          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    ended_by        TEXT,
    -- Each kind carries exactly the fields it needs.
    CHECK (kind <> 'pin' OR replicas IS NOT NULL),
    CHECK (kind <> 'bounds' OR (min_replicas IS NOT NULL AND max_replicas IS NOT NULL
                                AND min_replicas <= max_replicas)),
    CHECK (kind <> 'pause' OR pause_direction IS NOT NULL)
);

-- At most one open override per target; also the index for active lookups.
CREATE UNIQUE INDEX overrides_open ON overrides (target_id) WHERE ended_at IS NULL;
CREATE INDEX overrides_history ON overrides (target_id, created_at DESC, id DESC);
