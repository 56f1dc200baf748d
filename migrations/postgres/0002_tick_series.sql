-- The per-tick series (../sqlite/0002_tick_series.sql explains it). PostgreSQL keeps the
-- rows in a heap with the primary key as an index, which serves a target's range scan.
CREATE TABLE tick_series (
    target_id  BIGINT  NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    start_time BIGINT  NOT NULL,
    end_time   BIGINT  NOT NULL,
    ticks      BIGINT  NOT NULL,
    points     BYTEA   NOT NULL,
    PRIMARY KEY (target_id, start_time)
);

CREATE INDEX tick_series_by_end ON tick_series (end_time);
