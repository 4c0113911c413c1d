//! Who is asking, and what they may read: the one place the portal's reads of customer data
//! are scoped.
//!
//! The store is a private field of [`Portal`]: page modules cannot reach it. They read through
//! `Portal::reads`, which takes the [`Caller`] (from the sign-in middleware, see
//! [`crate::auth`]) and gives a `Reads` bound to the caller's [`Scope`]: the customers it
//! lists, the fleet lines it gives, the checks' affected domains and the raw reports it hands
//! out are the scope's only, and a domain outside it is "not found" exactly as a domain that
//! does not exist (`Reads::domain`). What a page reads about one domain goes through the
//! [`FoundDomain`] that look-up returned. Sign-in, sessions, users and the audit log are not
//! customer data: `Portal::accounts` gives the store for those, to the sign-in middleware and
//! the admin pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mailaudit_core::audit::normalize_domain;
use mailaudit_store::{
    Customer, CustomerLine, DomainEntry, FleetPage, FleetQuery, Role, RunProgress, Store,
    StoreError, StoredResult, Time,
};

use crate::PortalOptions;
use crate::pages::AppError;

/// The state every handler gets.
#[derive(Clone)]
pub struct Portal {
    store: Arc<dyn Store>,
    /// How it runs.
    pub options: PortalOptions,
    /// Set once the store has had a user: from then on everyone signs in (removing every user
    /// while serving does not open the portal again; a restart does).
    accounts_on: Arc<AtomicBool>,
    /// Single sign-on, when configured.
    sso: Option<Arc<crate::sso::Sso>>,
}

impl Portal {
    /// The portal's state over `store`.
    pub fn new(store: Arc<dyn Store>, options: PortalOptions) -> Portal {
        Portal {
            store,
            options,
            accounts_on: Arc::new(AtomicBool::new(false)),
            sso: None,
        }
    }

    /// The same portal offering single sign-on.
    #[must_use]
    pub fn with_sso(mut self, sso: crate::sso::Sso) -> Portal {
        self.sso = Some(Arc::new(sso));
        self
    }

    /// Single sign-on, when configured.
    pub(crate) fn sso(&self) -> Option<&crate::sso::Sso> {
        self.sso.as_deref()
    }

    /// Whether the store has portal users, so that everyone must sign in.
    pub(crate) async fn accounts_on(&self) -> Result<bool, StoreError> {
        if self.accounts_on.load(Ordering::Acquire) {
            return Ok(true);
        }
        let on = !self.store.users().await?.is_empty();
        if on {
            self.accounts_on.store(true, Ordering::Release);
        }
        Ok(on)
    }

    /// The store for accounts only: sign-in, sessions, users, the login throttle and the audit
    /// log. Customer data is read through [`Portal::reads`].
    pub(crate) fn accounts(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The store for the inventory's writes (customers, domains, imports, DMARC phases): for a
    /// caller who may write (technicians, admins, everyone without accounts); anyone else is
    /// told the page does not exist, as for the admin pages.
    pub(crate) fn inventory(&self, caller: &Caller) -> Result<&dyn Store, AppError> {
        if caller.may_write() {
            Ok(self.store.as_ref())
        } else {
            Err(AppError::NotFound("This page".into()))
        }
    }

    /// The MSP's name and logo for customer reports (not customer data).
    pub(crate) async fn branding(
        &self,
    ) -> Result<mailaudit_app::customer_report::Branding, StoreError> {
        mailaudit_app::customer_report::branding(self.store.as_ref()).await
    }

    /// Whether the store answers (`/healthz`).
    pub(crate) async fn health(&self) -> Result<(), StoreError> {
        self.store.runs(1).await.map(|_| ())
    }

    /// The caller's reads of customer data.
    pub(crate) fn reads<'a>(&'a self, caller: &Caller) -> Reads<'a> {
        Reads {
            store: self.store.as_ref(),
            scope: caller.scope(),
        }
    }
}

/// A signed-in user, as the session gave it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// A viewer's customers.
    pub customers: Vec<String>,
    /// The session's CSRF token (every form carries it).
    pub csrf: String,
    /// The session's token (the cookie's value), to end it at logout.
    pub(crate) token: String,
    /// The client's address, for the audit log.
    pub address: String,
    /// Whether the user has a second factor.
    pub second_factor: bool,
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The store has no users: the portal of one person on loopback, who may do everything the
    /// portal does (but has no admin pages: there are no accounts to manage).
    Open,
    /// A signed-in user.
    User(Arc<SignedIn>),
    /// Nobody signed in, on a page served without a session (the sign-in page): sees nothing.
    SignedOut,
    /// A user who has given its password but not yet its second factor: sees nothing, and may
    /// only give it (or log out).
    Pending(Arc<SignedIn>),
}

/// What a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every customer and every domain.
    All,
    /// These customers' domains only.
    Customers(Vec<String>),
}

impl Caller {
    /// What the caller may read.
    pub fn scope(&self) -> Scope {
        match self {
            Caller::Open => Scope::All,
            Caller::User(u) => match u.role {
                Role::Admin | Role::Technician => Scope::All,
                Role::Viewer => Scope::Customers(u.customers.clone()),
            },
            Caller::SignedOut | Caller::Pending(_) => Scope::Customers(Vec::new()),
        }
    }

    /// Whether the caller may change checklists (admins and technicians; everyone without
    /// accounts).
    pub fn may_write(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::User(u) => matches!(u.role, Role::Admin | Role::Technician),
            Caller::SignedOut | Caller::Pending(_) => false,
        }
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::User(u) if u.role == Role::Admin)
    }

    /// The session's user, signed in or still to give its second factor.
    pub fn session_user(&self) -> Option<&SignedIn> {
        match self {
            Caller::User(u) | Caller::Pending(u) => Some(u),
            Caller::Open | Caller::SignedOut => None,
        }
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&SignedIn> {
        match self {
            Caller::User(u) => Some(u),
            Caller::Open | Caller::SignedOut | Caller::Pending(_) => None,
        }
    }
}

/// The handler's caller, from the request's extensions (put there by the sign-in middleware;
/// a route that takes a `Caller` is never reached without one).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| AppError::NotFound("This page".into()))
    }
}

/// Reads of customer data within a caller's [`Scope`].
pub(crate) struct Reads<'a> {
    store: &'a dyn Store,
    scope: Scope,
}

impl<'a> Reads<'a> {
    /// The scope's customers, by name.
    pub(crate) async fn customers(&self) -> Result<Vec<Customer>, AppError> {
        let all = self.store.customers().await?;
        Ok(match &self.scope {
            Scope::All => all,
            Scope::Customers(list) => all.into_iter().filter(|c| list.contains(&c.name)).collect(),
        })
    }

    /// Whether the scope is everything (the fleet's distributed runs, domains without a
    /// customer).
    pub(crate) fn is_all(&self) -> bool {
        self.scope == Scope::All
    }

    /// A page of the fleet within the scope (the query's own scope is replaced by the
    /// caller's); a customer filter outside the scope is not found, as a missing customer is.
    pub(crate) async fn fleet_page(&self, mut query: FleetQuery) -> Result<FleetPage, AppError> {
        if let Some(c) = &query.customer {
            let c = c.trim();
            let known = match &self.scope {
                Scope::All => match self.store.customer(c).await {
                    Ok(_) => true,
                    Err(StoreError::NotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                },
                Scope::Customers(list) => list.iter().any(|x| x == c),
            };
            if !known {
                return Err(AppError::NotFound(format!("The customer {c:?}")));
            }
        }
        query.scope = self.scope_list();
        Ok(self.store.fleet_page(&query).await?)
    }

    /// The report of a customer of the scope for the period from `since` (not found outside
    /// the scope, as a missing customer is).
    pub(crate) async fn customer_report(
        &self,
        customer: &str,
        since: Time,
        now: Time,
    ) -> Result<mailaudit_app::customer_report::CustomerReport, AppError> {
        let name = customer.trim();
        if let Scope::Customers(list) = &self.scope
            && !list.iter().any(|x| x == name)
        {
            return Err(AppError::NotFound(format!("The customer {name:?}")));
        }
        Ok(mailaudit_app::customer_report::customer_report(self.store, name, since, now).await?)
    }

    /// The progress over time of the scope's domains (or of one customer's, checked as
    /// [`Reads::fleet_page`] checks it) from `since`.
    pub(crate) async fn trend(
        &self,
        customer: Option<&str>,
        since: Time,
    ) -> Result<Vec<mailaudit_store::TrendPoint>, AppError> {
        let scope = self.scope_list();
        Ok(self
            .store
            .trend(scope.as_deref(), customer.map(str::trim), since)
            .await?)
    }

    /// Each of the scope's customers with its domains' totals, by name.
    pub(crate) async fn customer_lines(&self, now: Time) -> Result<Vec<CustomerLine>, AppError> {
        let scope = self.scope_list();
        Ok(self.store.customer_lines(scope.as_deref(), now).await?)
    }

    /// The scope as the store's fleet reads take it: None for every domain.
    fn scope_list(&self) -> Option<Vec<String>> {
        match &self.scope {
            Scope::All => None,
            Scope::Customers(list) => Some(list.clone()),
        }
    }

    /// A run's progress (fleet-wide: callers who see the whole fleet only; see the page).
    pub(crate) async fn run_progress(&self, id: i64) -> Result<RunProgress, AppError> {
        Ok(self.store.run_progress(id, mailaudit_store::now()).await?)
    }

    /// The distributed runs in progress, among the newest runs (fleet-wide: nothing for a
    /// viewer).
    pub(crate) async fn queued_runs(&self) -> Result<Vec<RunProgress>, AppError> {
        let mut out = Vec::new();
        if !self.is_all() {
            return Ok(out);
        }
        for run in self.store.runs(20).await? {
            if run.source == "distributed" && run.status == mailaudit_store::RunStatus::Running {
                out.push(
                    self.store
                        .run_progress(run.id, mailaudit_store::now())
                        .await?,
                );
            }
        }
        Ok(out)
    }

    /// A domain by the name in its URL (normalised as the CLI does: IDNA, lower case): 404 when
    /// the store knows nothing about it, and the same 404 when it is outside the scope (a
    /// viewer sees only domains in its customers' inventory).
    pub(crate) async fn domain(&self, raw: &str) -> Result<FoundDomain<'a>, AppError> {
        let name = normalize_domain(raw).unwrap_or_else(|_| {
            let t = raw.trim();
            t.strip_suffix('.').unwrap_or(t).to_ascii_lowercase()
        });
        let not_found = || AppError::NotFound(format!("The domain {name}"));
        let absent =
            |e: &StoreError| matches!(e, StoreError::NotFound { .. } | StoreError::Invalid(_));
        let entry = match self.store.domain(&name).await {
            Ok(e) => Some(e),
            Err(e) if absent(&e) => None,
            Err(e) => return Err(e.into()),
        };
        if let Scope::Customers(list) = &self.scope {
            let inside = entry
                .as_ref()
                .and_then(|e| e.customer.as_ref())
                .is_some_and(|c| list.contains(c));
            if !inside {
                return Err(not_found());
            }
        }
        let latest = match self.store.latest_result(&name).await {
            Ok(r) => r,
            Err(e) if absent(&e) => None,
            Err(e) => return Err(e.into()),
        };
        if entry.is_none() && latest.is_none() {
            return Err(not_found());
        }
        Ok(FoundDomain {
            name,
            entry,
            latest,
            store: self.store,
        })
    }

    /// A report's file as received, if the report is filed under a domain of the scope (else,
    /// as for a report that does not exist, not found).
    pub(crate) async fn report_raw(&self, id: i64) -> Result<Vec<u8>, AppError> {
        if !self.is_all() {
            let domain = self.store.report_domain(id).await?;
            if self.domain(&domain).await.is_err() {
                return Err(AppError::NotFound(format!("report {id}")));
            }
        }
        Ok(self.store.report_raw(id).await?)
    }
}

/// A domain the caller may see, as the store knows it: its inventory entry and latest stored
/// audit (at least one of the two exists).
pub struct FoundDomain<'a> {
    /// The name as stored.
    pub name: String,
    /// The inventory entry (None when the domain was removed but its audits are kept).
    pub entry: Option<DomainEntry>,
    /// The latest stored audit.
    pub latest: Option<StoredResult>,
    store: &'a dyn Store,
}

impl<'a> FoundDomain<'a> {
    /// The store, for reads (and the checklist's write) about this domain only.
    pub(crate) fn store(&self) -> &'a dyn Store {
        self.store
    }
}
