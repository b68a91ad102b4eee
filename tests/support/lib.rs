//! Shared support for the end-to-end tests in `tests/`.
//!
//! End-to-end tests drive Ordo the way a user would: through its binaries and its public
//! crates. What they share (locating the workspace, later starting private servers) lives here.

use std::path::PathBuf;

/// The workspace root, where `Cargo.toml`, `schemas/` and `justfile` live.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `cargo` running this test, so nested cargo calls use the same toolchain.
pub fn cargo() -> std::process::Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(workspace_root());
    command
}
