-- ferry's store schema for SQLite. Idempotent (IF NOT EXISTS) because SQLite has no migration
-- lock: processes racing on a fresh file may both run it, and the loser must not fail here.
-- Keep it in step with ../postgres/0001_initial.sql: both backends run the same queries.

-- One row per revision of one environment. `number` is assigned as `parent + 1`: the primary
-- key makes the append a compare-and-set, and the check plus the self-reference forbid gaps.
CREATE TABLE IF NOT EXISTS revisions (
    env             TEXT   NOT NULL,
    number          BIGINT NOT NULL,
    parent          BIGINT NULL,
    author_platform TEXT   NOT NULL,
    author_id       TEXT   NOT NULL,
    author_display  TEXT   NOT NULL,
    at              BIGINT NOT NULL,
    reason          TEXT   NULL,
    command         TEXT   NOT NULL,
    changes         TEXT   NOT NULL,
    document        TEXT   NOT NULL,
    PRIMARY KEY (env, number),
    FOREIGN KEY (env, parent) REFERENCES revisions (env, number),
    CHECK ((parent IS NULL AND number = 1) OR number = parent + 1)
);

-- Which services a revision's change set touched, so that per-service history is an index
-- range scan rather than a decode of every change set.
CREATE TABLE IF NOT EXISTS revision_services (
    env     TEXT   NOT NULL,
    service TEXT   NOT NULL,
    number  BIGINT NOT NULL,
    PRIMARY KEY (env, service, number),
    FOREIGN KEY (env, number) REFERENCES revisions (env, number)
) WITHOUT ROWID;

-- At most one lock per environment; `expires` NULL holds until released.
CREATE TABLE IF NOT EXISTS locks (
    env             TEXT   NOT NULL PRIMARY KEY,
    holder_platform TEXT   NOT NULL,
    holder_id       TEXT   NOT NULL,
    holder_display  TEXT   NOT NULL,
    reason          TEXT   NULL,
    since           BIGINT NOT NULL,
    expires         BIGINT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS locks_by_holder ON locks (holder_platform, holder_id);

-- Every command attempted. `id` orders entries newest-first even when clocks tie.
CREATE TABLE IF NOT EXISTS audit (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             BIGINT NOT NULL,
    actor_platform TEXT   NOT NULL,
    actor_id       TEXT   NOT NULL,
    actor_display  TEXT   NOT NULL,
    platform       TEXT   NOT NULL,
    channel        TEXT   NULL,
    env            TEXT   NULL,
    text           TEXT   NOT NULL,
    outcome        TEXT   NOT NULL,
    detail         TEXT   NOT NULL
);

CREATE INDEX IF NOT EXISTS audit_by_env ON audit (env, id);
CREATE INDEX IF NOT EXISTS audit_by_actor_id ON audit (actor_id, id);
CREATE INDEX IF NOT EXISTS audit_by_actor_display ON audit (actor_display, id);
