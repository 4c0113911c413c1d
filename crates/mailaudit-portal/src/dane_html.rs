//! DNSSEC and DANE as HTML: the domain page's section, also written into `mailaudit audit
//! --format html`'s report (one renderer for both).

use mailaudit_core::dane::DnssecSection;
use mailaudit_core::dns::Security;
use maud::{Markup, html};

/// A zone's DNSSEC status in words (`None`: the look-up failed).
pub fn security_word(s: Option<Security>) -> &'static str {
    match s {
        Some(Security::Secure) => "signed, validates",
        Some(Security::Insecure) => "not signed",
        Some(Security::Bogus) => "bogus (validation fails)",
        None => "look-up failed",
    }
}

/// The "DNSSEC and DANE" section: the domain's zone, then each MX host's zone and TLSA
/// records (`section.dnssec`, rows `tr.mx-dane[data-host]`).
pub fn section(d: &DnssecSection) -> Markup {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    html! {
        section class="dnssec" {
            h2 { "DNSSEC and DANE" } "\n"
            p { "The domain's zone: " (security_word(d.domain)) "." } "\n"
            @if !d.mx.is_empty() {
                table class="dane" {
                    thead {
                        tr {
                            th { "MX host" } th { "Zone" } th { "TLSA records (_25._tcp)" }
                            th { "Usable for SMTP" } th { "Rollover" } th { "Matches the chain" }
                        }
                    }
                    tbody {
                        "\n"
                        @for m in &d.mx {
                            tr class="mx-dane" data-host=(m.host) {
                                td { (m.host) }
                                td { (security_word(m.security)) }
                                td {
                                    @if m.tlsa.is_empty() {
                                        span class="muted" { "none" }
                                    } @else {
                                        pre class="evidence" {
                                            @for t in &m.tlsa {
                                                (t.cert_usage) " " (t.selector) " "
                                                (t.matching_type) " " (t.cert_association_data) "\n"
                                            }
                                        }
                                    }
                                }
                                td { @if !m.tlsa.is_empty() { (yes_no(m.usable)) } }
                                td { @if !m.tlsa.is_empty() { (yes_no(m.rollover)) } }
                                td {
                                    @match m.chain_matches {
                                        Some(b) => (yes_no(b)),
                                        None => span class="muted" { "not probed" },
                                    }
                                }
                            }
                            "\n"
                        }
                    }
                }
            }
        }
        "\n"
    }
}
