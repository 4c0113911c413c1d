-- mailaudit store, schema version 9: what the fleet pages list about each domain, kept with
-- its newest result. `domain_latest` holds, per domain, the newest result (by audited_at, then
-- id) and the facts the fleet pages sort and filter on, read from that result's report when it
-- is recorded: the DMARC policy that applies, the Direct Send verdict, the findings counted by
-- severity and the worst severity in each remediation area (0 none, 1 info, 2 low, 3 medium,
-- 4 high, 5 critical). Results recorded before this version are read into it by the program
-- the first time it opens the store (the `domain_latest` setting below asks for that).

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

INSERT INTO settings (key, value) VALUES ('domain_latest', 'fill');
