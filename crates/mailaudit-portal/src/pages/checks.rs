//! `/checks` and `/checks/{ID}`: the check catalogue (`mailaudit_core::checks::CATALOGUE`), as
//! `mailaudit checks` shows it: what it checks, why it matters, how to fix it in Microsoft 365,
//! references; and which domains have the finding in their latest audit.

use std::fmt::Write as _;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Html;
use mailaudit_core::checks::{CATALOGUE, CheckId};

use super::AppError;
use crate::Portal;
use crate::html::{Esc, check_href, domain_href, layout, markdown, reference};

/// `GET /checks`: every check, in catalogue order.
pub async fn index() -> Html<String> {
    let mut b = String::from(
        "<h1>Checks</h1>\n<table class=\"catalogue\"><thead><tr><th>ID</th><th>Code</th>\
         <th>Area</th><th>Severity</th><th>Title</th></tr></thead><tbody>\n",
    );
    for c in CATALOGUE {
        let id = c.id.as_str();
        let _ = writeln!(
            b,
            "<tr><td><a href=\"{}\">{id}</a></td><td><code>{}</code></td><td>{}</td>\
             <td><span class=\"sev sev-{sev}\">{sev}</span></td><td>{}</td></tr>",
            check_href(id),
            Esc(c.code),
            c.area,
            Esc(c.title),
            sev = c.severity,
        );
    }
    b.push_str("</tbody></table>\n");
    Html(layout("Checks", &b))
}

/// `GET /checks/{ID}` (the ID or the short code, any case).
pub async fn page(
    State(p): State<Portal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Html<String>, AppError> {
    let raw = id.map(|Path(s)| s).unwrap_or_default();
    let Ok(id) = raw.parse::<CheckId>() else {
        return Err(AppError::NotFound(format!("The check {raw:?}")));
    };
    let c = id.info();
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1 id=\"check-id\">{}</h1>\n<p class=\"lead\" id=\"check-title\">{}</p>\n\
         <p class=\"muted\">Code <code>{}</code> · area {} · severity \
         <span class=\"sev sev-{sev}\">{sev}</span> · {}</p>",
        id.as_str(),
        Esc(c.title),
        Esc(c.code),
        c.area,
        Esc(c.source().heading()),
        sev = c.severity,
    );
    let _ = writeln!(
        b,
        "<section id=\"what\"><h2>What it checks</h2>\n{}</section>\n\
         <section id=\"why\"><h2>Why it matters</h2>\n{}</section>\n\
         <section id=\"fix\"><h2>How to fix it in Microsoft 365</h2>\n{}</section>\n\
         <section id=\"references\"><h2>References</h2>\n<ul>",
        markdown(c.what),
        markdown(c.why),
        markdown(c.fix)
    );
    for r in c.references {
        let _ = writeln!(b, "<li>{}</li>", reference(r));
    }
    b.push_str("</ul></section>\n");
    let domains = p.store.domains_with_finding(id.as_str()).await?;
    let _ = writeln!(
        b,
        "<section id=\"affected\"><h2>Domains with this finding <span class=\"muted\">{}</span></h2>",
        domains.len()
    );
    if domains.is_empty() {
        b.push_str("<p>None in their latest audit.</p>");
    } else {
        b.push_str("<ul class=\"inline\">");
        for d in &domains {
            let _ = write!(
                b,
                "<li><a href=\"{}\">{}</a></li>",
                domain_href(d, ""),
                Esc(d)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>\n");
    Ok(Html(layout(id.as_str(), &b)))
}
