-- mailaudit store, schema version 8: portal accounts. `users` are the people who sign in to
-- `mailaudit serve` (role `admin`, `technician` or `viewer`; a viewer sees only the customers
-- of `user_customers`). `password_hash` is an argon2id PHC string (NULL: the user signs in only
-- through single sign-on), `totp_secret` the base32 secret of the second factor once enrolled,
-- `recovery_codes` the SHA-256 hashes of its unused recovery codes, one per line, and
-- `totp_last_step` the time step of the last code accepted (a code is accepted once).
-- `sessions` are the portal's server-side sessions: `id_hash` is the SHA-256 of the cookie's
-- value (the value itself is never stored), `csrf_token` the token every form of the session
-- carries; a `pending` session has given its password and not yet its second factor.
-- `settings` holds the admins' settings (`require_second_factor`). `audit_log` says who did
-- what and when; its `actor` and `target` are names as text, so the log outlives the users it
-- names. `login_failures` counts recent failed sign-ins
-- per account (`user:NAME`) and per client address (`addr:IP`), for the login throttle.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'technician', 'viewer')),
    password_hash  TEXT,
    totp_secret    TEXT,
    recovery_codes TEXT    NOT NULL DEFAULT '',
    totp_last_step INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE TABLE user_customers (
    user_id      INTEGER NOT NULL REFERENCES users (id),
    customer_id  INTEGER NOT NULL REFERENCES customers (id),
    PRIMARY KEY (user_id, customer_id)
);

CREATE TABLE sessions (
    id_hash       TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    csrf_token    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    pending       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL DEFAULT '',
    detail   TEXT    NOT NULL DEFAULT '',
    address  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE login_failures (
    key        TEXT    PRIMARY KEY,
    failures   INTEGER NOT NULL,
    last_at    INTEGER NOT NULL
);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
