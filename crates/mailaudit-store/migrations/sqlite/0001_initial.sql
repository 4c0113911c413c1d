-- mailaudit store, schema version 1 (SQLite). Times are unix seconds UTC.

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    contacts    TEXT    NOT NULL DEFAULT '',
    notes       TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE domains (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE,
    customer_id    INTEGER REFERENCES customers (id),
    parked         BOOLEAN NOT NULL DEFAULT FALSE,
    tenant         TEXT,
    m365_endpoint  TEXT,
    relay_from     TEXT,
    relay_to       TEXT,
    key_people     TEXT    NOT NULL DEFAULT '[]',
    added_at       INTEGER NOT NULL
);
CREATE INDEX domains_customer ON domains (customer_id);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    source       TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('running', 'complete', 'aborted'))
);

-- Results are keyed by domain name, not by domains.id: removing a domain keeps its history.
CREATE TABLE results (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    domain      TEXT    NOT NULL,
    audited_at  INTEGER NOT NULL,
    score       INTEGER,
    report      TEXT    NOT NULL,
    UNIQUE (run_id, domain)
);
CREATE INDEX results_domain ON results (domain, audited_at DESC, id DESC);

CREATE TABLE result_findings (
    result_id  INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    check_id   TEXT    NOT NULL,
    severity   TEXT    NOT NULL,
    PRIMARY KEY (result_id, check_id)
);
CREATE INDEX result_findings_check ON result_findings (check_id);

CREATE TABLE checklist (
    domain      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    title       TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('open', 'done')),
    done_by     TEXT,
    done_at     INTEGER,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (domain, key)
);

CREATE TABLE dmarc_rollouts (
    domain      TEXT    PRIMARY KEY,
    phase       TEXT    NOT NULL CHECK (phase IN ('none', 'quarantine', 'reject')),
    started_at  INTEGER NOT NULL
);

-- scope: 'fleet' or 'customer:<name>'
CREATE TABLE schedules (
    scope          TEXT    PRIMARY KEY,
    interval_secs  INTEGER NOT NULL CHECK (interval_secs > 0),
    next_run_at    INTEGER NOT NULL,
    last_run_at    INTEGER
);

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at       INTEGER NOT NULL,
    domain           TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_error       TEXT
);
CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE delivered_at IS NULL;
