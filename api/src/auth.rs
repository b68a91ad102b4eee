//! Who is calling: signed bearer tokens (JWT, HS256) carrying a subject and a role.
//!
//! Tokens are stateless: the server checks the signature, the issuer and the expiry, nothing
//! else, so any number of servers sharing the secret accept each other's tokens. The secret
//! comes from `ORDO_JWT_SECRET` (at least 32 bytes), or is generated once into the data
//! directory (`jwt-secret`, readable by its owner only), so `just run` needs no setup and
//! tokens survive restarts. See `docs/adr/0008-auth-and-idempotency.md`.

use crate::environment::DataDir;
use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `iss` claim of every token Ordo issues.
const ISSUER: &str = "ordo";
/// Shortest secret accepted from configuration.
const MIN_SECRET_BYTES: usize = 32;
/// Lifetime of a guest shopper's session token.
pub const GUEST_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A shopper: their own carts and orders.
    Customer,
    /// Staff: the catalogue, every order, the audit endpoints.
    Admin,
}

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
}

/// A verified caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Customer id or operator name.
    pub subject: String,
    /// Role.
    pub role: Role,
}

impl Caller {
    /// Whether the caller is staff.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may see or change what belongs to `customer_id`.
    pub fn may_act_for(&self, customer_id: &str) -> bool {
        self.is_admin() || self.subject == customer_id
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid bearer token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
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
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
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

    /// A signed token for `subject` in `role`, valid for `ttl`.
    pub fn mint(&self, subject: &str, role: Role, ttl: Duration) -> (String, u64) {
        let now = unix_now();
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        (token, claims.exp)
    }

    /// The caller a token names, if its signature, issuer and expiry check out.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?;
        Ok(Caller { subject: data.claims.sub, role: data.claims.role })
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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

/// Options of `ordo token`.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// Role of the token.
    #[arg(long, value_enum, default_value = "admin")]
    pub role: RoleArg,
    /// Customer id the token acts as (customer tokens; default: a new guest id).
    #[arg(long)]
    pub customer: Option<String>,
    /// Operator name recorded as the subject of admin tokens.
    #[arg(long, default_value = "operator")]
    pub name: String,
    /// Lifetime, e.g. `12h` or `30days`.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// Signing secret (default: the data directory's own).
    #[arg(long, env = "ORDO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
}

/// The role flag of `ordo token`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    /// Staff.
    Admin,
    /// A shopper.
    Customer,
}

/// Runs `ordo token`: prints a bearer token for operators and scripts.
pub fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let keys = Keys::load(args.jwt_secret.as_deref(), &args.data)?;
    let (subject, role) = match args.role {
        RoleArg::Admin => {
            anyhow::ensure!(args.customer.is_none(), "--customer only applies to --role customer");
            (args.name.clone(), Role::Admin)
        }
        RoleArg::Customer => {
            let id =
                args.customer.clone().unwrap_or_else(|| format!("guest-{}", uuid::Uuid::now_v7()));
            ordo_domain::CustomerId::parse(id.clone())?;
            (id, Role::Customer)
        }
    };
    let (token, _) = keys.mint(&subject, role, args.ttl);
    println!("{token}");
    Ok(())
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

    #[test]
    fn an_expired_token_is_refused() {
        let keys = Keys::new(&[7; 32]);
        let hour_ago = unix_now() - 3_600;
        let claims = Claims {
            sub: "c-1".into(),
            role: Role::Customer,
            iss: ISSUER.into(),
            iat: hour_ago - 60,
            exp: hour_ago,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
            .expect("signed");
        assert!(keys.verify(&token).is_err());
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
