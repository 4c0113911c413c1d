//! mailaudit-store integration tests: one story suite run against SQLite (a temporary file) and
//! against a real PostgreSQL cluster on loopback started by `mailaudit_lab::postgres` (one per test binary, one
//! database per test).

mod accounts;
mod bodies;
mod crash;
mod db;
mod fleet;
mod migrations;
mod queue;
mod reports;
mod sqlite_only;
mod story;

/// Runs each listed `async fn(Kind)` of the given module once per back end.
macro_rules! backends {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::$module::$name(crate::db::Kind::Sqlite).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::$module::$name(crate::db::Kind::Postgres).await;
                }
            )*
        }
    };
}

backends!(
    story::customers_and_domains,
    story::inventory_add_never_erases_and_updates_are_partial,
    story::runs_and_results,
    story::crash_mid_run_keeps_results,
    story::checklist_sync_keeps_state,
    story::dmarc_rollout,
    story::schedules,
    story::alerts_outbox,
    story::concurrent_writers,
    story::tenant_imports,
    reports::ingest_and_deduplicate,
    reports::concurrent_ingests_store_once,
    reports::parsed_reports_by_kind_domain_and_period,
    reports::mailbox_cursors,
    reports::many_rows_in_one_report,
    reports::batch_ingest_in_one_transaction,
    crash::killed_writer_loses_nothing,
    bodies::unchanged_reports_are_stored_once,
    bodies::prune_keeps_summaries_and_each_latest_result,
    fleet::pages_filter_sort_and_total,
    queue::batch_records_what_single_writes_would,
    queue::distributed_run_chunks_and_leases,
    queue::concurrent_claims_never_share_a_chunk,
    accounts::users_roles_and_scopes,
    accounts::sessions_expire_and_are_revoked,
    accounts::audit_log_and_login_failures,
    accounts::api_tokens_act_as_their_user_until_revoked,
    accounts::the_last_admin_stays_even_under_concurrent_changes,
    migrations::from_empty,
    migrations::from_each_previous_version,
    migrations::newer_database_is_refused,
    migrations::concurrent_first_opens,
);
