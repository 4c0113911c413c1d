-- mailaudit store, schema version 2 (SQLite): Exchange Online tenant configuration imports.
-- Like results, imports are keyed by the tenant's organization name, not by a domain, so the
-- history of a tenant stays whatever happens to the inventory. The customer is referenced the way
-- domains reference it.

CREATE TABLE tenant_imports (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id   INTEGER REFERENCES customers (id),
    organization  TEXT    NOT NULL,
    imported_at   INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    bundle        TEXT    NOT NULL,
    findings      TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX tenant_imports_organization ON tenant_imports (organization, imported_at DESC, id DESC);
CREATE INDEX tenant_imports_customer ON tenant_imports (customer_id);
