//! A shipped table of known sending services, used to name the sources seen in DMARC aggregate
//! reports ("this IP is Mailchimp") and to tell a forgotten service from spoofing.
//!
//! A source is matched on the reverse DNS (PTR) name of its IP, looked up by the caller, and on
//! the DKIM signing domains (`d=`) seen on its messages. Both are suffix matches on a label
//! boundary: the entry `mcsv.net` matches `mail123.suw13.mcsv.net` and `mcsv.net`, never
//! `notmcsv.net`. Most entries are an organizational domain, which is what the issue asks for;
//! a few are narrower on purpose (Microsoft 365's `outbound.protection.outlook.com`, not the
//! consumer `outlook.com`).
//!
//! Only entries whose PTR or DKIM naming is well known and stable are listed. The table is
//! deliberately short: a wrong name on a source is worse than none, since the readiness verdict
//! treats a known service that fails alignment as a forgotten service, not spoofing.
//!
//! Checked on 2026-11-28 against public setup guides (the providers' own where the search
//! found them): the default return-path domains of Amazon SES (a subdomain of `amazonses.com`,
//! AWS's SES guide), SparkPost (`sparkpostmail.com`, its custom bounce domain article), Postmark
//! (`pm.mtasv.net`, its custom Return-Path announcement), Mailchimp (subdomains of `mcsv.net`,
//! `mcdlv.net` or `rsgsv.net`), HubSpot (a subdomain of `hubspotemail.net`), SendGrid (signing
//! as `sendgrid.net` until domain authentication), Mailgun (`mailgun.org`), Zendesk (the
//! `zendesk1`/`zendesk2` DKIM CNAMEs) and Brevo (`sender-sib.com`); the fix texts follow the same
//! guides. The PTR suffixes are the providers' well-known host names and were not each checked.
//!
//! The PTR name is not forward-confirmed here (that needs DNS); a caller that can should pass
//! only forward-confirmed names. DKIM domains should be those of signatures that verified.

use serde::Serialize;

/// What kind of service a [`Sender`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Email service provider: marketing or transactional bulk mail.
    Esp,
    /// A hosted mailbox platform (the tenant's own mail).
    Mailbox,
    /// CRM or marketing-automation platform.
    Crm,
    /// Help desk / ticketing platform.
    Ticketing,
}

/// One known sending service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sender {
    /// Display name, also used as the source key in an analysis.
    pub name: &'static str,
    /// What kind of service it is.
    pub kind: Kind,
    /// Reverse DNS suffixes of its outbound IPs.
    pub ptr_suffixes: &'static [&'static str],
    /// DKIM `d=` suffixes it signs with when the customer has not set up their own domain.
    pub dkim_suffixes: &'static [&'static str],
    /// Return-path (RFC5321.MailFrom) domain suffixes of its bounce handling when the customer
    /// has not set up a custom one: what the reports' SPF results name. Empty for the mailbox
    /// platforms, whose return-path is the customer's own domain.
    pub return_path_suffixes: &'static [&'static str],
    /// How to make its mail align with the customer's domain.
    pub fix: &'static str,
}

/// The shipped table, first match wins.
///
/// | Service | PTR suffixes | DKIM `d=` suffixes | Return-path suffixes |
/// |---|---|---|---|
/// | Microsoft 365 | `outbound.protection.outlook.com`, `prod.outlook.com` | `onmicrosoft.com` | |
/// | Google Workspace | `google.com`, `googlemail.com` | `gappssmtp.com` | |
/// | Mailchimp / Mandrill | `mcsv.net`, `mcdlv.net`, `rsgsv.net`, `mandrillapp.com` | `mcsv.net`, `mandrillapp.com` | `mcsv.net`, `mcdlv.net`, `rsgsv.net`, `mandrillapp.com` |
/// | SendGrid | `sendgrid.net` | `sendgrid.net` | `sendgrid.net` |
/// | Amazon SES | `amazonses.com` | `amazonses.com` | `amazonses.com` |
/// | Mailgun | `mailgun.net`, `mailgun.org` | `mailgun.org` | `mailgun.org`, `mailgun.net` |
/// | Postmark | `mtasv.net` | `mtasv.net` | `mtasv.net` |
/// | SparkPost | `sparkpostmail.com` | `sparkpostmail.com` | `sparkpostmail.com` |
/// | Salesforce | `salesforce.com`, `exacttarget.com` | `exacttarget.com` | `exacttarget.com`, `salesforce.com` |
/// | HubSpot | `hubspotemail.net` | `hubspotemail.net` | `hubspotemail.net` |
/// | Zendesk | `zendesk.com` | `zendesk.com` | `zendesk.com` |
/// | Brevo (Sendinblue) | `sendinblue.com`, `brevo.com` | `sendinblue.com`, `brevo.com` | `sender-sib.com`, `sendinblue.com`, `brevo.com` |
/// | Constant Contact | `constantcontact.com`, `ccsend.com` | `ccsend.com` | `constantcontact.com`, `ccsend.com` |
///
/// Microsoft Dynamics and Freshdesk are left out: their outbound naming could not be confirmed.
pub const SENDERS: &[Sender] = &[
    Sender {
        name: "Microsoft 365",
        kind: Kind::Mailbox,
        ptr_suffixes: &["outbound.protection.outlook.com", "prod.outlook.com"],
        dkim_suffixes: &["onmicrosoft.com"],
        return_path_suffixes: &[],
        fix: "enable DKIM signing for the domain in Microsoft Defender (Email authentication \
              settings): publish the selector1/selector2._domainkey CNAMEs it shows, then enable",
    },
    Sender {
        name: "Google Workspace",
        kind: Kind::Mailbox,
        ptr_suffixes: &["google.com", "googlemail.com"],
        dkim_suffixes: &["gappssmtp.com"],
        return_path_suffixes: &[],
        fix: "generate a DKIM key in the Google Admin console (Gmail > Authenticate email), \
              publish the google._domainkey TXT record and start authentication",
    },
    Sender {
        name: "Mailchimp",
        kind: Kind::Esp,
        ptr_suffixes: &["mcsv.net", "mcdlv.net", "rsgsv.net", "mandrillapp.com"],
        dkim_suffixes: &["mcsv.net", "mandrillapp.com"],
        return_path_suffixes: &["mcsv.net", "mcdlv.net", "rsgsv.net", "mandrillapp.com"],
        fix: "authenticate the domain in Mailchimp (Domains > Authenticate) and publish the \
              DKIM CNAMEs it lists, so it signs with the domain",
    },
    Sender {
        name: "SendGrid",
        kind: Kind::Esp,
        ptr_suffixes: &["sendgrid.net"],
        dkim_suffixes: &["sendgrid.net"],
        return_path_suffixes: &["sendgrid.net"],
        fix: "set up domain authentication in SendGrid and publish the CNAMEs it lists \
              (s1/s2._domainkey and the em return-path)",
    },
    Sender {
        name: "Amazon SES",
        kind: Kind::Esp,
        ptr_suffixes: &["amazonses.com"],
        dkim_suffixes: &["amazonses.com"],
        return_path_suffixes: &["amazonses.com"],
        fix: "verify the domain in SES with Easy DKIM (publish its three CNAMEs); for aligned SPF \
              also set a custom MAIL FROM subdomain",
    },
    Sender {
        name: "Mailgun",
        kind: Kind::Esp,
        ptr_suffixes: &["mailgun.net", "mailgun.org"],
        dkim_suffixes: &["mailgun.org"],
        return_path_suffixes: &["mailgun.org", "mailgun.net"],
        fix: "add the domain in Mailgun and publish the DKIM TXT record and the return-path \
              CNAME it lists",
    },
    Sender {
        name: "Postmark",
        kind: Kind::Esp,
        ptr_suffixes: &["mtasv.net"],
        dkim_suffixes: &["mtasv.net"],
        return_path_suffixes: &["mtasv.net"],
        fix: "verify the sender domain in Postmark: publish its DKIM TXT record and the \
              pm-bounces return-path CNAME",
    },
    Sender {
        name: "SparkPost",
        kind: Kind::Esp,
        ptr_suffixes: &["sparkpostmail.com"],
        dkim_suffixes: &["sparkpostmail.com"],
        return_path_suffixes: &["sparkpostmail.com"],
        fix: "add the sending domain in SparkPost and publish the DKIM TXT record it lists; for \
              aligned SPF also add a bounce domain (a subdomain CNAME to sparkpostmail.com)",
    },
    Sender {
        name: "Salesforce",
        kind: Kind::Crm,
        ptr_suffixes: &["salesforce.com", "exacttarget.com"],
        dkim_suffixes: &["exacttarget.com"],
        return_path_suffixes: &["exacttarget.com", "salesforce.com"],
        fix: "create a DKIM key for the domain in Salesforce (Setup > DKIM Keys, or Marketing \
              Cloud sender authentication) and publish the CNAMEs it lists",
    },
    Sender {
        name: "HubSpot",
        kind: Kind::Crm,
        ptr_suffixes: &["hubspotemail.net"],
        dkim_suffixes: &["hubspotemail.net"],
        return_path_suffixes: &["hubspotemail.net"],
        fix: "connect the email sending domain in HubSpot and publish the DKIM CNAMEs it lists",
    },
    Sender {
        name: "Zendesk",
        kind: Kind::Ticketing,
        ptr_suffixes: &["zendesk.com"],
        dkim_suffixes: &["zendesk.com"],
        return_path_suffixes: &["zendesk.com"],
        fix: "enable DKIM for the support address domain in Zendesk and publish the two \
              zendesk1/zendesk2._domainkey CNAMEs",
    },
    Sender {
        name: "Brevo",
        kind: Kind::Esp,
        ptr_suffixes: &["sendinblue.com", "brevo.com"],
        dkim_suffixes: &["sendinblue.com", "brevo.com"],
        return_path_suffixes: &["sender-sib.com", "sendinblue.com", "brevo.com"],
        fix: "authenticate the domain in Brevo (Senders, domains) and publish the DKIM record it \
              lists",
    },
    Sender {
        name: "Constant Contact",
        kind: Kind::Esp,
        ptr_suffixes: &["constantcontact.com", "ccsend.com"],
        dkim_suffixes: &["ccsend.com"],
        return_path_suffixes: &["constantcontact.com", "ccsend.com"],
        fix: "turn on self-publishing of DKIM for the domain in Constant Contact and publish the \
              CNAMEs it lists",
    },
];

/// Lower-cases a DNS name and drops a trailing dot, or `None` when it is empty.
pub(crate) fn normalize(name: &str) -> Option<String> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    (!n.is_empty()).then_some(n)
}

/// True when `name` is `suffix` or ends with `.suffix` (both already lower-case).
fn has_suffix(name: &str, suffix: &str) -> bool {
    name == suffix
        || (name.len() > suffix.len()
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
}

/// The known service a source belongs to: its PTR name is matched first, then each DKIM
/// signing domain, then each return-path domain (the reports' SPF domains), against
/// [`SENDERS`] in order. The return-path names the service when reverse DNS is not available
/// and the service did not sign (a forgotten service's typical case).
pub fn classify(
    ptr: Option<&str>,
    dkim_domains: &[&str],
    return_path_domains: &[&str],
) -> Option<&'static Sender> {
    if let Some(p) = ptr.and_then(normalize)
        && let Some(s) = SENDERS
            .iter()
            .find(|s| s.ptr_suffixes.iter().any(|x| has_suffix(&p, x)))
    {
        return Some(s);
    }
    dkim_domains
        .iter()
        .filter_map(|d| normalize(d))
        .find_map(|d| {
            SENDERS
                .iter()
                .find(|s| s.dkim_suffixes.iter().any(|x| has_suffix(&d, x)))
        })
        .or_else(|| {
            return_path_domains
                .iter()
                .filter_map(|d| normalize(d))
                .find_map(|d| {
                    SENDERS
                        .iter()
                        .find(|s| s.return_path_suffixes.iter().any(|x| has_suffix(&d, x)))
                })
        })
}

/// The organizational domain of a DNS name (RFC 7489 §3.2): one label more than its public
/// suffix, from the ICANN section of the Public Suffix List, so that the hosts of a provider
/// (`*.compute-1.amazonaws.com`, a private-section suffix) share one key. A name that is
/// itself a public suffix, or a single label, is its own. `None` for an empty name. Used to
/// group a source's IPs, never for DMARC alignment.
pub fn org_domain(name: &str) -> Option<String> {
    let n = normalize(name)?;
    let labels: Vec<&str> = n.split('.').filter(|l| !l.is_empty()).collect();
    if labels.is_empty() {
        return None;
    }
    let name = labels.join(".");
    // Below a private-section suffix, the ICANN suffix is looked up from its parent.
    let mut tail = name.as_str();
    let suffix_labels = loop {
        let Some(suffix) = psl::suffix(tail.as_bytes()) else {
            break 1;
        };
        let private = suffix.typ() == Some(psl::Type::Private);
        let suffix = std::str::from_utf8(suffix.as_bytes()).unwrap_or(tail);
        match suffix.split_once('.') {
            Some((_, parent)) if private => tail = parent,
            _ => break suffix.split('.').count(),
        }
    };
    let take = (suffix_labels + 1).min(labels.len());
    Some(labels[labels.len() - take..].join("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classifies_by_ptr_and_dkim() {
        let cases: &[(Option<&str>, &[&str], Option<&str>)] = &[
            (
                Some("mail-db5eur03on2100.outbound.protection.outlook.com."),
                &[],
                Some("Microsoft 365"),
            ),
            (None, &["contoso.onmicrosoft.com"], Some("Microsoft 365")),
            (
                Some("mail-wr1-f54.google.com"),
                &[],
                Some("Google Workspace"),
            ),
            (Some("mail135-4.atl141.MCSV.net"), &[], Some("Mailchimp")),
            (
                Some("mail.example.com"),
                &["mandrillapp.com"],
                Some("Mailchimp"),
            ),
            (
                Some("a8-30.smtp-out.amazonses.com"),
                &[],
                Some("Amazon SES"),
            ),
            (Some("o1.ptr123.sendgrid.net"), &[], Some("SendGrid")),
            (Some("notmcsv.net"), &[], None),
            (Some("outlook.com"), &[], None),
            (Some("mail.example.com"), &["example.com"], None),
            (None, &[], None),
            (Some(""), &[""], None),
        ];
        for (ptr, dkim, want) in cases {
            assert_eq!(
                classify(*ptr, dkim, &[]).map(|s| s.name),
                *want,
                "{ptr:?} {dkim:?}"
            );
        }
    }

    #[test]
    fn classifies_by_return_path_last() {
        /// (PTR, DKIM domains, return-path domains, the service named)
        type Case<'a> = (
            Option<&'a str>,
            &'a [&'a str],
            &'a [&'a str],
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            // No reverse DNS, no signature of its own: the bounce domain names it.
            (
                None,
                &[],
                &["bounce-mc.us5_123.mcsv.net"],
                Some("Mailchimp"),
            ),
            (None, &[], &["us-east-1.amazonses.com"], Some("Amazon SES")),
            (None, &[], &["sender-sib.com"], Some("Brevo")),
            (None, &[], &["mail155.suw11.mcdlv.net"], Some("Mailchimp")),
            (None, &[], &["pm.mtasv.net"], Some("Postmark")),
            (None, &[], &["sparkpostmail.com"], Some("SparkPost")),
            (None, &[], &["bounces.hubspotemail.net"], Some("HubSpot")),
            // The customer's own return-path names nothing.
            (None, &[], &["contoso.example"], None),
            // PTR and DKIM come first.
            (
                Some("o1.ptr123.sendgrid.net"),
                &[],
                &["mcsv.net"],
                Some("SendGrid"),
            ),
            (None, &["sendgrid.net"], &["mcsv.net"], Some("SendGrid")),
        ];
        for (ptr, dkim, rp, want) in cases {
            assert_eq!(
                classify(*ptr, dkim, rp).map(|s| s.name),
                *want,
                "{ptr:?} {dkim:?} {rp:?}"
            );
        }
    }

    #[test]
    fn org_domains() {
        for (name, want) in [
            ("mail.example.com.", Some("example.com")),
            ("smtp.mail.example.co.uk", Some("example.co.uk")),
            ("localhost", Some("localhost")),
            ("", None),
            (".", None),
            ("a..b.com", Some("b.com")),
            // Public Suffix List: ICANN suffixes of two and three labels.
            ("mx.example.com.au", Some("example.com.au")),
            ("host.city.kawasaki.jp", Some("city.kawasaki.jp")),
            ("a.b.example.kawasaki.jp", Some("b.example.kawasaki.jp")),
            ("relay.example.co.uk", Some("example.co.uk")),
            // A private-section suffix: the provider's hosts share its domain.
            ("ec2-3-4-5-6.compute-1.amazonaws.com", Some("amazonaws.com")),
            ("user.github.io", Some("github.io")),
            ("com", Some("com")),
            ("example.unknowntld", Some("example.unknowntld")),
        ] {
            assert_eq!(org_domain(name).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn every_entry_is_lower_case_and_documented() {
        for s in SENDERS {
            for x in s
                .ptr_suffixes
                .iter()
                .chain(s.dkim_suffixes)
                .chain(s.return_path_suffixes)
            {
                assert_eq!(*x, x.to_ascii_lowercase());
                assert!(!x.starts_with('.') && !x.ends_with('.'));
            }
            assert!(!s.fix.is_empty());
        }
    }

    proptest! {
        #[test]
        fn never_panics(ptr in proptest::option::of(".{0,40}"), d in proptest::collection::vec(".{0,30}", 0..3)) {
            let dk: Vec<&str> = d.iter().map(String::as_str).collect();
            let _ = classify(ptr.as_deref(), &dk, &dk);
            if let Some(p) = &ptr { let _ = org_domain(p); }
        }
    }
}
