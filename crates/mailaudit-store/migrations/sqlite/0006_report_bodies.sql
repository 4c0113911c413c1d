-- mailaudit store, schema version 6: a domain's audit report stored once while it is unchanged.
-- `report_bodies` holds each distinct report once, as a Zstandard frame (RFC 8878) of its JSON,
-- keyed by the SHA-256 of that JSON; a result written from this version on points at its body
-- (`body_id`) and keeps JSON null in `report`. Results written before keep their report in
-- `report` and no body. `detail` is `full`, or `summary` once `mailaudit prune` has replaced an
-- old result's report with its summary (score, findings without evidence or fixes, the state the
-- history compares).

CREATE TABLE report_bodies (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    digest  BLOB    NOT NULL UNIQUE,
    body    BLOB    NOT NULL
);

ALTER TABLE results ADD COLUMN body_id INTEGER REFERENCES report_bodies (id);
ALTER TABLE results ADD COLUMN detail TEXT NOT NULL DEFAULT 'full'
    CHECK (detail IN ('full', 'summary'));
CREATE INDEX results_body ON results (body_id);
