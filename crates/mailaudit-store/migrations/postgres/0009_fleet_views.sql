-- mailaudit store, schema version 9: what the fleet pages list about each domain, kept with
-- its newest result. `domain_latest` holds, per domain, the newest result (by audited_at, then
-- id) and the facts the fleet pages sort and filter on, read from that result's report when it
-- is recorded: the DMARC policy that applies, the Direct Send verdict, the findings counted by
-- severity and the worst severity in each remediation area (0 none, 1 info, 2 low, 3 medium,
-- 4 high, 5 critical). Results recorded before this version are read into it by the program
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

CREATE TABLE domain_latest (
    domain              TEXT    PRIMARY KEY,
    result_id           BIGINT NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    audited_at          BIGINT NOT NULL,
    score               BIGINT,
    dmarc_policy        TEXT,
    lacks_dmarc         BOOLEAN NOT NULL,
    relay               TEXT    NOT NULL,
    n_critical          BIGINT NOT NULL,
    n_high              BIGINT NOT NULL,
    n_medium            BIGINT NOT NULL,
    n_low               BIGINT NOT NULL,
    n_info              BIGINT NOT NULL,
    worst               BIGINT NOT NULL,
    area_dmarc          BIGINT NOT NULL,
    area_spf            BIGINT NOT NULL,
    area_dkim           BIGINT NOT NULL,
    area_connectors     BIGINT NOT NULL,
    area_antispoof      BIGINT NOT NULL,
    area_impersonation  BIGINT NOT NULL,
    area_transport      BIGINT NOT NULL,
    unreadable          BOOLEAN NOT NULL
);
CREATE INDEX domain_latest_result ON domain_latest (result_id);

ALTER TABLE results ADD COLUMN dmarc_policy TEXT;
ALTER TABLE results ADD COLUMN relay TEXT;

CREATE TABLE run_totals (
    run_id         BIGINT NOT NULL REFERENCES runs (id),
    customer       TEXT    NOT NULL,
    domains        BIGINT NOT NULL,
    scored         BIGINT NOT NULL,
    score_sum      BIGINT NOT NULL,
    with_dmarc     BIGINT NOT NULL,
    at_reject      BIGINT NOT NULL,
    relay_blocked  BIGINT NOT NULL,
    relay_open     BIGINT NOT NULL,
    with_critical  BIGINT NOT NULL,
    PRIMARY KEY (run_id, customer)
);

CREATE TABLE checklist_counts (
    domain   TEXT    PRIMARY KEY,
    total    BIGINT NOT NULL,
    done     BIGINT NOT NULL,
    open_p1  BIGINT,
    open_p2  BIGINT,
    open_p3  BIGINT
);
INSERT INTO checklist_counts (domain, total, done, open_p1, open_p2, open_p3)
    SELECT domain, COUNT(*), SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END),
           MIN(CASE WHEN state = 'open' AND priority = 1 THEN updated_at END),
           MIN(CASE WHEN state = 'open' AND priority = 2 THEN updated_at END),
           MIN(CASE WHEN state = 'open' AND priority = 3 THEN updated_at END)
    FROM checklist GROUP BY domain;

INSERT INTO settings (key, value) VALUES ('domain_latest', 'fill');
