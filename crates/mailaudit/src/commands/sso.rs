//! `mailaudit serve`'s single sign-on: the `--oidc-…` flags turned into the portal's
//! [`SingleSignOn`] over `mailaudit-net`'s OpenID Connect client.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use mailaudit_net::Resolver;
use mailaudit_net::oidc::{OidcClient, OidcConfig, microsoft_issuer};
use mailaudit_net::smtp::TlsRoots;
use mailaudit_portal::sso::{GroupRule, SingleSignOn, Sso, SsoClaims, SsoFuture, SsoMapping};

use crate::cli::OidcArgs;

/// The environment variable holding the client secret (never argv).
pub(crate) const SECRET_ENV: &str = "MAILAUDIT_OIDC_CLIENT_SECRET";

/// Seconds since the Unix epoch, by the store's clock (the one every caller uses).
fn now() -> u64 {
    u64::try_from(mailaudit_store::now()).unwrap_or(0)
}

/// The provider as the portal sees it.
struct Provider(OidcClient<Resolver>);

impl SingleSignOn for Provider {
    fn authorization_url<'a>(
        &'a self,
        state: &'a str,
        nonce: &'a str,
        code_challenge: &'a str,
    ) -> SsoFuture<'a, String> {
        Box::pin(async move {
            self.0
                .authorization_url(state, nonce, code_challenge)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn exchange<'a>(
        &'a self,
        code: &'a str,
        verifier: &'a str,
        nonce: &'a str,
    ) -> SsoFuture<'a, SsoClaims> {
        Box::pin(async move {
            let c = self
                .0
                .exchange(code, verifier, nonce, now())
                .await
                .map_err(|e| e.to_string())?;
            Ok(SsoClaims {
                subject: c.subject,
                email: c.email,
                groups: c.groups,
                nonce: c.nonce,
            })
        })
    }
}

/// Single sign-on as the flags say (`None` without --oidc-tenant or --oidc-issuer). The
/// redirect URI defaults to `{scheme}://{listening address}/login/sso/callback`.
pub(crate) fn from_args(
    args: &OidcArgs,
    resolver: Resolver,
    default_base: &str,
) -> Result<Option<Sso>> {
    let (issuer, label) = match (&args.oidc_tenant, &args.oidc_issuer) {
        (Some(t), _) => (microsoft_issuer(t)?, "Microsoft"),
        (None, Some(i)) => (i.trim_end_matches('/').to_string(), "single sign-on"),
        (None, None) => return Ok(None),
    };
    let Some(client_id) = args.oidc_client_id.clone() else {
        bail!("single sign-on needs --oidc-client-id");
    };
    let client_secret = std::env::var(SECRET_ENV).unwrap_or_default();
    if client_secret.trim().is_empty() {
        bail!("single sign-on needs the client secret in {SECRET_ENV} (never on the command line)");
    }
    let roots = match &args.oidc_ca_file {
        Some(p) => TlsRoots::with_ca_file(p)?,
        None => TlsRoots::webpki(),
    };
    let redirect_uri = args
        .oidc_redirect_uri
        .clone()
        .unwrap_or_else(|| format!("{default_base}/login/sso/callback"));
    let groups = args
        .oidc_groups
        .iter()
        .map(|g| g.parse::<GroupRule>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()
        .context("--oidc-group")?;
    let mapping = SsoMapping {
        admins: trimmed(&args.oidc_admins),
        technicians: trimmed(&args.oidc_technicians),
        groups,
    };
    let client = OidcClient::new(
        resolver,
        OidcConfig {
            issuer,
            client_id,
            client_secret: client_secret.trim().to_string(),
            redirect_uri,
            roots,
        },
    )?;
    Ok(Some(Sso::new(Arc::new(Provider(client)), label, mapping)))
}

fn trimmed(v: &[String]) -> Vec<String> {
    v.iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
