//! Shared support for the end-to-end tests in `tests/`.
//!
//! End-to-end tests drive Ordo the way a user would: they start the real `ordo serve` binary
//! on a free port with a temporary data directory (and, unless told otherwise, the private
//! Redis it starts itself), and talk HTTP to it.

pub mod cluster;

use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;

/// The workspace root, where `Cargo.toml`, `schemas/` and `justfile` live.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `cargo` running this test, so nested cargo calls use the same toolchain.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// The `ordo` binary of this build. `cargo test --workspace --all-targets` (what `just test`
/// runs) builds it before any test starts; `ORDO_BIN` points elsewhere.
pub fn ordo_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ORDO_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let bin = target.join("debug").join("ordo");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p ordo-api` (or `just test`) first",
        bin.display()
    );
    bin
}

/// A running `ordo serve`, killed (with its private Redis) when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The data directory.
    pub data: PathBuf,
    /// Plain HTTP client.
    pub http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

/// Options for [`Server::start_with`].
#[derive(Default)]
pub struct Options {
    /// `REDIS_URL` for the server (default: its own private Redis).
    pub redis_url: Option<String>,
    /// Extra arguments to `ordo serve`.
    pub args: Vec<String>,
    /// Where the server's log (stderr) goes (default: the test's stderr).
    pub log: Option<PathBuf>,
}

impl Server {
    /// Serves from a fresh temporary data directory.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// Serves with `options` from a fresh temporary data directory.
    pub fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let mut server = Self::start_in(&data, options);
        server._dir = Some(dir);
        server
    }

    /// Serves from `data` (kept after the server stops).
    pub fn start_in(data: &Path, options: Options) -> Self {
        let port = free_port();
        let mut command = Command::new(ordo_bin());
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data)
            .args(&options.args)
            .env_remove("REDIS_URL")
            .env_remove("ORDO_JWT_SECRET")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if let Some(url) = &options.redis_url {
            command.env("REDIS_URL", url);
        }
        if let Some(log) = &options.log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("log file opens");
            command.stderr(file);
        }
        let child = command.spawn().expect("ordo serve starts");
        let server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            data: data.to_owned(),
            http: reqwest::Client::new(),
            _dir: None,
        };
        server.wait_until_live();
        server
    }

    fn wait_until_live(&self) {
        let started = Instant::now();
        while !is_live(&self.base) {
            assert!(started.elapsed() < Duration::from_secs(30), "ordo serve never came up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A token from `ordo token` for this server's data directory.
    pub fn token(&self, args: &[&str]) -> String {
        let output = Command::new(ordo_bin())
            .arg("token")
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env_remove("ORDO_JWT_SECRET")
            .output()
            .expect("ordo token runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
    }

    /// An admin token.
    pub fn admin(&self) -> String {
        self.token(&["--role", "admin"])
    }

    /// A new guest shopper's token (from `POST /v1/sessions`) and customer id.
    pub async fn guest(&self) -> (String, String) {
        let (status, body) = self.call("POST", "/v1/sessions", None, None).await;
        assert_eq!(status, 201, "{body}");
        (
            body["token"].as_str().expect("token").into(),
            body["customer_id"].as_str().expect("id").into(),
        )
    }

    /// Sends a request and returns status and JSON body (`null` when there is none).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let response = self.send(method, path, token, body, &[]).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Sends a request with extra headers and returns the raw response.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request sent")
    }

    /// Lists a product with `stock` units (admin) and returns the receipt's position.
    pub async fn stock_product(
        &self,
        admin: &str,
        sku: &str,
        name: &str,
        price: i64,
        stock: u32,
    ) -> u64 {
        let product = json!({
            "sku": sku, "name": name, "category": "kitchen", "brand": "Potter",
            "description": "Made by hand.", "price_minor": price,
        });
        let (status, body) = self.call("POST", "/v1/products", Some(admin), Some(product)).await;
        assert_eq!(status, 201, "{body}");
        let path = format!("/v1/products/{sku}/stock");
        let (status, body) =
            self.call("POST", &path, Some(admin), Some(json!({ "quantity": stock }))).await;
        assert_eq!(status, 200, "{body}");
        body["position"].as_u64().expect("position")
    }

    /// Opens a cart for `token` and returns its id.
    pub async fn open_cart(&self, token: &str) -> String {
        let (status, body) = self.call("POST", "/v1/carts", Some(token), None).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("cart id").to_owned()
    }

    /// `token`'s checkout of `quantity` units of `sku` from a new cart, paid with an approving
    /// test card: the order's receipt (`id`, `position`).
    pub async fn check_out(&self, token: &str, sku: &str, quantity: u32) -> Value {
        let cart = self.open_cart(token).await;
        let item = format!("/v1/carts/{cart}/items/{sku}");
        let (status, body) =
            self.call("PUT", &item, Some(token), Some(json!({ "quantity": quantity }))).await;
        assert_eq!(status, 200, "{body}");
        let checkout = json!({ "shipping_address": address(), "payment_token": "tok_visa" });
        let path = format!("/v1/carts/{cart}/checkout");
        let (status, placed) = self.call("POST", &path, Some(token), Some(checkout)).await;
        assert_eq!(status, 201, "{placed}");
        placed
    }

    /// The types of `stream`'s events, read from the log (admin endpoint, not Redis).
    pub async fn event_types(&self, admin: &str, stream: &str) -> Vec<String> {
        let path = format!("/v1/admin/streams/{stream}/events");
        let (status, page) = self.call("GET", &path, Some(admin), None).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().expect("events");
        events.iter().map(|e| e["type"].as_str().unwrap_or("").to_owned()).collect()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (`SIGSTOP`, `SIGCONT`, ...) to the server.
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.pid()).expect("a pid fits an i32");
        kill(Pid::from_raw(pid), signal).unwrap_or_else(|e| panic!("{signal} to {pid}: {e}"));
    }

    /// Kills the server outright (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill");
        child.wait().expect("reaped");
    }

    /// Polls `GET path` until `done` holds for its JSON body (10 s at most); returns the body.
    pub async fn eventually(
        &self,
        path: &str,
        token: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.call("GET", path, Some(token), None).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{path} never got there: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        child.wait().expect("exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM first, so the server stops its private Redis; then make sure.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A shipping address for checkouts.
pub fn address() -> Value {
    json!({ "name": "Ada Lovelace", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE" })
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this test process has not handed
/// out before. The kernel may give the same ephemeral port to two binds in a row once the first
/// is closed, so two tests starting servers at once could both get it: one server then fails to
/// bind, and its test talks to the other test's server (seen once as a 401 for a token signed
/// with the other server's secret).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        if GIVEN.lock().expect("ports handed out").insert(port) {
            return port;
        }
    }
}

/// Whether `GET {base}/health/live` answers 200, over a plain TCP request so that waiting
/// for startup needs no async runtime.
fn is_live(base: &str) -> bool {
    use std::io::{Read, Write};
    let host = base.strip_prefix("http://").unwrap_or(base);
    let Ok(mut stream) = std::net::TcpStream::connect(host) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /health/live HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}
