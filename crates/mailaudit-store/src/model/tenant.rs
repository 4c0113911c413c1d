//! Exchange Online tenant configuration imports.

use serde::{Deserialize, Serialize};

use super::Time;
#[cfg(doc)]
use crate::Store;

/// One stored Exchange Online tenant configuration import ([`Store::record_tenant_import`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct TenantImport {
    /// Import id.
    pub id: i64,
    /// The customer it was imported for, if any.
    pub customer: Option<String>,
    /// The tenant's organization name (`contoso.onmicrosoft.com`), lower-case.
    pub organization: String,
    /// When it was imported.
    pub imported_at: Time,
    /// Where it came from (the bundle's file name).
    pub source: String,
    /// The parsed, normalised tenant configuration.
    #[sqlx(rename = "bundle", json)]
    pub config: serde_json::Value,
    /// The findings of its evaluation (a JSON array).
    #[sqlx(json)]
    pub findings: serde_json::Value,
}
