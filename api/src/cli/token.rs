//! `ordo token`: a bearer token for operators and scripts, signed with the server's secret.

use crate::cli::environment::DataDir;
use crate::http::auth::Keys;
use ordo_application::Role;
use std::time::Duration;

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
    /// Lifetime, e.g. `12h` or `30days` (at least `1s`).
    #[arg(long, default_value = "12h", value_parser = parse_ttl)]
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

/// A token lifetime: a humantime duration of at least one second (a token is checked to the
/// second, so anything shorter would be born expired).
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl.as_secs() == 0 {
        return Err("a token must live at least 1s".to_owned());
    }
    Ok(ttl)
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
    fn a_zero_lifetime_is_refused() {
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("500ms").is_err());
        assert_eq!(parse_ttl("1s"), Ok(Duration::from_secs(1)));
    }
}
