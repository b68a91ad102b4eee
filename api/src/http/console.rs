//! The web console (`api/console/`): plain ES modules, compiled into the binary and served at
//! `/` and `/console/*` in front of the API. They call only the public API (ADR 0015).

use poem::http::{header, Method, StatusCode};
use poem::{IntoResponse, Request, Response};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The files of `api/console/`, compiled in: `asset!("name", "content type")`.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../../console/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("shop.js", "text/javascript; charset=utf-8"),
    asset!("staff.js", "text/javascript; charset=utf-8"),
];

/// Scripts and styles from this origin only, no inline script; product images may be remote.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: https:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Each asset's entity tag: a hash of its content, so a new binary's console is fetched anew.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hasher = DefaultHasher::new();
            asset.body.hash(&mut hasher);
            format!("\"{:016x}\"", hasher.finish())
        })
        .collect()
});

/// The asset a path names: `/` is the page, `/console/<file>` the rest.
fn asset_for(path: &str) -> Option<usize> {
    let name = match path {
        "/" => "index.html",
        _ => path.strip_prefix("/console/")?,
    };
    ASSETS.iter().position(|a| a.name == name)
}

/// The answer to GET and HEAD on the console's paths; `None` for everything else (the API's).
pub(super) fn answer(req: &Request) -> Option<Response> {
    let wanted = (req.method() == Method::GET || req.method() == Method::HEAD)
        .then(|| asset_for(req.uri().path()))
        .flatten();
    let index = wanted?;
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        // Revalidate every time: cheap (a 304), and a new binary's console shows at once.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    let fresh = req
        .header(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return Some(builder.status(StatusCode::NOT_MODIFIED).finish());
    }
    Some(builder.content_type(asset.content_type).body(asset.body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_console_paths_when_looked_up_then_the_page_and_its_files_are_found_and_nothing_else() {
        assert_eq!(asset_for("/").map(|i| ASSETS[i].name), Some("index.html"));
        assert_eq!(asset_for("/console/app.js").map(|i| ASSETS[i].name), Some("app.js"));
        assert_eq!(asset_for("/console/../Cargo.toml"), None);
        assert_eq!(asset_for("/v1/products"), None);
        assert_eq!(asset_for("/console/"), None);
    }

    #[test]
    fn given_the_page_when_its_modules_are_listed_then_every_import_is_served() {
        // A module imported but not compiled in would 404 in the browser and blank the console.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line.split('"').nth(1).expect("a quoted module path");
                let name = target.trim_start_matches("./");
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {target}, which is not served",
                    asset.name
                );
            }
        }
    }
}
