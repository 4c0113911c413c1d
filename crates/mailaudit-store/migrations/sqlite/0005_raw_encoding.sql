-- mailaudit store, schema version 5: how a report's raw file is stored. `identity`: the bytes as
-- read (every report stored before this version); `zstd`: a Zstandard frame of them (RFC 8878),
-- which `reports ingest` writes when it saves at least an eighth (report XML shrinks about
-- tenfold). The store decodes on the way out, so readers of `Store::report_raw` see the bytes as
-- read either way.

ALTER TABLE reports ADD COLUMN raw_encoding TEXT NOT NULL DEFAULT 'identity'
    CHECK (raw_encoding IN ('identity', 'zstd'));
