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

/// The document repeats some domain limits as schema bounds (poem-openapi takes literals):
/// each must equal the one definition in the domain, so a limit changes in one place.
#[test]
fn the_documents_bounds_are_the_domains_limits() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/openapi.json");
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("document")).expect("json");
    let maximum = |schema: &str, field: &str| {
        document["components"]["schemas"][schema]["properties"][field]["maximum"]
            .as_f64()
            .unwrap_or_else(|| panic!("{schema}.{field} has a maximum"))
    };
    let line_cap = f64::from(ordo_domain::cart::MAX_QUANTITY_PER_LINE);
    assert_eq!(maximum("QuantityDto", "quantity"), line_cap);
    let price_cap = ordo_domain::MAX_AMOUNT_MINOR as f64;
    assert_eq!(maximum("NewProductDto", "price_minor"), price_cap);
    assert_eq!(maximum("PriceDto", "price_minor"), price_cap);
}
