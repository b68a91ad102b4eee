//! A private PostgreSQL cluster: `initdb` into a fresh directory, `pg_ctl start` on a free
//! loopback port, removed when the handle drops. For tests, benches and trying Ordo out on a
//! machine with Debian's `postgresql` package, the way `PrivateRedis` does for Redis.
//!
//! PostgreSQL refuses to run as root; when the caller is root, the cluster runs as the
//! `postgres` system user (which the package creates), through util-linux's `setpriv`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a private cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PrivatePostgresError {
    /// `initdb`/`pg_ctl` are not installed.
    #[error("PostgreSQL's initdb and pg_ctl were not found (install Debian's postgresql package, or `just bootstrap`)")]
    NotInstalled,
    /// A step failed.
    #[error("{step} failed: {output}")]
    Step {
        /// What was run.
        step: &'static str,
        /// What it printed.
        output: String,
    },
    /// The file system failed.
    #[error("private PostgreSQL directory")]
    Io(#[from] std::io::Error),
}

/// A running private cluster, stopped and deleted on drop.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
}

impl PrivatePostgres {
    /// Creates and starts a cluster with a trusted superuser `ordo` on 127.0.0.1.
    pub fn start() -> Result<Self, PrivatePostgresError> {
        let bin = find_bin().ok_or(PrivatePostgresError::NotInstalled)?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("ordo-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let run_as = if is_root() { postgres_user() } else { None };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        }
        let port = free_port()?;
        let cluster = Self { bin, dir, port, run_as };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &["-D", path(&data), "-U", "ordo", "--auth=trust", "-E", "UTF8", "--no-instructions"],
        )?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            cluster.dir.display()
        );
        let log = cluster.dir.join("log");
        cluster
            .run("pg_ctl", &["-D", path(&data), "-o", &options, "-l", path(&log), "-w", "start"])?;
        Ok(cluster)
    }

    /// `postgres://` URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://ordo@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &'static str, args: &[&str]) -> Result<(), PrivatePostgresError> {
        let exe = self.bin.join(program);
        let mut command = match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let output = command.args(args).current_dir(&self.dir).output()?;
        if output.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        Err(PrivatePostgresError::Step { step: program, output: text.trim().to_owned() })
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.run("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|d| d.join("initdb").is_file())
            .collect();
        versions.sort_by_key(|d| {
            d.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions.pop()
    })
}

fn is_root() -> bool {
    // The owner of this process's /proc entry is its effective user.
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The `postgres` user's uid and gid, from `/etc/passwd`.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .flatten()
    })
}

fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr().map(|a| a.port())
}
