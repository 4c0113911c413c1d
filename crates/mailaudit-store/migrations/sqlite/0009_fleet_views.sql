-- mailaudit store, schema version 9: what the fleet pages list about each domain, kept with
-- its newest result. `domain_latest` holds, per domain, the newest result (by audited_at, then
-- id) and the facts the fleet pages sort and filter on, read from that result's report when it
-- is recorded: the DMARC policy that applies, the Direct Send verdict, the findings counted by
-- severity and the worst severity in each remediation area (0 none, 1 info, 2 low, 3 medium,
-- 4 high, 5 critical), and the ids of its findings (` ID ID `, each between spaces). Results recorded before this version are read into it by the program
-- the first time it opens the store (the `domain_latest` setting below asks for that).
--
-- Each result also keeps its DMARC policy and Direct Send verdict (NULL for results recorded
-- before), and `run_totals` holds a finished run's totals per customer (the customer's name
-- then, '' for domains without one), written the first time the fleet's progress over time is
-- read after the run finished: a chart of a year of weekly runs reads 52 rows per customer,
-- not every result.
--
-- `checklist_counts` holds each domain's checklist counted (items, items done, and for each
-- priority with a due time the oldest `updated_at` of its open items, so that "overdue" is a
-- comparison), rewritten in the transaction of every checklist change; filled here from the
-- checklists stored.
--
-- `api_tokens` are the portal users' tokens for `/api/v1/` (stored as the SHA-256 of the token,
-- shown once when made), each with its label and when it was last used.
--
-- A schedule can be paused (`paused`): kept as it is, and not run until resumed.

CREATE TABLE domain_latest (
    domain              TEXT    PRIMARY KEY,
    result_id           INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    audited_at          INTEGER NOT NULL,
    score               INTEGER,
    dmarc_policy        TEXT,
    lacks_dmarc         BOOLEAN NOT NULL,
    relay               TEXT    NOT NULL,
    n_critical          INTEGER NOT NULL,
    n_high              INTEGER NOT NULL,
    n_medium            INTEGER NOT NULL,
    n_low               INTEGER NOT NULL,
    n_info              INTEGER NOT NULL,
    worst               INTEGER NOT NULL,
    area_dmarc          INTEGER NOT NULL,
    area_spf            INTEGER NOT NULL,
    area_dkim           INTEGER NOT NULL,
    area_connectors     INTEGER NOT NULL,
    area_antispoof      INTEGER NOT NULL,
    area_impersonation  INTEGER NOT NULL,
    area_transport      INTEGER NOT NULL,
    unreadable          BOOLEAN NOT NULL,
    checks              TEXT    NOT NULL DEFAULT ''
);

ALTER TABLE results ADD COLUMN dmarc_policy TEXT;
ALTER TABLE results ADD COLUMN relay TEXT;

CREATE TABLE run_totals (
    run_id         INTEGER NOT NULL REFERENCES runs (id),
    customer       TEXT    NOT NULL,
    domains        INTEGER NOT NULL,
    scored         INTEGER NOT NULL,
    score_sum      INTEGER NOT NULL,
    with_dmarc     INTEGER NOT NULL,
    at_reject      INTEGER NOT NULL,
    relay_blocked  INTEGER NOT NULL,
    relay_open     INTEGER NOT NULL,
    with_critical  INTEGER NOT NULL,
    PRIMARY KEY (run_id, customer)
);

CREATE TABLE checklist_counts (
    domain   TEXT    PRIMARY KEY,
    total    INTEGER NOT NULL,
    done     INTEGER NOT NULL,
    open_p1  INTEGER,
    open_p2  INTEGER,
    open_p3  INTEGER
);
INSERT INTO checklist_counts (domain, total, done, open_p1, open_p2, open_p3)
    SELECT domain, COUNT(*), SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END),
           MIN(CASE WHEN state = 'open' AND priority = 1 THEN updated_at END),
           MIN(CASE WHEN state = 'open' AND priority = 2 THEN updated_at END),
           MIN(CASE WHEN state = 'open' AND priority = 3 THEN updated_at END)
    FROM checklist GROUP BY domain;

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    label         TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

ALTER TABLE schedules ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;

INSERT INTO settings (key, value) VALUES ('domain_latest', 'fill');
