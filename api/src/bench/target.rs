//! The server a bench drives: one it starts for the run (`ordo serve` from this binary, on a
//! temporary data directory with its private Redis, and a private PostgreSQL cluster for
//! `--store postgres`), owned and stopped with the run; or one someone else runs (`--url`).

use crate::http::auth::Keys;
use anyhow::Context;
use ordo_application::Role;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server the benchmark talks to (and, if it started it, owns).
pub(super) struct Target {
    pub(super) base: String,
    pub(super) admin: String,
    child: Option<Child>,
    /// The started server's temporary directory, removed with the run.
    dir: Option<tempfile::TempDir>,
    /// A PostgreSQL cluster started for the run (`--store postgres`), stopped after the server.
    _cluster: Option<ordo_eventstore::postgres::private::PrivatePostgres>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

impl Target {
    /// The process id of the server, if the bench started it.
    pub(super) fn server_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The started server's data directory (its private Redis listens under it).
    pub(super) fn data_dir(&self) -> Option<std::path::PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("data"))
    }

    /// A server someone else runs, driven with their admin token.
    pub(super) fn existing(url: &str, token: &str) -> Self {
        Target {
            base: url.trim_end_matches('/').to_owned(),
            admin: token.to_owned(),
            child: None,
            dir: None,
            _cluster: None,
        }
    }
}

pub(super) fn start_server(dir: Option<&std::path::Path>) -> anyhow::Result<Target> {
    start_server_on(dir, None)
}

/// Starts `ordo serve` on `store` (a `--store` location; default: the embedded file).
pub(super) fn start_server_on(
    dir: Option<&std::path::Path>,
    store: Option<&str>,
) -> anyhow::Result<Target> {
    let dir = super::temp_dir(dir)?;
    // `postgres`: a private cluster for this run, as `ordo bench store --store postgres` does.
    let (cluster, store) = match store {
        Some("postgres") => {
            let cluster = ordo_eventstore::postgres::private::PrivatePostgres::start()?;
            let url = cluster.url();
            (Some(cluster), Some(url))
        }
        other => (None, other.map(str::to_owned)),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let secret = format!("bench-secret-{}", uuid::Uuid::now_v7());
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]);
    command.arg(dir.path().join("data"));
    if let Some(store) = &store {
        command.args(["--store", store]);
    }
    let child = command
        .env("ORDO_JWT_SECRET", &secret)
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .spawn()
        .context("starting ordo serve")?;
    let (admin, _) =
        Keys::new(secret.as_bytes()).mint("bench", Role::Admin, Duration::from_secs(3600));
    Ok(Target {
        base: format!("http://127.0.0.1:{port}"),
        admin,
        child: Some(child),
        dir: Some(dir),
        _cluster: cluster,
    })
}

/// Waits until the server at `base` answers `/health/ready` (at most 30 s).
pub(super) async fn wait_until_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
