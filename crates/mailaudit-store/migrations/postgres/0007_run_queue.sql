-- mailaudit store, schema version 7: distributed runs. `mailaudit audit --distributed` queues a
-- run's domains here in chunks; `mailaudit worker` processes claim a chunk with a lease (in
-- PostgreSQL `FOR UPDATE SKIP LOCKED`, so workers never wait on each other), audit its domains
-- and record their results in the same transaction that marks the chunk done, fenced by the
-- lease's token: a worker that died or lost its lease writes nothing, and the chunk is claimed
-- again once `lease_until` has passed. `domains` holds the chunk's names, one per line.

CREATE TABLE run_chunks (
    run_id       BIGINT  NOT NULL REFERENCES runs (id),
    chunk        BIGINT  NOT NULL,
    domains      TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done')),
    worker       TEXT,
    token        TEXT,
    lease_until  BIGINT,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    done_at      BIGINT,
    PRIMARY KEY (run_id, chunk)
);
CREATE INDEX run_chunks_open ON run_chunks (run_id, chunk) WHERE state <> 'done';
