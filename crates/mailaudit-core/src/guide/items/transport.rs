//! Transport security: MTA-STS and TLS-RPT.

use crate::checks::CheckId;
use crate::guide::util::{is_plain_name, sts_id};
use crate::guide::{DnsRecord, Lang, Priority};

use super::{Builder, Draft, priority_of, step, step_code, step_dns};

impl<'a> Builder<'a> {
    pub(super) fn transport(&mut self) -> Vec<Draft> {
        use CheckId::*;
        let d = self.d.clone();
        let mut out = Vec::new();
        let sts = self.take(&[MtaStsMissing, MtaStsInvalid]);
        if !sts.is_empty() {
            let ids: Vec<CheckId> = sts.iter().map(|f| f.id).collect();
            let hosts: Vec<&str> = self
                .r
                .mx
                .iter()
                .map(|m| m.host.trim_end_matches('.'))
                .filter(|h| is_plain_name(h))
                .collect();
            let mut policy = String::from("version: STSv1\nmode: testing\n");
            for h in &hosts {
                policy.push_str(&format!("mx: {h}\n"));
            }
            policy.push_str("max_age: 604800");
            let steps = vec![
                step(self.summary(ids[0])),
                step_code(
                    format!(
                        "Serve this policy at `https://mta-sts.{d}/.well-known/mta-sts.txt`, over \
                         HTTPS with a valid certificate for `mta-sts.{d}`:"
                    ),
                    Lang::Text,
                    policy,
                ),
                step_dns(
                    "Publish the record (change its `id` whenever the policy changes):",
                    vec![DnsRecord::txt(
                        &d,
                        &format!("_mta-sts.{d}"),
                        &format!("v=STSv1; id={}", sts_id(self.ctx.today)),
                    )],
                ),
                step(
                    "After a few weeks of clean TLS reports, set `mode: enforce`, raise `max_age` and change the `id`.",
                ),
            ];
            out.push(Draft {
                priority: priority_of(&ids, Priority::P4),
                item: self.item(
                    "mta-sts",
                    "Publish an MTA-STS policy",
                    &sts,
                    ids[0],
                    steps,
                    self.verify_txt(&format!("_mta-sts.{d}")),
                ),
            });
        }
        let rpt = self.take(&[TlsrptMissing]);
        if !rpt.is_empty() {
            let steps = vec![
                step(self.summary(TlsrptMissing)),
                step_dns(
                    "Publish:",
                    vec![DnsRecord::txt(
                        &d,
                        &format!("_smtp._tls.{d}"),
                        &format!("v=TLSRPTv1; rua=mailto:tlsrpt@{d}"),
                    )],
                ),
            ];
            out.push(Draft {
                priority: priority_of(&[TlsrptMissing], Priority::P4),
                item: self.item(
                    "tls-rpt",
                    "Publish a TLS-RPT record",
                    &rpt,
                    TlsrptMissing,
                    steps,
                    self.verify_txt(&format!("_smtp._tls.{d}")),
                ),
            });
        }
        out
    }
}
