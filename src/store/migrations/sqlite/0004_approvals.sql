-- Approval requests for converges of environments with `approvals = N`, and who approved.

CREATE TABLE IF NOT EXISTS approval_requests (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    env                TEXT   NOT NULL,
    revision           BIGINT NOT NULL,
    plan               TEXT   NOT NULL,
    force              BIGINT NOT NULL,
    requester_platform TEXT   NOT NULL,
    requester_id       TEXT   NOT NULL,
    requester_display  TEXT   NOT NULL,
    created            BIGINT NOT NULL,
    expires            BIGINT NOT NULL,
    needed             BIGINT NOT NULL,
    status             TEXT   NOT NULL,
    decided_by         TEXT   NULL,
    reason             TEXT   NULL
);

CREATE INDEX IF NOT EXISTS approval_requests_by_status ON approval_requests (status, env);

-- One row per distinct approver: approving twice counts once.
CREATE TABLE IF NOT EXISTS approvals (
    request_id BIGINT NOT NULL,
    platform   TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    display    TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (request_id, platform, user_id)
);
