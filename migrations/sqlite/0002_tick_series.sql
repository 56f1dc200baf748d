-- The per-tick series: every tick of every target, packed.
--
-- A full decision row is written only when something changes (outcome, reasons,
-- replicas, error); each tick adds a point to its target's open chunk here
-- instead. One row holds up to 60 consecutive ticks, packed by the hub
-- (postcard: the gap since the previous tick, and only the fields that
-- changed); the open chunk is rewritten in place as it grows. WITHOUT ROWID
-- keeps the rows clustered by (target, time), so a target's chart is one range
-- scan and a row costs no separate rowid b-tree.
CREATE TABLE tick_series (
    target_id  INTEGER NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    start_time INTEGER NOT NULL,
    end_time   INTEGER NOT NULL,
    ticks      INTEGER NOT NULL,
    points     BLOB    NOT NULL,
    PRIMARY KEY (target_id, start_time)
) WITHOUT ROWID;

-- Retention deletes the chunks that ended longest ago.
CREATE INDEX tick_series_by_end ON tick_series (end_time);
