//! Portal accounts, as the command line (`mailaudit user …`) and the portal's admin pages
//! change them: passwords hashed with argon2id, the rules of roles and customers (the store's),
//! never fewer than one admin once there is one, every change in the audit log with who made
//! it; and the random tokens of sessions.
//!
//! Passwords are hashed with argon2id at the parameters OWASP's Password Storage Cheat Sheet
//! gives first (m = 19 MiB, t = 2, p = 1: the `argon2` crate's defaults), each with its own
//! random salt, stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`), so parameters can
//! be raised later without invalidating stored hashes. A password is never logged, printed or
//! stored.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use mailaudit_store::{AuditEntry, NewUser, Role, Store, Time, User};

use crate::AppError;

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// The longest password accepted (hashing a huge one would be work for nothing).
pub const MAX_PASSWORD: usize = 1024;

/// Who a change made on the command line is recorded as in the audit log.
pub const CLI_ACTOR: &str = "command line";

/// The argon2id hasher at OWASP's first recommended parameters.
fn hasher() -> Argon2<'static> {
    // 19 MiB, 2 iterations, 1 lane: OWASP's "m=19456 (19 MiB), t=2, p=1".
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the rules: at least [`MIN_PASSWORD`] characters, at most
/// [`MAX_PASSWORD`], no control characters (a pasted line break is a mistake).
pub fn check_password(password: &str) -> Result<(), AppError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(AppError::WeakPassword(format!(
            "the password is {n} characters long: use at least {MIN_PASSWORD}"
        )));
    }
    if n > MAX_PASSWORD {
        return Err(AppError::WeakPassword(format!(
            "the password is longer than {MAX_PASSWORD} characters"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(AppError::WeakPassword(
            "the password holds control characters (a line break?)".into(),
        ));
    }
    Ok(())
}

/// The argon2id PHC string of `password` (checked with [`check_password`] first), with a
/// fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    check_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::PasswordHash(e.to_string()))
}

/// Whether `password` matches the stored PHC string `hash` (in constant time; a hash that does
/// not parse matches nothing).
pub fn verify_password(hash: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD * 4 {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
}

/// Spends the time of one verification on nothing: what a sign-in with an unknown name or a
/// user without a password does, so the answer's timing does not tell which names exist.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(b"no user has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    let _ = verify_password(hash, password);
}

/// A new random token: 32 bytes from the operating system's generator, base64url without
/// padding (43 characters). Session ids and CSRF tokens.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Digits of a second-factor code.
pub const TOTP_DIGITS: usize = 6;
/// Seconds a second-factor code stands for (RFC 6238's time step).
pub const TOTP_STEP: u64 = 30;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// The TOTP of a base32 secret (`None` when it does not decode or is shorter than 128 bits).
/// RFC 6238 with HMAC-SHA1, 6 digits, 30-second steps (what authenticator apps take), one
/// step of clock skew either way.
fn totp(secret: &str) -> Option<totp_rs::TOTP> {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .ok()?;
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, TOTP_DIGITS, 1, TOTP_STEP, bytes).ok()
}

/// The PKCE code challenge of `verifier` by the S256 method (RFC 7636 §4.2):
/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`, without padding. The portal's single
/// sign-on sends it with the authorization request and keeps the verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A new second-factor secret: 20 random bytes (RFC 4226's recommended length), base32.
pub fn new_totp_secret() -> String {
    let mut bytes = vec![0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    totp_rs::Secret::Raw(bytes).to_encoded().to_string()
}

/// The code of `secret` at unix time `at` (what an authenticator app shows then).
pub fn totp_code(secret: &str, at: Time) -> Option<String> {
    Some(totp(secret)?.generate(u64::try_from(at).ok()?))
}

/// Whether `code` is `secret`'s at `at`, or one step before or after (in constant time).
pub fn verify_totp(secret: &str, code: &str, at: Time) -> bool {
    totp_step(secret, code, at).is_some()
}

/// The time step (unix time / 30) whose code `code` is, among the step of `at` and the steps
/// just before and after it (each compared in constant time); `None` when it is none of them.
/// The caller accepts a step once ([`Store::accept_totp_step`](mailaudit_store::Store)), so a
/// code seen over someone's shoulder cannot be used again.
pub fn totp_step(secret: &str, code: &str, at: Time) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let t = totp(secret)?;
    let at = u64::try_from(at).ok()?;
    if code.len() != TOTP_DIGITS {
        return None;
    }
    let step = at / TOTP_STEP;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let candidate = t.generate(s * TOTP_STEP);
        if mailaudit_core::secret::same_secret(candidate.as_bytes(), code.as_bytes())
            && found.is_none()
        {
            found = i64::try_from(s).ok();
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app reads from the enrolment's QR code.
pub fn otpauth_uri(secret: &str, user: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/mailaudit:{}?secret={secret}&issuer=mailaudit&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP}",
        enc(user)
    )
}

/// New recovery codes: [`RECOVERY_CODES`] of them, each ten characters of a-z and 2-7 (50
/// random bits) as `xxxxx-xxxxx`.
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            OsRng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// How a recovery code is stored: the SHA-256 (hex) of its letters and digits, lower case (so
/// `ABCDE-FGHIJ`, `abcde fghij` and `abcdefghij` are the same code).
pub fn recovery_hash(code: &str) -> String {
    use sha2::Digest;
    let norm: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    sha2::Sha256::digest(norm.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who changes an account, and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// A user name, or [`CLI_ACTOR`].
    pub name: String,
    /// The client's address (empty on the command line).
    pub address: String,
}

impl Actor {
    /// The command line.
    pub fn cli() -> Actor {
        Actor {
            name: CLI_ACTOR.into(),
            address: String::new(),
        }
    }

    /// Records `action` on `target` in the audit log.
    pub async fn record(
        &self,
        store: &dyn Store,
        now: Time,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), AppError> {
        store
            .record_audit(&AuditEntry {
                id: 0,
                at: now,
                actor: self.name.clone(),
                action: action.into(),
                target: target.into(),
                detail: detail.into(),
                address: self.address.clone(),
            })
            .await?;
        Ok(())
    }
}

/// `viewer of Contoso, Fabrikam`, `technician`: a role and its customers, as the audit log
/// and the user list say it.
pub fn describe_role(role: Role, customers: &[String]) -> String {
    if customers.is_empty() {
        role.as_str().to_string()
    } else {
        format!("{role} of {}", customers.join(", "))
    }
}

/// Adds a user (its password, when given, hashed here) and records it.
pub async fn add_user(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    role: Role,
    customers: &[String],
    password: Option<&str>,
    now: Time,
) -> Result<User, AppError> {
    let password_hash = password.map(hash_password).transpose()?;
    let user = store
        .add_user(
            &NewUser {
                name: name.into(),
                role,
                customers: customers.to_vec(),
                password_hash,
            },
            now,
        )
        .await?;
    let detail = describe_role(user.role, &user.customers);
    actor
        .record(store, now, "user-add", &user.name, &detail)
        .await?;
    Ok(user)
}

/// How many admins there are.
async fn admins(store: &dyn Store) -> Result<usize, AppError> {
    Ok(store
        .users()
        .await?
        .iter()
        .filter(|u| u.role == Role::Admin)
        .count())
}

/// Removes a user (and its sessions) and records it; the last admin is never removed.
pub async fn remove_user(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    now: Time,
) -> Result<User, AppError> {
    let user = store.user(name).await?;
    if user.role == Role::Admin && admins(store).await? <= 1 {
        return Err(AppError::LastAdmin(format!(
            "{} is the only admin: make another user admin first",
            user.name
        )));
    }
    let user = store.remove_user(&user.name).await?;
    actor
        .record(
            store,
            now,
            "user-remove",
            &user.name,
            &describe_role(user.role, &user.customers),
        )
        .await?;
    Ok(user)
}

/// Sets a user's password (hashed here) and records it; the user's sessions end. Returns how
/// many ended.
pub async fn set_password(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    password: &str,
    now: Time,
) -> Result<u64, AppError> {
    let hash = hash_password(password)?;
    let user = store.user(name).await?;
    let revoked = store.set_password(&user.name, Some(&hash), now).await?;
    actor
        .record(
            store,
            now,
            "user-password",
            &user.name,
            &format!("{revoked} sessions ended"),
        )
        .await?;
    Ok(revoked)
}

/// Turns a user's second factor off (its secret and recovery codes go) and records it; the
/// user's sessions end. Returns how many ended.
pub async fn reset_second_factor(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    now: Time,
) -> Result<u64, AppError> {
    let user = store.user(name).await?;
    store.set_second_factor(&user.name, None, &[], now).await?;
    let ended = store.revoke_sessions(&user.name).await?;
    actor
        .record(store, now, "second-factor-off", &user.name, "")
        .await?;
    Ok(ended)
}

/// Gives a user a role (and, for a viewer, its customers) and records it; the user's
/// sessions end. The last admin keeps its role.
pub async fn set_role(
    store: &dyn Store,
    actor: &Actor,
    name: &str,
    role: Role,
    customers: &[String],
    now: Time,
) -> Result<mailaudit_store::Updated<User>, AppError> {
    let user = store.user(name).await?;
    if user.role == Role::Admin && role != Role::Admin && admins(store).await? <= 1 {
        return Err(AppError::LastAdmin(format!(
            "{} is the only admin: make another user admin first",
            user.name
        )));
    }
    let changed = store.set_role(&user.name, role, customers, now).await?;
    let detail = format!(
        "{} → {}",
        describe_role(changed.before.role, &changed.before.customers),
        describe_role(changed.after.role, &changed.after.customers)
    );
    actor
        .record(store, now, "user-role", &changed.after.name, &detail)
        .await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery "));
        assert!(!verify_password("not a hash", "correct horse battery"));
        // Each hash has its own salt.
        assert_ne!(h, hash_password("correct horse battery").unwrap());
        verify_nothing("anything");
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn password_rules() {
        for (pw, ok) in [
            ("short", false),
            ("exactly12chr", true),
            ("line\nbreak in it", false),
            ("ünïcödé pässwörd", true),
        ] {
            assert_eq!(check_password(pw).is_ok(), ok, "{pw:?}");
        }
        assert!(check_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
        let e = hash_password("short").unwrap_err();
        assert!(e.to_string().contains("at least 12"), "{e}");
    }

    /// RFC 6238 Appendix B: the SHA-1 test vectors (the secret is the ASCII string
    /// "12345678901234567890", 8 digits, 30-second steps).
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let secret = totp_rs::Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        let bytes = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();
        let t = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 8, 0, 30, bytes).unwrap();
        for (time, code) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(t.generate(time), code, "T = {time}");
        }
        // The portal's 6-digit codes are the last six digits of the same values.
        assert_eq!(totp_code(&secret, 59).as_deref(), Some("287082"));
        assert_eq!(totp_code(&secret, 1_234_567_890).as_deref(), Some("005924"));
        // One step of skew either way, no more.
        assert!(verify_totp(&secret, "287082", 59));
        assert!(verify_totp(&secret, "287 082", 80));
        assert!(verify_totp(&secret, "005924", 1_234_567_890 + 30));
        assert!(!verify_totp(&secret, "005924", 1_234_567_890 + 60));
        assert!(!verify_totp(&secret, "", 59));
        assert!(!verify_totp("not base32!", "287082", 59));
        // Which step a code is.
        assert_eq!(totp_step(&secret, "287082", 59), Some(1));
        assert_eq!(totp_step(&secret, "287082", 80), Some(1));
        assert_eq!(
            totp_step(&secret, "005924", 1_234_567_890 + 30),
            Some(41_152_263)
        );
    }

    #[test]
    fn second_factor_secrets_uris_and_recovery_codes() {
        let s = new_totp_secret();
        assert_eq!(s.len(), 32, "{s}");
        assert_ne!(s, new_totp_secret());
        let now = 1_800_000_000;
        let code = totp_code(&s, now).unwrap();
        assert!(verify_totp(&s, &code, now));
        assert_eq!(
            otpauth_uri("JBSWY3DPEHPK3PXP", "ann lee@x"),
            "otpauth://totp/mailaudit:ann%20lee@x?secret=JBSWY3DPEHPK3PXP&issuer=mailaudit&algorithm=SHA1&digits=6&period=30"
        );
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-')
        );
        let upper = codes[0].to_uppercase().replace('-', " ");
        assert_eq!(recovery_hash(&upper), recovery_hash(&codes[0]));
        assert_ne!(recovery_hash(&codes[0]), recovery_hash(&codes[1]));
    }

    #[test]
    fn tokens_are_random_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
    }

    #[tokio::test]
    async fn changes_are_logged_and_the_last_admin_stays() {
        let s = mailaudit_store::SqliteStore::open_memory().await.unwrap();
        s.add_customer("Contoso", "", "").await.unwrap();
        let cli = Actor::cli();
        add_user(
            &s,
            &cli,
            "root",
            Role::Admin,
            &[],
            Some("root password 1"),
            1,
        )
        .await
        .unwrap();
        let v = add_user(
            &s,
            &cli,
            "ann",
            Role::Viewer,
            &["Contoso".into()],
            Some("ann password 12"),
            2,
        )
        .await
        .unwrap();
        assert!(verify_password(
            v.password_hash.as_deref().unwrap(),
            "ann password 12"
        ));
        // A weak password adds nobody.
        assert!(matches!(
            add_user(&s, &cli, "bob", Role::Technician, &[], Some("short"), 3).await,
            Err(AppError::WeakPassword(_))
        ));
        assert!(s.user("bob").await.is_err());
        // The only admin can be neither removed nor demoted.
        assert!(matches!(
            remove_user(&s, &cli, "root", 4).await,
            Err(AppError::LastAdmin(_))
        ));
        assert!(matches!(
            set_role(&s, &cli, "root", Role::Technician, &[], 4).await,
            Err(AppError::LastAdmin(_))
        ));
        // With a second admin, it can.
        set_role(&s, &cli, "ann", Role::Admin, &[], 5)
            .await
            .unwrap();
        set_role(&s, &cli, "root", Role::Technician, &[], 6)
            .await
            .unwrap();
        set_password(&s, &cli, "root", "a new password", 7)
            .await
            .unwrap();
        remove_user(&s, &cli, "root", 8).await.unwrap();
        let log = s.audit_log(10, None).await.unwrap();
        let got: Vec<(&str, &str, &str)> = log
            .iter()
            .rev()
            .map(|e| (e.action.as_str(), e.target.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("user-add", "root", "admin"),
                ("user-add", "ann", "viewer of Contoso"),
                ("user-role", "ann", "viewer of Contoso → admin"),
                ("user-role", "root", "admin → technician"),
                ("user-password", "root", "0 sessions ended"),
                ("user-remove", "root", "technician"),
            ]
        );
        assert!(
            log.iter()
                .all(|e| e.actor == CLI_ACTOR && e.address.is_empty())
        );
        // No password reaches the log.
        assert!(log.iter().all(|e| !format!("{e:?}").contains("password 1")));
    }
}
