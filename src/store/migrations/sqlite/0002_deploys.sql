-- Converge's records: applied state per service, deploys, and the pins rollbacks leave.
-- Idempotent (IF NOT EXISTS) like 0001. Keep it in step with the other backend's 0002.

-- What each service last ran successfully, and which revision and deploy that came from.
CREATE TABLE IF NOT EXISTS applied (
    env       TEXT   NOT NULL,
    service   TEXT   NOT NULL,
    spec      TEXT   NOT NULL,
    revision  BIGINT NOT NULL,
    deploy_id BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (env, service)
) WITHOUT ROWID;

-- One row per converge or rollback run. `planned` and `steps` are JSON.
CREATE TABLE IF NOT EXISTS deploys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    env            TEXT   NOT NULL,
    revision       BIGINT NOT NULL,
    kind           TEXT   NOT NULL,
    actor_platform TEXT   NOT NULL,
    actor_id       TEXT   NOT NULL,
    actor_display  TEXT   NOT NULL,
    status         TEXT   NOT NULL,
    started        BIGINT NOT NULL,
    finished       BIGINT NULL,
    owner          TEXT   NOT NULL,
    heartbeat      BIGINT NOT NULL,
    planned        TEXT   NOT NULL,
    steps          TEXT   NOT NULL,
    summary        TEXT   NOT NULL
);

-- The deploy lease: at most one running deploy per environment, across every process and
-- replica sharing this store. Starting a second one is a unique violation.
CREATE UNIQUE INDEX IF NOT EXISTS deploys_one_running ON deploys (env) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS deploys_by_env ON deploys (env, id);

-- A rollback's pin: promotions into the environment are refused until `unpin`.
CREATE TABLE IF NOT EXISTS pins (
    env         TEXT   NOT NULL PRIMARY KEY,
    revision    BIGINT NOT NULL,
    by_platform TEXT   NOT NULL,
    by_id       TEXT   NOT NULL,
    by_display  TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    reason      TEXT   NOT NULL
) WITHOUT ROWID;
