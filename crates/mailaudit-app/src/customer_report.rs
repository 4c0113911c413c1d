//! The customer report ("security capability showcase"): what an MSP hands a customer for a
//! period: the posture now, what was found, what was fixed and when, what remains in priority
//! order, and the progress over the period. Read from the store through the core; the portal
//! renders it (`/customers/{name}/report`, `mailaudit report --customer`).

use mailaudit_core::checks::CheckId;
use mailaudit_core::finding::Finding;
use mailaudit_store::{
    FleetLine, FleetQuery, FleetSort, FleetTotals, ItemState, Store, StoreError, Time, TrendPoint,
};

use crate::stored::{history_entries, view_of};

/// Stored audits read per domain for the period's history (a year of weekly audits and more).
const HISTORY_READ: i64 = 120;

/// The most domains a report covers (a customer of more is refused with `Invalid`).
pub const MAX_DOMAINS: i64 = 5_000;

/// A finding the customer's domains have now, counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundNow {
    /// The check.
    pub id: CheckId,
    /// Its severity (from the catalogue).
    pub severity: mailaudit_core::checks::Severity,
    /// Its title.
    pub title: String,
    /// The domains that have it, by name.
    pub domains: Vec<String>,
}

/// A finding fixed in the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fixed {
    /// When the audit that no longer found it ran.
    pub at: Time,
    /// The domain.
    pub domain: String,
    /// The finding as it was before it was fixed.
    pub finding: Finding,
}

/// An open checklist item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remaining {
    /// Priority 1 (now) to 4 (when convenient).
    pub priority: u8,
    /// The domain.
    pub domain: String,
    /// The item's title.
    pub title: String,
    /// Since when it is open (its last change).
    pub since: Time,
    /// Past its due time.
    pub overdue: bool,
}

/// What the report says.
#[derive(Clone, Debug)]
pub struct CustomerReport {
    /// The customer.
    pub customer: String,
    /// The period: from.
    pub since: Time,
    /// To (when the report was made).
    pub now: Time,
    /// The customer's domains now, worst first.
    pub lines: Vec<FleetLine>,
    /// Their totals.
    pub totals: FleetTotals,
    /// The runs of the period, oldest first.
    pub trend: Vec<TrendPoint>,
    /// The findings of the latest audits, most severe first, then by the number of domains.
    pub found: Vec<FoundNow>,
    /// The findings fixed in the period, newest first.
    pub fixed: Vec<Fixed>,
    /// The checklist items still open, by priority then domain.
    pub remaining: Vec<Remaining>,
}

/// The report of `customer` for the period from `since` to `now`. `NotFound` for an unknown
/// customer.
pub async fn customer_report(
    store: &dyn Store,
    customer: &str,
    since: Time,
    now: Time,
) -> Result<CustomerReport, StoreError> {
    let customer = store.customer(customer).await?.name;
    let page = store
        .fleet_page(&FleetQuery {
            customer: Some(customer.clone()),
            sort: FleetSort::Worst,
            limit: MAX_DOMAINS + 1,
            now,
            ..FleetQuery::default()
        })
        .await?;
    if page.lines.len() as i64 > MAX_DOMAINS {
        return Err(StoreError::Invalid(format!(
            "{customer} has more than {MAX_DOMAINS} domains: a report covers at most that many"
        )));
    }
    let trend = store.trend(None, Some(&customer), since).await?;

    let mut found: Vec<FoundNow> = Vec::new();
    let mut fixed: Vec<Fixed> = Vec::new();
    let mut remaining: Vec<Remaining> = Vec::new();
    for line in &page.lines {
        let results = store.history(&line.name, HISTORY_READ).await?;
        if let Some(latest) = results.first()
            && let Ok(view) = view_of(latest)
        {
            for f in &view.findings {
                match found.iter_mut().find(|x| x.id == f.id) {
                    Some(x) => {
                        if !x.domains.contains(&line.name) {
                            x.domains.push(line.name.clone());
                        }
                    }
                    None => found.push(FoundNow {
                        id: f.id,
                        severity: f.severity,
                        title: f.title.clone(),
                        domains: vec![line.name.clone()],
                    }),
                }
            }
        }
        for entry in history_entries(&results) {
            if entry.audited_at < since {
                continue;
            }
            for f in entry.diff.map(|d| d.fixed).unwrap_or_default() {
                fixed.push(Fixed {
                    at: entry.audited_at,
                    domain: line.name.clone(),
                    finding: f,
                });
            }
        }
        for item in store.checklist(&line.name).await? {
            if item.state != ItemState::Open {
                continue;
            }
            let overdue = mailaudit_store::DUE_DAYS
                .iter()
                .any(|(p, days)| *p == item.priority && item.updated_at < now - days * 86_400);
            remaining.push(Remaining {
                priority: item.priority,
                domain: line.name.clone(),
                title: item.title,
                since: item.updated_at,
                overdue,
            });
        }
    }
    found.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.domains.len().cmp(&a.domains.len()))
            .then(a.id.as_str().cmp(b.id.as_str()))
    });
    fixed.sort_by(|a, b| b.at.cmp(&a.at).then(a.domain.cmp(&b.domain)));
    remaining
        .sort_by(|a, b| (a.priority, &a.domain, &a.title).cmp(&(b.priority, &b.domain, &b.title)));
    Ok(CustomerReport {
        customer,
        since,
        now,
        lines: page.lines,
        totals: page.totals,
        trend,
        found,
        fixed,
        remaining,
    })
}

/// The MSP's name and logo on its customer reports, configured once (`mailaudit branding`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branding {
    /// The MSP's name.
    pub name: Option<String>,
    /// Its logo as a `data:` URL (PNG, JPEG or SVG).
    pub logo: Option<String>,
}

/// The setting holding the MSP's name.
pub const NAME_SETTING: &str = "msp_name";
/// The setting holding the MSP's logo (a `data:` URL).
pub const LOGO_SETTING: &str = "msp_logo";
/// The largest logo accepted, in bytes.
pub const MAX_LOGO: usize = 256 * 1024;

/// The branding stored.
pub async fn branding(store: &dyn Store) -> Result<Branding, StoreError> {
    Ok(Branding {
        name: store.setting(NAME_SETTING).await?.filter(|s| !s.is_empty()),
        logo: store.setting(LOGO_SETTING).await?.filter(|s| !s.is_empty()),
    })
}

/// A logo file as a `data:` URL: PNG, JPEG or SVG (by their content), at most [`MAX_LOGO`]
/// bytes; anything else is `Invalid` saying why.
pub fn logo_data_url(bytes: &[u8]) -> Result<String, StoreError> {
    use base64::Engine;
    if bytes.len() > MAX_LOGO {
        return Err(StoreError::Invalid(format!(
            "the logo is {} bytes: at most {MAX_LOGO} are accepted",
            bytes.len()
        )));
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if head.contains("<svg") {
        "image/svg+xml"
    } else {
        return Err(StoreError::Invalid(
            "the logo is not a PNG, JPEG or SVG image".into(),
        ));
    };
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logos_by_content() {
        let png = b"\x89PNG\r\n\x1a\n0000";
        assert!(
            logo_data_url(png)
                .unwrap()
                .starts_with("data:image/png;base64,")
        );
        assert!(
            logo_data_url(b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>")
                .unwrap()
                .starts_with("data:image/svg+xml;base64,")
        );
        assert!(
            logo_data_url(&[0xFF, 0xD8, 0xFF, 0xE0])
                .unwrap()
                .starts_with("data:image/jpeg")
        );
        assert!(logo_data_url(b"GIF89a").is_err());
        assert!(logo_data_url(&vec![0u8; MAX_LOGO + 1]).is_err());
    }
}
