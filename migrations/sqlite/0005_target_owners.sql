-- Which hub replica ticks each target when several replicas share one database and shard the
-- targets between them. `epoch` grows by one at every claim and is the fencing token: a
-- replica writes a target's policy state only while the row still names it at the epoch it
-- claimed, so a replica that lost a target (it was slow, partitioned, or handed it over) can
-- never overwrite the state of the one that took it. `owner` NULL: released, free to claim.
CREATE TABLE target_owners (
    target_id  INTEGER PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
    owner      TEXT,
    epoch      INTEGER NOT NULL,
    changed_at INTEGER NOT NULL
);
