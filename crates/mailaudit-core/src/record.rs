//! A DNS record to publish, as an administrator enters it: a zone-file line
//! (`_dmarc.contoso.com.  3600  IN  TXT  "v=DMARC1; p=none"`) for a zone file or a DNS host that
//! imports one, and host / type / value (`_dmarc` / `TXT` / `v=DMARC1; p=none`) for the form of a
//! DNS provider's panel.
//!
//! [`DnsRecord`] is the one structure behind both: the guide's `dns` blocks are written from it
//! ([`DnsRecord::zone_line`]) and carry it, and the findings' fixes that are records expose it
//! ([`from_fix`], the `fix_records` of a finding in JSON). A TXT value longer than one
//! character-string (255 octets, RFC 1035 §3.3) is split in the zone-file line; a panel takes
//! the whole value and splits it itself, or asks for the strings ([`DnsRecord::strings`]).

use serde::{Deserialize, Serialize};

/// The most octets of one TXT character-string (RFC 1035 §3.3: a length octet, then the text).
pub const MAX_TXT_STRING: usize = 255;

/// One record to publish.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnsRecord {
    /// The owner name (fully qualified), lower-case, without the trailing dot.
    pub name: String,
    /// The name as a DNS panel of [`DnsRecord::zone`] asks for it: relative to the zone (`@`
    /// for the zone itself, `_dmarc`, `selector1._domainkey`), or the full name with a trailing
    /// dot when the record lies outside the zone.
    pub host: String,
    /// The domain whose DNS the record is entered in (the audited domain, or an external
    /// report destination for a DMARC report authorisation).
    pub zone: String,
    /// `TXT`, `CNAME` or `MX`.
    #[serde(rename = "type")]
    pub rtype: String,
    /// The value as a panel takes it: for TXT the text itself (unquoted, not split), for a
    /// CNAME the target without the trailing dot, for MX `preference host` (`0 .` is a null MX).
    pub value: String,
    /// For a TXT value over [`MAX_TXT_STRING`] octets, the character-strings it is split into
    /// (as the zone-file line writes them); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strings: Vec<String>,
}

impl DnsRecord {
    /// A record of type `rtype` at `name`, entered in `zone`'s DNS.
    pub fn new(zone: &str, name: &str, rtype: &str, value: &str) -> DnsRecord {
        let name = norm(name);
        let zone = norm(zone);
        let rtype = rtype.trim().to_ascii_uppercase();
        let value = match rtype.as_str() {
            "TXT" => value.to_string(),
            "CNAME" => norm_target(value),
            _ => value.trim().to_string(),
        };
        let strings = if rtype == "TXT" && value.len() > MAX_TXT_STRING {
            txt_strings(&value)
        } else {
            Vec::new()
        };
        DnsRecord {
            host: relative(&name, &zone),
            name,
            zone,
            rtype,
            value,
            strings,
        }
    }

    /// A TXT record with the text `text`.
    pub fn txt(zone: &str, name: &str, text: &str) -> DnsRecord {
        DnsRecord::new(zone, name, "TXT", text)
    }

    /// A CNAME record to `target`.
    pub fn cname(zone: &str, name: &str, target: &str) -> DnsRecord {
        DnsRecord::new(zone, name, "CNAME", target)
    }

    /// The record as one zone-file line (`name.  3600  IN  TYPE  rdata`): TXT text quoted and
    /// split into character-strings, a CNAME target with its trailing dot.
    pub fn zone_line(&self) -> String {
        let rdata = match self.rtype.as_str() {
            "TXT" => txt_rdata(&self.value),
            "CNAME" => format!("{}.", self.value),
            _ => self.value.clone(),
        };
        format!("{}.  3600  IN  {}  {rdata}", self.name, self.rtype)
    }
}

/// Lower case, without the trailing dot: [`crate::name::normalize_name`].
use crate::name::normalize_name as norm;

fn norm_target(target: &str) -> String {
    let t = target.trim();
    t.strip_suffix('.').unwrap_or(t).to_string()
}

/// `name` relative to `zone`: `@`, the labels before the zone, or `name.` when outside it.
fn relative(name: &str, zone: &str) -> String {
    if zone.is_empty() {
        return format!("{name}.");
    }
    if name == zone {
        return "@".into();
    }
    match name.strip_suffix(zone).and_then(|p| p.strip_suffix('.')) {
        Some(prefix) if !prefix.is_empty() => prefix.to_string(),
        _ => format!("{name}."),
    }
}

/// `text` cut into character-strings of at most [`MAX_TXT_STRING`] octets, never inside a
/// character.
pub fn txt_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_TXT_STRING {
            out.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || out.is_empty() {
        out.push(chunk);
    }
    out
}

/// The TXT rdata in zone-file presentation form: double-quoted character-strings of at most
/// 255 octets each ([`txt_strings`]), `"` and `\` escaped, control characters written `\DDD`.
///
/// RFC 1035 §3.3.14: "TXT-DATA: One or more <character-string>s"; §3.3: a <character-string>
/// is "a single length octet followed by that number of characters".
pub fn txt_rdata(text: &str) -> String {
    txt_strings(text)
        .iter()
        .map(|s| {
            let mut q = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => q.push_str("\\\""),
                    '\\' => q.push_str("\\\\"),
                    c if c.is_control() && c.is_ascii() => {
                        q.push_str(&format!("\\{:03}", c as u32))
                    }
                    c => q.push(c),
                }
            }
            q.push('"');
            q
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads back one zone-file line in the shape [`DnsRecord::zone_line`] writes
/// (`name TTL IN TYPE rdata`): `(name without the trailing dot, TYPE, value)`, where a TXT value
/// is its character-strings decoded and joined and other rdata is as written. `None` for
/// anything else.
pub fn parse_zone_line(line: &str) -> Option<(String, String, String)> {
    let mut rest = line.trim();
    let mut fields = Vec::new();
    for _ in 0..4 {
        let end = rest.find(char::is_whitespace)?;
        fields.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    let (name, class, rtype) = (fields[0], fields[2], fields[3].to_ascii_uppercase());
    if !class.eq_ignore_ascii_case("IN") || fields[1].parse::<u32>().is_err() || rest.is_empty() {
        return None;
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let value = if rtype == "TXT" {
        decode_txt(rest)?
    } else {
        rest.to_string()
    };
    Some((name, rtype, value))
}

/// Decodes `"a" "b"` (with `\"`, `\\` and `\DDD` escapes) into `ab`.
fn decode_txt(rdata: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = rdata.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => return Some(out),
            Some('"') => {}
            Some(_) => return None,
        }
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => {
                    let c = chars.next()?;
                    if c.is_ascii_digit() {
                        let mut n = c.to_digit(10)?;
                        for _ in 0..2 {
                            n = n * 10 + chars.next()?.to_digit(10)?;
                        }
                        out.push(char::from_u32(n).filter(|_| n < 128)?);
                    } else {
                        out.push(c);
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// The records of a finding's fix for `domain`, when the fix is nothing but records: an SPF
/// record (`v=spf1 …`, published at the domain), or one record a line in the short zone form
/// the audit writes (`_dmarc.contoso.com. TXT "v=DMARC1; …"`, `name. CNAME target.`,
/// `contoso.com. MX 0 .`; a TTL and the class `IN` are accepted too). Empty when any line is
/// something else (a command, a sentence, a placeholder): such a fix is not a record to enter.
pub fn from_fix(domain: &str, fix: &str) -> Vec<DnsRecord> {
    let fix = fix.trim();
    if fix.is_empty() {
        return Vec::new();
    }
    let zone = norm(domain);
    if !fix.contains('\n')
        && fix
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("v=spf1 "))
    {
        return vec![DnsRecord::txt(&zone, &zone, fix)];
    }
    let mut out = Vec::new();
    for line in fix.lines() {
        match fix_line(&zone, line) {
            Some(r) => out.push(r),
            None => return Vec::new(),
        }
    }
    out
}

/// Sets the [`crate::Finding::fix_records`] of each of `findings` of `domain` from its fix.
pub fn attach_to_findings(domain: &str, findings: &mut [crate::Finding]) {
    for f in findings {
        f.fix_records = from_fix(domain, &f.fix);
    }
}

/// One line of a fix: `name. [TTL] [IN] TYPE rdata`.
fn fix_line(zone: &str, line: &str) -> Option<DnsRecord> {
    let line = line.trim();
    let (name, mut rest) = line.split_once(char::is_whitespace)?;
    if !name.ends_with('.') || name.contains(['<', '>', '"']) {
        return None;
    }
    fn next(rest: &mut &str) -> Option<String> {
        let r = rest.trim_start();
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        *rest = &r[end..];
        (end > 0).then(|| r[..end].to_string())
    }
    let mut word = next(&mut rest)?;
    if word.parse::<u32>().is_ok() {
        word = next(&mut rest)?;
    }
    if word.eq_ignore_ascii_case("IN") {
        word = next(&mut rest)?;
    }
    let rtype = word.to_ascii_uppercase();
    let rdata = rest.trim();
    // A placeholder (`<label>`) is not a value to enter.
    if rdata.is_empty() || (rtype != "TXT" && rdata.contains(['<', '>'])) {
        return None;
    }
    let value = match rtype.as_str() {
        "TXT" => decode_txt(rdata)?,
        "CNAME" if !rdata.contains(char::is_whitespace) => rdata.to_string(),
        "MX" => {
            let (pref, host) = rdata.split_once(char::is_whitespace)?;
            pref.parse::<u16>().ok()?;
            if host.trim().contains(char::is_whitespace) {
                return None;
            }
            format!("{pref} {}", host.trim())
        }
        _ => return None,
    };
    let name = norm(name);
    // Entered in the audited domain's DNS when it lies there; otherwise (the organizational
    // domain's `_dmarc`, an external report destination) in the DNS of the name's parent.
    let zone = if name == zone || name.ends_with(&format!(".{zone}")) {
        zone.to_string()
    } else {
        name.strip_prefix("_dmarc.").unwrap_or(&name).to_string()
    };
    Some(DnsRecord::new(&zone, &name, &rtype, &value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_relative_to_the_zone() {
        let z = "contoso.com";
        for (name, host) in [
            ("contoso.com", "@"),
            ("_dmarc.contoso.com", "_dmarc"),
            ("selector1._domainkey.contoso.com.", "selector1._domainkey"),
            ("*._domainkey.contoso.com", "*._domainkey"),
            ("Contoso.COM.", "@"),
            ("notcontoso.com", "notcontoso.com."),
            (
                "contoso.com._report._dmarc.msp.example",
                "contoso.com._report._dmarc.msp.example.",
            ),
        ] {
            assert_eq!(DnsRecord::txt(z, name, "x").host, host, "{name}");
        }
        let r = DnsRecord::txt(
            "msp.example",
            "contoso.com._report._dmarc.msp.example",
            "v=DMARC1",
        );
        assert_eq!(r.host, "contoso.com._report._dmarc");
    }

    #[test]
    fn zone_lines_and_panel_values_agree() {
        let cname = DnsRecord::cname(
            "contoso.com",
            "selector1._domainkey.contoso.com",
            "selector1-contoso-com._domainkey.contoso.onmicrosoft.com.",
        );
        assert_eq!(
            cname.value,
            "selector1-contoso-com._domainkey.contoso.onmicrosoft.com"
        );
        assert_eq!(
            cname.zone_line(),
            "selector1._domainkey.contoso.com.  3600  IN  CNAME  selector1-contoso-com._domainkey.contoso.onmicrosoft.com."
        );
        let mx = DnsRecord::new("contoso.com", "contoso.com", "MX", "0 .");
        assert_eq!(mx.zone_line(), "contoso.com.  3600  IN  MX  0 .");
        let txt = DnsRecord::txt(
            "contoso.com",
            "_dmarc.contoso.com",
            "v=DMARC1; p=none; a\"b",
        );
        assert_eq!(
            txt.zone_line(),
            "_dmarc.contoso.com.  3600  IN  TXT  \"v=DMARC1; p=none; a\\\"b\""
        );
        assert!(txt.strings.is_empty());
        // Over 255 octets: the zone line splits it, the record says how.
        let long = format!("v=spf1 {} -all", "ip4:192.0.2.1 ".repeat(30));
        let r = DnsRecord::txt("contoso.com", "contoso.com", &long);
        assert_eq!(r.value, long);
        assert_eq!(r.strings.len(), 2);
        assert_eq!(r.strings.concat(), long);
        assert!(r.strings.iter().all(|s| s.len() <= MAX_TXT_STRING));
        assert_eq!(
            r.zone_line(),
            format!(
                "contoso.com.  3600  IN  TXT  \"{}\" \"{}\"",
                r.strings[0], r.strings[1]
            )
        );
        for rec in [&cname, &mx, &txt, &r] {
            let (name, rtype, value) = parse_zone_line(&rec.zone_line()).expect("parses");
            assert_eq!(
                (name.as_str(), rtype.as_str()),
                (rec.name.as_str(), rec.rtype.as_str())
            );
            let value = if rtype == "CNAME" {
                value.trim_end_matches('.').to_string()
            } else {
                value
            };
            assert_eq!(value, rec.value);
        }
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["type"], "TXT");
        assert_eq!(json["host"], "@");
        assert_eq!(json["strings"].as_array().map(Vec::len), Some(2));
        assert!(serde_json::to_value(&txt).unwrap().get("strings").is_none());
    }

    #[test]
    fn fixes_that_are_records() {
        let d = "contoso.com";
        let spf = from_fix(d, "v=spf1 include:spf.protection.outlook.com -all");
        assert_eq!(spf.len(), 1);
        assert_eq!((spf[0].host.as_str(), spf[0].rtype.as_str()), ("@", "TXT"));
        let dmarc = from_fix(
            d,
            "_dmarc.contoso.com. TXT \"v=DMARC1; p=quarantine; rua=mailto:a@contoso.com\"",
        );
        assert_eq!(dmarc[0].host, "_dmarc");
        assert_eq!(
            dmarc[0].value,
            "v=DMARC1; p=quarantine; rua=mailto:a@contoso.com"
        );
        let parked = from_fix(
            d,
            "contoso.com. MX 0 .\ncontoso.com. TXT \"v=spf1 -all\"\n_dmarc.contoso.com. TXT \"v=DMARC1; p=reject\"",
        );
        assert_eq!(
            parked
                .iter()
                .map(|r| (r.host.as_str(), r.rtype.as_str(), r.value.as_str()))
                .collect::<Vec<_>>(),
            [
                ("@", "MX", "0 ."),
                ("@", "TXT", "v=spf1 -all"),
                ("_dmarc", "TXT", "v=DMARC1; p=reject")
            ]
        );
        let cname = from_fix(
            d,
            "selector1._domainkey.contoso.com. CNAME selector1-contoso-com._domainkey.contoso.onmicrosoft.com.",
        );
        assert_eq!(
            cname[0].value,
            "selector1-contoso-com._domainkey.contoso.onmicrosoft.com"
        );
        let full = from_fix(
            d,
            "_smtp._tls.contoso.com.  3600  IN  TXT  \"v=TLSRPTv1; rua=mailto:t@contoso.com\"",
        );
        assert_eq!(full[0].host, "_smtp._tls");
        // The organizational domain's record (a subdomain inheriting it).
        let org = from_fix(
            "sub.contoso.com",
            "_dmarc.contoso.com. TXT \"v=DMARC1; p=reject\"",
        );
        assert_eq!(
            (org[0].zone.as_str(), org[0].host.as_str()),
            ("contoso.com", "_dmarc")
        );
        // Not records: commands, sentences, placeholders, a mix.
        for not in [
            "",
            "Set-OrganizationConfig -RejectDirectSend $true",
            "Publish the MX record shown for contoso.com, e.g. `contoso.com. MX 0 <label>.mail.protection.outlook.com`",
            "contoso.com. MX 0 <label>.mail.protection.outlook.com",
            "contoso.com. TXT \"v=spf1 -all\"\nthen audit again",
            "contoso.com. TXT v=spf1",
            "contoso.com. A 192.0.2.1",
            "v=spf1 -all\nv=spf1 ~all",
        ] {
            assert_eq!(from_fix(d, not), Vec::new(), "{not:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn txt_round_trips(text in "\\PC{0,600}") {
            let r = DnsRecord::txt("x.example", "x.example", &text);
            let (_, _, value) = parse_zone_line(&r.zone_line()).expect("parses");
            proptest::prop_assert_eq!(&value, &text);
            let line = format!("x.example. TXT {}", txt_rdata(&text));
            let back = from_fix("x.example", &line);
            proptest::prop_assert_eq!(back.len(), 1);
            proptest::prop_assert_eq!(&back[0].value, &text);
        }
    }
}
