//! A private `redis-server` child process on a Unix socket, for `just run`, tests and benches.
//!
//! A Unix socket in a private directory means no port to pick or collide on and no server
//! anyone else can reach. The child is killed when the handle drops, and, where util-linux's
//! `setpriv` is installed (every Debian and Ubuntu: it is an essential package), also when its
//! parent dies without dropping it (SIGKILL, a crash): it is started under
//! `setpriv --pdeathsig TERM`, so the kernel sends it SIGTERM when the thread that started it
//! exits. Start it from a thread that lives as long as its owner (the main thread, or the
//! thread of a test), not from a short-lived blocking-pool thread.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a private server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    /// `redis-server` is not installed or failed to start.
    #[error("cannot start redis-server ({0}); install it with `just bootstrap` or set REDIS_URL")]
    Spawn(std::io::Error),
    /// It started but never accepted connections.
    #[error("redis-server did not come up within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
    /// It exited before it was ready (a bad option, an unreadable append-only file).
    #[error("redis-server exited while starting; see {0}")]
    Exited(PathBuf),
    /// A leftover server on the socket did not stop when asked.
    #[error("the redis-server on {1} did not stop within {0:?}")]
    StillRunning(Duration, PathBuf),
}

/// A running private Redis.
pub struct PrivateRedis {
    child: Child,
    socket: PathBuf,
    port: Option<u16>,
}

/// How a private Redis is started beyond its directory.
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// Keep an append-only file.
    pub persist: bool,
    /// Also listen on this loopback TCP port (replication needs TCP).
    pub port: Option<u16>,
    /// Replicate the server listening on this loopback port.
    pub replica_of: Option<u16>,
    /// How long the server may take to accept connections ([`READY_WITHIN`] if `None`). Loading
    /// its data does not count: see [`PrivateRedis::start_with`].
    pub ready_within: Option<Duration>,
    /// Further `redis-server` arguments, after Ordo's own.
    pub args: Vec<String>,
}

/// How long a private server may take to accept connections by default.
pub const READY_WITHIN: Duration = Duration::from_secs(10);

/// What a server on a socket answers to `PING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ping {
    /// Ready.
    Pong,
    /// Up, not ready: reading its data into memory (`-LOADING`), or too busy doing so to
    /// answer within a second (a large key loads without a pause for clients).
    Loading,
    /// Nothing answers, or something else does.
    Silent,
}

impl PrivateRedis {
    /// Starts `redis-server` with its socket, log and (if `persist`) append-only file in `dir`.
    pub fn start(dir: &Path, persist: bool) -> Result<Self, RedisServerError> {
        Self::start_with(dir, &RedisOptions { persist, ..RedisOptions::default() })
    }

    /// A replica of `primary` (which must listen on a port), on its own socket in `dir`.
    pub fn start_replica(dir: &Path, primary: &PrivateRedis) -> Result<Self, RedisServerError> {
        Self::start_with(dir, &RedisOptions { replica_of: primary.port, ..RedisOptions::default() })
    }

    /// Starts `redis-server` in `dir` as `options` say, and returns once it answers `PING`.
    ///
    /// A server reloading its append-only file accepts connections at once but answers every
    /// command with `LOADING` until its data is in memory, which takes as long as the data is
    /// large: seconds for a shop's read models (a 450 MB file took 11 s here), longer for more.
    /// So only accepting connections is bounded ([`RedisOptions::ready_within`]); the load is
    /// waited for as long as the server lives. Giving up on a fixed time instead stopped
    /// `ordo serve` from starting on a large data directory, and killed the server it started.
    pub fn start_with(dir: &Path, options: &RedisOptions) -> Result<Self, RedisServerError> {
        let persist = options.persist;
        std::fs::create_dir_all(dir).map_err(RedisServerError::Spawn)?;
        // redis-server changes into `--dir` before opening its socket and log, so relative
        // paths (the default `./data`) would point somewhere else: make them absolute.
        let dir = &std::fs::canonicalize(dir).map_err(RedisServerError::Spawn)?;
        let socket = dir.join("redis.sock");
        let log = dir.join("redis.log");
        let _ = std::fs::remove_file(&socket);
        let mut command = match which("setpriv") {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "TERM", "--", "redis-server"]);
                c
            }
            None => Command::new("redis-server"),
        };
        let port = options.port.map_or("0".to_owned(), |p| p.to_string());
        command.args(["--port", &port, "--bind", "127.0.0.1"]);
        if let Some(primary) = options.replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = command
            .args(["--unixsocketperm", "700", "--save", ""])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .args(["--appendonly", if persist { "yes" } else { "no" }])
            .args(&options.args)
            // Its own process group: ctrl-c in a terminal signals the whole foreground group,
            // and the server must stop Redis itself, after its last write, not see it die first
            // (and restart it while shutting down).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(RedisServerError::Spawn)?;
        let mut server = Self { child, socket, port: options.port };
        server.wait_until_ready(options.ready_within.unwrap_or(READY_WITHIN), log)?;
        Ok(server)
    }

    /// Waits until the server answers `PING`: at most `within` for it to accept connections,
    /// then, once it has said it is loading, for as long as it lives.
    fn wait_until_ready(&mut self, within: Duration, log: PathBuf) -> Result<(), RedisServerError> {
        let started = Instant::now();
        let mut loading = false;
        loop {
            match ping(&self.socket) {
                Ping::Pong => return Ok(()),
                Ping::Loading if !loading => {
                    loading = true;
                    tracing::info!(log = %log.display(), "the private Redis is loading its data");
                }
                Ping::Loading => {}
                Ping::Silent if !loading && started.elapsed() > within => {
                    return Err(RedisServerError::NotReady(within, log));
                }
                Ping::Silent => {}
            }
            if self.has_exited() {
                return Err(RedisServerError::Exited(log));
            }
            std::thread::sleep(Duration::from_millis(if loading { 20 } else { 5 }));
        }
    }

    /// The `redis+unix://` URL of this server.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// The loopback TCP port it listens on, if it was given one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the server has exited (killed, crashed).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Shuts down a server left on `socket` by an owner that died (it persists its append-only
/// file first; one still loading it leaves the file as it is), and waits until the socket no
/// longer answers. Nothing to do if none answers.
pub fn shut_down_orphan(socket: &Path) -> Result<bool, RedisServerError> {
    use std::io::Write;
    if ping(socket) == Ping::Silent {
        return Ok(false);
    }
    if let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) {
        let _ = stream.write_all(b"SHUTDOWN\r\n");
    }
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    while ping(socket) != Ping::Silent {
        if started.elapsed() > timeout {
            return Err(RedisServerError::StillRunning(timeout, socket.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(true)
}

/// The process id of the server answering on `socket` (from `INFO server`), if one answers.
pub fn pid_on(socket: &Path) -> Option<u32> {
    let client = redis::Client::open(format!("redis+unix://{}", socket.display())).ok()?;
    let mut connection = client.get_connection().ok()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut connection).ok()?;
    info.lines().find_map(|l| l.strip_prefix("process_id:")).and_then(|p| p.trim().parse().ok())
}

/// The path of `program` on `PATH`, if it is there.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Whether the server on `socket` answers `PING` with `PONG` (is up and has loaded its data).
pub fn answers_ping(socket: &Path) -> bool {
    ping(socket) == Ping::Pong
}

/// Whether a server answers on `socket` once it has loaded its data: `false` at once if none
/// answers, else `true` when the one there has finished loading (however long that takes), or
/// `false` if it goes away first. A tool that would share another process's private Redis
/// asks this, not [`answers_ping`]: one still loading is not absent, and starting a second
/// server on the same files would have two of them writing one append-only file.
pub fn answers_once_loaded(socket: &Path) -> bool {
    let mut said = false;
    loop {
        match ping(socket) {
            Ping::Pong => return true,
            Ping::Silent => return false,
            Ping::Loading => {
                // Said once, as `PrivateRedis::start_with` does: a tool that waits seconds in
                // silence looks hung.
                if !said {
                    said = true;
                    tracing::info!(socket = %socket.display(), "waiting for the private Redis to load its data");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn ping(socket: &Path) -> Ping {
    use std::io::{ErrorKind, Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return Ping::Silent;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 8];
    if stream.write_all(b"PING\r\n").is_err() {
        return Ping::Silent;
    }
    match stream.read(&mut reply) {
        Ok(n) if reply[..n].starts_with(b"+PONG") => Ping::Pong,
        Ok(n) if reply[..n].starts_with(b"-LOADING") => Ping::Loading,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ping::Loading,
        _ => Ping::Silent,
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
