//! The collection script and the table it shares with the importer.

use super::ps_quote;

/// One cmdlet the collection script runs and the importer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cmdlet {
    /// The cmdlet (`Get-OrganizationConfig`).
    pub cmdlet: &'static str,
    /// Its key in the bundle (`org_config`); also the stem of its per-file export.
    pub key: &'static str,
    /// Other file stems accepted for a per-file export (`transport_rule`).
    pub aliases: &'static [&'static str],
    /// Whether the evaluation is meaningless without it (a missing required export is reported).
    pub required: bool,
    /// The properties the importer reads: the script selects exactly these.
    pub properties: &'static [&'static str],
    /// Run once per accepted domain (`-DomainName`), skipping the Microsoft-hosted
    /// `*.onmicrosoft.com` domains; each object gets the domain as a `DomainName` property, and
    /// a failure for one domain is recorded under `errors["<key>/<domain>"]` without losing the
    /// others (that domain is then unknown, never a verdict).
    pub per_domain: bool,
}

/// Every cmdlet of the collection script, in the order it runs them. The importer reads the
/// same keys and properties; a test checks that it reads nothing outside this table.
pub const CMDLETS: &[Cmdlet] = &[
    Cmdlet {
        cmdlet: "Get-OrganizationConfig",
        key: "org_config",
        aliases: &["organization_config", "orgconfig"],
        required: true,
        per_domain: false,
        properties: &["Name", "RejectDirectSend"],
    },
    Cmdlet {
        cmdlet: "Get-AcceptedDomain",
        key: "accepted_domains",
        aliases: &["accepted_domain"],
        required: true,
        per_domain: false,
        properties: &[
            "DomainName",
            "DomainType",
            "Default",
            "InitialDomain",
            "IsCoexistenceDomain",
        ],
    },
    Cmdlet {
        cmdlet: "Get-InboundConnector",
        key: "inbound_connectors",
        aliases: &["inbound_connector"],
        required: true,
        per_domain: false,
        properties: &[
            "Name",
            "Enabled",
            "ConnectorType",
            "SenderDomains",
            "SenderIPAddresses",
            "RequireTls",
            "RestrictDomainsToIPAddresses",
            "RestrictDomainsToCertificate",
            "TlsSenderCertificateName",
            "WhenChanged",
        ],
    },
    Cmdlet {
        cmdlet: "Get-OutboundConnector",
        key: "outbound_connectors",
        aliases: &["outbound_connector"],
        required: false,
        per_domain: false,
        properties: &[
            "Name",
            "Enabled",
            "ConnectorType",
            "RecipientDomains",
            "SmartHosts",
            "TlsSettings",
        ],
    },
    Cmdlet {
        cmdlet: "Get-TransportRule",
        key: "transport_rules",
        aliases: &["transport_rule"],
        required: true,
        per_domain: false,
        properties: &[
            "Name",
            "State",
            "Mode",
            "Priority",
            "FromScope",
            "SenderDomainIs",
            "SenderAddressLocation",
            "FromAddressContainsWords",
            "FromAddressMatchesPatterns",
            "HeaderMatchesMessageHeader",
            "HeaderMatchesPatterns",
            "HeaderContainsMessageHeader",
            "HeaderContainsWords",
            "SenderIpRanges",
            "ExceptIfSenderIpRanges",
            "RejectMessageReasonText",
            "RejectMessageEnhancedStatusCode",
            "Quarantine",
            "DeleteMessage",
            "SetSCL",
            "StopRuleProcessing",
        ],
    },
    Cmdlet {
        cmdlet: "Get-DkimSigningConfig",
        key: "dkim_config",
        aliases: &["dkim_signing_config", "dkim"],
        required: true,
        per_domain: false,
        properties: &[
            "Domain",
            "Enabled",
            "Status",
            "Selector1CNAME",
            "Selector2CNAME",
            "Selector1KeySize",
            "Selector2KeySize",
        ],
    },
    Cmdlet {
        cmdlet: "Get-AntiPhishPolicy",
        key: "anti_phish_policies",
        aliases: &["anti_phish_policy", "antiphish_policies"],
        required: true,
        per_domain: false,
        properties: &[
            "Name",
            "Enabled",
            "IsDefault",
            "EnableTargetedUserProtection",
            "TargetedUsersToProtect",
            "TargetedUserProtectionAction",
            "EnableOrganizationDomainsProtection",
            "EnableTargetedDomainsProtection",
            "TargetedDomainProtectionAction",
            "EnableMailboxIntelligence",
            "EnableMailboxIntelligenceProtection",
            "MailboxIntelligenceProtectionAction",
            "EnableSpoofIntelligence",
            "HonorDmarcPolicy",
            "PhishThresholdLevel",
        ],
    },
    Cmdlet {
        cmdlet: "Get-AntiPhishRule",
        key: "anti_phish_rules",
        aliases: &["anti_phish_rule", "antiphish_rules"],
        required: false,
        per_domain: false,
        properties: &["Name", "AntiPhishPolicy", "State", "Priority"],
    },
    Cmdlet {
        cmdlet: "Get-TransportConfig",
        key: "transport_config",
        aliases: &[],
        required: true,
        per_domain: false,
        properties: &["SmtpClientAuthenticationDisabled"],
    },
    Cmdlet {
        cmdlet: "Get-HostedOutboundSpamFilterPolicy",
        key: "outbound_spam_policies",
        aliases: &[
            "outbound_spam",
            "hosted_outbound_spam_filter_policy",
            "outbound_spam_policy",
        ],
        required: true,
        per_domain: false,
        properties: &["Name", "IsDefault", "AutoForwardingMode"],
    },
    Cmdlet {
        cmdlet: "Get-RemoteDomain",
        key: "remote_domains",
        aliases: &["remote_domain"],
        required: false,
        per_domain: false,
        properties: &["Name", "DomainName", "AutoForwardEnabled"],
    },
    Cmdlet {
        cmdlet: "Get-HostedConnectionFilterPolicy",
        key: "conn_filter",
        aliases: &["connection_filter", "hosted_connection_filter_policy"],
        required: false,
        per_domain: false,
        properties: &["Name", "IPAllowList", "EnableSafeList"],
    },
    Cmdlet {
        cmdlet: "Get-DnssecStatusForVerifiedDomain",
        key: "dnssec_status",
        aliases: &["dnssec_status_for_verified_domain"],
        required: false,
        per_domain: true,
        properties: &["DomainName", "DnssecFeatureStatus", "ExpectedMxRecord"],
    },
    Cmdlet {
        cmdlet: "Get-SmtpDaneInboundStatus",
        key: "smtp_dane_inbound",
        aliases: &["smtp_dane_inbound_status", "dane_inbound"],
        required: false,
        per_domain: true,
        properties: &["DomainName", "Status", "DaneStatus", "Enabled"],
    },
];

/// The entry of [`CMDLETS`] with this key.
pub fn cmdlet_by_key(key: &str) -> Option<&'static Cmdlet> {
    CMDLETS.iter().find(|c| c.key == key)
}

/// How the collection script signs in to Exchange Online.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// An administrator signs in interactively (browser, MFA).
    Interactive,
    /// Unattended, as an app registration with a certificate in the user's certificate store.
    AppOnly {
        /// The application (client) ID.
        app_id: String,
        /// The certificate's thumbprint.
        cert_thumbprint: String,
        /// The tenant (`contoso.onmicrosoft.com`).
        organization: String,
    },
    /// A partner (GDAP) administrator signing in to a customer's tenant.
    Delegated {
        /// The customer's tenant (`contoso.onmicrosoft.com`).
        organization: String,
    },
}

/// Options of the collection script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptOptions {
    /// How to sign in.
    pub auth: Auth,
}

/// The bundle format version the script writes and [`parse_bundle`](super::parse_bundle) reads.
pub const BUNDLE_VERSION: u32 = 1;

/// The read-only PowerShell 7 collection script (ExchangeOnlineManagement v3). It runs every
/// cmdlet of [`CMDLETS`], each in its own `try`/`catch` (a failure is recorded under `errors`
/// instead of aborting), and writes one JSON bundle to `-OutFile`:
/// `{ "mailaudit_bundle": 1, "generated", "module_version", "organization", "<key>": [...], "errors": {} }`.
pub fn script(opts: &ScriptOptions) -> String {
    let connect = match &opts.auth {
        Auth::Interactive => "Connect-ExchangeOnline -ShowBanner:$false".to_string(),
        Auth::AppOnly {
            app_id,
            cert_thumbprint,
            organization,
        } => format!(
            "Connect-ExchangeOnline -AppId {} -CertificateThumbprint {} -Organization {} -ShowBanner:$false",
            ps_quote(app_id),
            ps_quote(cert_thumbprint),
            ps_quote(organization)
        ),
        Auth::Delegated { organization } => format!(
            "Connect-ExchangeOnline -DelegatedOrganization {} -ShowBanner:$false",
            ps_quote(organization)
        ),
    };
    let organization = match &opts.auth {
        Auth::Interactive => "$null".to_string(),
        Auth::AppOnly { organization, .. } | Auth::Delegated { organization } => {
            ps_quote(organization)
        }
    };
    let mut s = String::new();
    s.push_str(&format!(
        r#"#Requires -Version 7.0
# mailaudit Exchange Online collection script (bundle format {BUNDLE_VERSION}).
# It only reads the configuration: every command below is a Get cmdlet. Run it in PowerShell 7
# with the ExchangeOnlineManagement module version 3 or later, then import the file it writes:
#   mailaudit exo import <OutFile>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string] $OutFile
)
$ErrorActionPreference = 'Stop'
Import-Module ExchangeOnlineManagement -MinimumVersion 3.0.0
{connect}
try {{
    $module = Get-Module ExchangeOnlineManagement | Sort-Object Version -Descending | Select-Object -First 1
    $bundle = [ordered]@{{
        mailaudit_bundle = {BUNDLE_VERSION}
        generated        = (Get-Date).ToUniversalTime().ToString('o')
        module_version   = "$($module.Version)"
        organization     = {organization}
    }}
    $errors = [ordered]@{{}}
"#
    ));
    for c in CMDLETS {
        let props = c
            .properties
            .iter()
            .map(|p| ps_quote(p))
            .collect::<Vec<_>>()
            .join(",");
        if c.per_domain {
            s.push_str(&per_domain(c));
            continue;
        }
        s.push_str(&format!(
            r#"
    try {{
        $bundle[{key}] = @({cmdlet} -ErrorAction Stop | Select-Object -Property {props})
    }} catch {{
        $bundle[{key}] = @()
        $errors[{key}] = "$($_.Exception.Message)"
    }}
"#,
            key = ps_quote(c.key),
            cmdlet = c.cmdlet,
        ));
    }
    s.push_str(
        r#"
    if (-not $bundle['organization'] -and @($bundle['org_config']).Count -gt 0) {
        $bundle['organization'] = "$(@($bundle['org_config'])[0].Name)"
    }
    $bundle['errors'] = $errors
    $bundle | ConvertTo-Json -Depth 6 -EnumsAsStrings | Out-File -FilePath $OutFile -Encoding utf8
    Write-Host "mailaudit: wrote $OutFile ($($errors.Count) cmdlet errors)"
} finally {
    Disconnect-ExchangeOnline -Confirm:$false
}
"#,
    );
    s
}

/// The script's block for a [`Cmdlet::per_domain`] cmdlet: once per accepted domain read by
/// `Get-AcceptedDomain` above, each object tagged with its `DomainName`.
fn per_domain(c: &Cmdlet) -> String {
    let props = c
        .properties
        .iter()
        .filter(|p| **p != "DomainName")
        .map(|p| ps_quote(p))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"
    $bundle[{key}] = @(foreach ($accepted in @($bundle['accepted_domains'])) {{
        $name = "$($accepted.DomainName)"
        if (-not $name -or $name.EndsWith('.onmicrosoft.com')) {{ continue }}
        try {{
            {cmdlet} -DomainName $name -ErrorAction Stop | Select-Object -Property @{{Name = 'DomainName'; Expression = {{ $name }}}},{props}
        }} catch {{
            $errors["{stem}/$name"] = "$($_.Exception.Message)"
        }}
    }})
"#,
        key = ps_quote(c.key),
        stem = c.key,
        cmdlet = c.cmdlet,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `Verb-Noun` token of the script, case-insensitively.
    fn cmdlet_tokens(s: &str) -> Vec<String> {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter_map(|t| {
                let t = t.trim_matches('-');
                let (verb, noun) = t.split_once('-')?;
                (verb.len() >= 2
                    && noun.len() >= 2
                    && verb.chars().all(|c| c.is_ascii_alphabetic())
                    && noun.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
                .then(|| t.to_string())
            })
            .collect()
    }

    const READ_ONLY_VERBS: &[&str] = &[
        "Get",
        "Connect",
        "Disconnect",
        "ConvertTo",
        "Select",
        "Sort",
        "Out",
        "Write",
        "Import",
    ];

    fn all_auths() -> Vec<ScriptOptions> {
        [
            Auth::Interactive,
            Auth::AppOnly {
                app_id: "00000000-1111-2222-3333-444444444444".into(),
                cert_thumbprint: "ABCDEF0123456789".into(),
                organization: "contoso.onmicrosoft.com".into(),
            },
            Auth::Delegated {
                organization: "fabrikam.onmicrosoft.com".into(),
            },
        ]
        .into_iter()
        .map(|auth| ScriptOptions { auth })
        .collect()
    }

    #[test]
    fn script_is_read_only() {
        for opts in all_auths() {
            let s = script(&opts);
            let tokens = cmdlet_tokens(&s);
            assert!(tokens.iter().any(|t| t == "Get-OrganizationConfig"));
            for t in &tokens {
                let verb = t.split('-').next().unwrap_or("");
                assert!(
                    READ_ONLY_VERBS.iter().any(|v| v.eq_ignore_ascii_case(verb)),
                    "state-changing or unexpected command {t:?} in the script"
                );
            }
            for bad in ["Set-", "New-", "Remove-", "Enable-", "Disable-", "Add-"] {
                assert!(!s.to_ascii_lowercase().contains(&bad.to_ascii_lowercase()));
            }
        }
    }

    #[test]
    fn script_runs_every_cmdlet_with_its_key_and_properties() {
        for opts in all_auths() {
            let s = script(&opts);
            for c in CMDLETS {
                if c.per_domain {
                    assert!(s.contains(&format!(
                        "$bundle['{}'] = @(foreach ($accepted in @($bundle['accepted_domains']))",
                        c.key
                    )));
                    assert!(s.contains(&format!(
                        "{} -DomainName $name -ErrorAction Stop | Select-Object -Property @{{Name = 'DomainName'",
                        c.cmdlet
                    )));
                    assert!(s.contains(&format!("$errors[\"{}/$name\"]", c.key)));
                } else {
                    assert!(s.contains(&format!("$bundle['{}'] = @({} ", c.key, c.cmdlet)));
                    assert!(s.contains(&format!("$errors['{}']", c.key)));
                }
                for p in c.properties {
                    assert!(s.contains(&format!("'{p}'")), "{p}");
                }
            }
            for needle in [
                "mailaudit_bundle = 1",
                "ConvertTo-Json -Depth 6",
                "[string] $OutFile",
                "Out-File -FilePath $OutFile",
                "Disconnect-ExchangeOnline -Confirm:$false",
                "-ShowBanner:$false",
                "module_version",
                "generated",
                "organization",
            ] {
                assert!(s.contains(needle), "{needle}");
            }
        }
    }

    #[test]
    fn connect_parameters_per_mode() {
        let s = all_auths().iter().map(script).collect::<Vec<_>>();
        assert!(s[0].contains("Connect-ExchangeOnline -ShowBanner:$false\n"));
        assert!(s[1].contains(
            "Connect-ExchangeOnline -AppId '00000000-1111-2222-3333-444444444444' -CertificateThumbprint 'ABCDEF0123456789' -Organization 'contoso.onmicrosoft.com' -ShowBanner:$false"
        ));
        assert!(s[2].contains(
            "Connect-ExchangeOnline -DelegatedOrganization 'fabrikam.onmicrosoft.com' -ShowBanner:$false"
        ));
        assert!(s[2].contains("organization     = 'fabrikam.onmicrosoft.com'"));
    }

    #[test]
    fn hostile_parameters_stay_quoted() {
        let s = script(&ScriptOptions {
            auth: Auth::Delegated {
                organization: "x'; Remove-Mailbox -Identity a; '".into(),
            },
        });
        assert!(s.contains("'x''; Remove-Mailbox -Identity a; '''"));
    }

    #[test]
    fn keys_are_unique() {
        let mut stems: Vec<&str> = CMDLETS
            .iter()
            .flat_map(|c| std::iter::once(c.key).chain(c.aliases.iter().copied()))
            .collect();
        let n = stems.len();
        stems.sort_unstable();
        stems.dedup();
        assert_eq!(n, stems.len());
    }
}
