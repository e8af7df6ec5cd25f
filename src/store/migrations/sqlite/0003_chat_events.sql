-- Chat events already handled, so that a platform's redelivery (Slack retries, gateway
-- resumes, reconnects) never runs a command twice, across restarts and replicas.
CREATE TABLE IF NOT EXISTS chat_events (
    platform TEXT   NOT NULL,
    event_id TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (platform, event_id)
);

CREATE INDEX IF NOT EXISTS chat_events_by_age ON chat_events (at);
