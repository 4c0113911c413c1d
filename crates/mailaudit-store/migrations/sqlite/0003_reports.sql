-- mailaudit store, schema version 3 (SQLite): ingested DMARC aggregate, DMARC failure and SMTP TLS
-- reports, each with its original file bytes, and the records of the aggregate ones for analysis.
-- A report is stored once: by its key (kind, reporter, report id, policy domain, date range) and by
-- the SHA-256 of its content. Times are unix seconds UTC; `begin_time`/`end_time` are the report's
-- date range (BEGIN and END are SQL keywords).

CREATE TABLE reports (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL CHECK (kind IN ('aggregate', 'failure', 'smtp_tls')),
    reporter       TEXT    NOT NULL,
    report_id      TEXT    NOT NULL,
    policy_domain  TEXT    NOT NULL,
    begin_time     INTEGER NOT NULL,
    end_time       INTEGER NOT NULL,
    content_hash   TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    raw            BLOB    NOT NULL,
    parsed         TEXT    NOT NULL,
    problems       TEXT    NOT NULL DEFAULT '[]',
    ingested_at    INTEGER NOT NULL,
    UNIQUE (kind, reporter, report_id, policy_domain, begin_time, end_time)
);
CREATE UNIQUE INDEX reports_content_hash ON reports (content_hash);
CREATE INDEX reports_policy_domain ON reports (policy_domain, begin_time DESC, id DESC);

CREATE TABLE aggregate_rows (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id      INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    policy_domain  TEXT    NOT NULL,
    begin_time     INTEGER NOT NULL,
    end_time       INTEGER NOT NULL,
    source_ip      TEXT    NOT NULL,
    message_count  INTEGER NOT NULL,
    disposition    TEXT    NOT NULL,
    dkim_aligned   TEXT    NOT NULL,
    spf_aligned    TEXT    NOT NULL,
    header_from    TEXT    NOT NULL,
    envelope_from  TEXT    NOT NULL,
    dkim_domains   TEXT    NOT NULL,
    dkim_results   TEXT    NOT NULL,
    spf_domains    TEXT    NOT NULL,
    spf_results    TEXT    NOT NULL
);
CREATE INDEX aggregate_rows_domain ON aggregate_rows (policy_domain, begin_time);
CREATE INDEX aggregate_rows_report ON aggregate_rows (report_id);
