//! Who is calling: signed bearer tokens (JWT, HS256) carrying a subject and a role.
//!
//! Tokens are stateless: the server checks the signature, the issuer and the expiry, nothing
//! else, so any number of servers sharing the secret accept each other's tokens. The secret
//! comes from `ORDO_JWT_SECRET` (at least 32 bytes), or is generated once into the data
//! directory (`jwt-secret`, readable by its owner only), so `just run` needs no setup and
//! tokens survive restarts. See `docs/adr/0008-auth-and-idempotency.md`. A verified token
//! becomes an application-layer [`Caller`]; nothing below HTTP knows about JWTs. Each server
//! remembers the tokens it verified (the last 10,000), so a shopper's later requests skip the
//! signature check; their times are checked on every use.

use crate::cli::environment::DataDir;
use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lru::LruCache;
use ordo_application::{Caller, Role};
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `iss` claim of every token Ordo issues.
const ISSUER: &str = "ordo";
/// Shortest secret accepted from configuration.
const MIN_SECRET_BYTES: usize = 32;
/// Lifetime of a guest shopper's session token.
pub const GUEST_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The claims Ordo puts in a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The customer id (customers) or the operator's name (admins).
    pub sub: String,
    /// What the caller may do.
    pub role: Role,
    /// Issuer, always `ordo`.
    pub iss: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds (Ordo does not set it; honoured when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Clock difference tolerated between the server that minted a token and the one checking
/// it. Expiry is otherwise exact to the second: a token is refused from its `exp` second on.
pub const CLOCK_LEEWAY_SECS: u64 = 2;

/// Why a token was refused. The messages go to the client as the 401 detail, so they name the
/// broken rule and nothing of the library underneath.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Past its `exp`.
    #[error("the bearer token has expired")]
    Expired,
    /// Before its `nbf`, or issued in the future (`iat`).
    #[error("the bearer token is not valid yet")]
    NotYetValid,
    /// Signed with another secret.
    #[error("the bearer token's signature does not match")]
    BadSignature,
    /// Not a JWT Ordo could have issued (wrong algorithm, issuer, claims or encoding).
    #[error("the bearer token is malformed or was not issued by Ordo")]
    Malformed(#[source] jsonwebtoken::errors::Error),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidSignature => Self::BadSignature,
            _ => Self::Malformed(e),
        }
    }
}

/// Signs and verifies tokens with one secret. Cheap to clone (every request carries it).
#[derive(Clone)]
pub struct Keys(Arc<KeysInner>);

struct KeysInner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens whose signature, issuer and claims checked out, with the times still to check on
    /// each use. A shopper sends the same token with every request; checking its signature and
    /// parsing its claims each time was about 4% of the server's CPU for an order history.
    verified: Mutex<LruCache<String, Verified>>,
}

/// Tokens remembered as verified. A token is a few hundred bytes, so this is a few megabytes.
const VERIFIED_TOKENS: usize = 10_000;

/// What a verified token says, kept to check its times again on each use.
#[derive(Clone)]
struct Verified {
    caller: Caller,
    iat: u64,
    exp: u64,
    nbf: Option<u64>,
}

impl Verified {
    /// The caller, if the token is within its times at `now`: `exp` passed (less the leeway)
    /// refuses it, and so do `nbf` or `iat` in the future.
    fn at(self, now: u64) -> Result<Caller, TokenError> {
        // jsonwebtoken accepts `exp == now - leeway`; a token's last valid second is `exp - 1`.
        if self.exp + CLOCK_LEEWAY_SECS <= now {
            return Err(TokenError::Expired);
        }
        if self.iat > now + CLOCK_LEEWAY_SECS
            || self.nbf.is_some_and(|nbf| nbf > now + CLOCK_LEEWAY_SECS)
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(self.caller)
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Keys for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Self(Arc::new(KeysInner {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            verified: Mutex::new(LruCache::new(
                NonZeroUsize::new(VERIFIED_TOKENS).expect("not zero"),
            )),
        }))
    }

    /// The secret from `configured` (`ORDO_JWT_SECRET`), else the data directory's own,
    /// generated on first use.
    pub fn load(configured: Option<&str>, data: &DataDir) -> anyhow::Result<Self> {
        if let Some(secret) = configured {
            anyhow::ensure!(
                secret.len() >= MIN_SECRET_BYTES,
                "ORDO_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes, got {}",
                secret.len()
            );
            return Ok(Self::new(secret.as_bytes()));
        }
        Ok(Self::new(&data_dir_secret(&data.data_dir.join("jwt-secret"))?))
    }

    /// A signed token for `subject` in `role`, valid for `ttl` (at least a second).
    pub fn mint(&self, subject: &str, role: Role, ttl: Duration) -> (String, u64) {
        self.mint_at(subject, role, ttl, unix_now())
    }

    fn mint_at(&self, subject: &str, role: Role, ttl: Duration, now: u64) -> (String, u64) {
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
            nbf: None,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        (token, claims.exp)
    }

    /// The caller a token names, if its signature, issuer and times check out: `exp` passed
    /// (less the leeway) refuses it, and so do `nbf` or `iat` in the future.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        self.verify_at(token, unix_now())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Caller, TokenError> {
        let remembered = self.0.verified.lock().ok().and_then(|mut v| v.get(token).cloned());
        if let Some(verified) = remembered {
            return verified.at(now);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)?;
        let claims = data.claims;
        let verified = Verified {
            caller: Caller { subject: claims.sub, role: claims.role },
            iat: claims.iat,
            exp: claims.exp,
            nbf: claims.nbf,
        };
        if let Ok(mut remembered) = self.0.verified.lock() {
            remembered.put(token.to_owned(), verified.clone());
        }
        verified.at(now)
    }
}

fn unix_now() -> u64 {
    u64::try_from(ordo_eventstore::clock::now_millis() / 1_000).unwrap_or(0)
}

/// Reads the secret file, creating it (owner-only, 32 random bytes, hex) if absent.
fn data_dir_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().as_bytes().to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating data directory {}", parent.display()))?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // `create_new`: if two processes race, one writes and the other reads the winner's.
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            Ok(secret.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().as_bytes().to_vec())
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_to_its_subject_and_role() {
        let keys = Keys::new(&[7; 32]);
        let (token, _) = keys.mint("c-1", Role::Customer, Duration::from_secs(60));
        let caller = keys.verify(&token).expect("valid");
        assert_eq!(caller, Caller { subject: "c-1".into(), role: Role::Customer });
        assert!(caller.may_act_for("c-1") && !caller.may_act_for("c-2"));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let (token, _) = Keys::new(&[1; 32]).mint("admin", Role::Admin, Duration::from_secs(60));
        assert!(Keys::new(&[2; 32]).verify(&token).is_err());
    }

    fn signed(keys: &Keys, iat: u64, exp: u64, nbf: Option<u64>) -> String {
        let claims =
            Claims { sub: "c-1".into(), role: Role::Customer, iss: ISSUER.into(), iat, exp, nbf };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.0.encoding)
            .expect("signed")
    }

    #[test]
    fn a_remembered_token_altered_in_one_character_is_refused() {
        let keys = Keys::new(&[7; 32]);
        let (token, _) = keys.mint("c-1", Role::Customer, Duration::from_secs(60));
        assert!(keys.verify(&token).is_ok(), "verified, and now remembered");
        let mut altered = token.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert!(matches!(keys.verify(&altered), Err(TokenError::BadSignature)));
        assert!(keys.verify(&token).is_ok());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = Keys::new(&[7; 32]);
        let hour_ago = unix_now() - 3_600;
        let token = signed(&keys, hour_ago - 60, hour_ago, None);
        assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));
    }

    #[test]
    fn a_token_is_refused_once_its_lifetime_and_the_leeway_have_passed() {
        let keys = Keys::new(&[7; 32]);
        let t0 = 1_900_000_000;
        let (token, exp) = keys.mint_at("c-1", Role::Customer, Duration::from_secs(1), t0);
        assert_eq!(exp, t0 + 1);
        assert!(keys.verify_at(&token, t0).is_ok());
        // From here on the token is remembered as verified: its times are checked still.
        assert!(keys.verify_at(&token, exp + CLOCK_LEEWAY_SECS - 1).is_ok());
        assert!(matches!(
            keys.verify_at(&token, exp + CLOCK_LEEWAY_SECS),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn a_token_seconds_past_its_expiry_is_refused() {
        let keys = Keys::new(&[7; 32]);
        let now = unix_now();
        let token = signed(&keys, now - 60, now - 5, None);
        assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let keys = Keys::new(&[7; 32]);
        let now = unix_now();
        let future_nbf = signed(&keys, now, now + 3_600, Some(now + 600));
        assert!(matches!(keys.verify(&future_nbf), Err(TokenError::NotYetValid)));
        let future_iat = signed(&keys, now + 600, now + 3_600, None);
        assert!(matches!(keys.verify(&future_iat), Err(TokenError::NotYetValid)));
        let past_nbf = signed(&keys, now, now + 3_600, Some(now - 1));
        assert!(keys.verify(&past_nbf).is_ok());
    }

    #[test]
    fn refusals_name_the_rule_not_the_library() {
        let keys = Keys::new(&[7; 32]);
        let now = unix_now();
        for token in [signed(&keys, now - 60, now - 5, None), "not.a.jwt".to_owned()] {
            let detail = keys.verify(&token).expect_err("refused").to_string();
            assert!(detail.starts_with("the bearer token"), "{detail}");
            assert!(!detail.contains("Invalid") && !detail.contains("Signature"), "{detail}");
        }
    }

    #[test]
    fn the_generated_secret_is_kept_in_the_data_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = DataDir { data_dir: dir.path().join("data") };
        let (token, _) =
            Keys::load(None, &data).expect("generated").mint("x", Role::Admin, GUEST_TOKEN_TTL);
        assert!(Keys::load(None, &data).expect("reloaded").verify(&token).is_ok());
        assert!(Keys::load(Some("too short"), &data).is_err());
    }
}
