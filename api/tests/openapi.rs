//! `schemas/openapi.json` is exactly what `ordo openapi` prints, so the published document
//! cannot drift from the code. `ORDO_UPDATE_SCHEMAS=1` rewrites it.

#[test]
fn the_published_api_document_is_up_to_date() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .arg("openapi")
        .output()
        .expect("ordo runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/openapi.json");
    if std::env::var_os("ORDO_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &out.stdout).expect("write schemas/openapi.json");
    }
    let published = std::fs::read(&path).unwrap_or_default();
    assert!(published == out.stdout, "schemas/openapi.json is stale: run ORDO_UPDATE_SCHEMAS=1 cargo test -p ordo-api --test openapi");
}
