-- mailaudit store, schema version 9: what the fleet pages list about each domain, kept with
-- its newest result. `domain_latest` holds, per domain, the newest result (by audited_at, then
-- id) and the facts the fleet pages sort and filter on, read from that result's report when it
-- is recorded: the DMARC policy that applies, the Direct Send verdict, the findings counted by
-- severity and the worst severity in each remediation area (0 none, 1 info, 2 low, 3 medium,
-- 4 high, 5 critical). Results recorded before this version are read into it by the program
-- the first time it opens the store (the `domain_latest` setting below asks for that).

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
    unreadable          BOOLEAN NOT NULL
);
CREATE INDEX domain_latest_result ON domain_latest (result_id);

INSERT INTO settings (key, value) VALUES ('domain_latest', 'fill');
