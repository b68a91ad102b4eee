//! Search against a plain model of filtering, sorting and paging, on a catalogue big enough
//! for the search script's walking paths.

mod shop;

use ordo_domain::product::{self, Product, ProductCommand};
use ordo_domain::Timestamp;
use ordo_eventstore::command::Repository;
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore, EventStore};
use ordo_projections::query::{Documents, ReadModels, SearchQuery, SearchSort};
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{Runner, RunnerConfig};
use ordo_projections::search;
use ordo_projections::views::{ProductListing, ProductView};
use shop::*;
use std::sync::Arc;

/// A catalogue big enough that searches take the walking paths (200+ matches), checked against
/// a plain model of filtering, sorting and paging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_agrees_with_a_model_on_a_large_catalogue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis");
    let client = redis::Client::open(redis.url()).expect("url");
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb"))).expect("store"),
    );
    let products = Repository::<Product, _>::new(store.clone(), 1_000);
    struct P {
        sku: String,
        name: String,
        brand: &'static str,
        category: &'static str,
        price: i64,
        stock: u32,
    }
    let mut model = Vec::new();
    // 450 products in 30 kinds, and five vases (two at one price): a search matching so few of
    // so many reads them with ZINTER rather than walking an index, and "zirc" begins two of
    // their words. Then 70 trays of 70 different woods, all beginning with "co":
    // more terms than a search unites.
    for i in 0..525 {
        let zircon = (450..455).contains(&i);
        let tray = i >= 455;
        let p = P {
            sku: format!("SKU-{i:04}"),
            name: if tray {
                let wood = |k: usize| char::from(b'a' + (k % 26) as u8);
                format!("Co{}{} Tray", wood(i / 26), wood(i))
            } else if zircon {
                ["Zircon Vase", "Zirconia Vase", "Zircon Zirconia Vase", "Zircon Vase", "Zirconia"]
                    [i - 450]
                    .to_owned()
            } else {
                format!(
                    "{} {}",
                    ["Blue", "Red", "Green"][i % 3],
                    ["Mug", "Bowl", "Plate", "Cup", "Jug"][i % 5]
                )
            },
            brand: if tray { "Tidewater" } else { ["Potter", "Kiln", "Hearth"][i % 3 / 2 + i % 2] },
            category: if tray { "hall" } else { ["kitchen", "table"][i % 2] },
            price: if zircon {
                [300, 150, 300, 450, 120][i - 450]
            } else {
                100 + ((i * 37) % 500) as i64
            },
            stock: if i % 4 == 0 { 0 } else { 5 },
        };
        let list = list(&p.sku, &p.name, "", p.category, p.brand, p.price);
        products.execute(&p.sku, &list, &ctx()).await.expect("listed");
        if p.stock > 0 {
            let receive = ProductCommand::ReceiveStock(product::ReceiveStock {
                quantity: p.stock,
                now: Timestamp(0),
            });
            products.execute(&p.sku, &receive, &ctx()).await.expect("stocked");
        }
        model.push(p);
    }
    let target = store.last_position().await.expect("head");
    Runner::<ProductView, _>::new(
        store.clone(),
        client.get_connection_manager().await.expect("con"),
        1,
        RunnerConfig::default(),
    )
    .await
    .expect("runner")
    .run(target, |_| {})
    .await
    .expect("projected");
    let reads = ReadModels::new(client.get_connection_manager().await.expect("con"));
    // From here on this Redis refuses every write (no replica can acknowledge one), as a
    // read-only replica would: every search below must write nothing, temporary keys included.
    let mut admin = client.get_multiplexed_async_connection().await.expect("con");
    refuse_writes(&mut admin, true).await;

    let words = |p: &P| search::weighted_terms(&p.name, p.brand, "");
    // The last column: whether the page is read with `SORT_RO` rather than the search script
    // (one word alone, or no words and at most one facet, by price; no other filter).
    let queries = [
        ("", None, false, None, SearchSort::Relevance, 0, true),
        ("", None, false, None, SearchSort::PriceDesc, 100, true),
        ("", None, true, None, SearchSort::PriceAsc, 40, false),
        ("", Some("kitchen"), true, Some((150, 400)), SearchSort::PriceDesc, 20, false),
        ("", None, false, Some((300, 450)), SearchSort::Relevance, 0, false),
        ("potter", None, false, None, SearchSort::PriceDesc, 0, false),
        // A word being typed walks its own set (ADR 0029): "pot" begins "potter" only.
        ("pot", None, false, None, SearchSort::Relevance, 0, true),
        ("po", None, false, None, SearchSort::Relevance, 3, true),
        ("pot", None, true, None, SearchSort::Relevance, 0, false),
        ("pot", Some("kitchen"), false, Some((100, 400)), SearchSort::PriceAsc, 0, false),
        ("pot", None, false, Some((150, 450)), SearchSort::Relevance, 2, false),
        ("blue pot", None, false, None, SearchSort::Relevance, 0, false),
        ("blue pot", None, true, None, SearchSort::PriceDesc, 0, false),
        ("blue", Some("table"), false, None, SearchSort::Relevance, 10, false),
        ("blue mug", None, false, None, SearchSort::PriceAsc, 0, false),
        ("red", None, false, Some((200, 300)), SearchSort::Relevance, 0, false),
        ("blue", None, false, None, SearchSort::Relevance, 140, true),
        ("Blue ", None, false, None, SearchSort::Relevance, 0, true),
        // 228 Kiln products: a single word with 200+ matches walks its own index.
        ("kiln", None, false, None, SearchSort::Relevance, 30, true),
        ("kiln", None, false, None, SearchSort::Relevance, 215, true),
        ("kiln", None, false, None, SearchSort::PriceDesc, 0, false),
        ("kiln", Some("table"), false, None, SearchSort::PriceAsc, 5, false),
        ("nothing", None, false, None, SearchSort::Relevance, 0, true),
        // A cursor far past the end (a client may send any number): an empty page.
        ("kiln", None, false, None, SearchSort::Relevance, usize::MAX, false),
        ("", None, false, None, SearchSort::PriceDesc, usize::MAX - 3, false),
        // 227 "table" products: price walks driven by the category's own price index.
        ("", Some("table"), false, None, SearchSort::PriceDesc, 3, true),
        ("", Some("table"), false, Some((100, 400)), SearchSort::PriceAsc, 0, false),
        // Five matches among 455: ZINTER, in its order read forwards or backwards.
        ("zircon vase", None, false, None, SearchSort::PriceDesc, 0, false),
        ("zircon vase", None, false, None, SearchSort::PriceAsc, 1, false),
        ("zircon vase", None, false, None, SearchSort::Relevance, 0, false),
        ("zircon vase", None, false, Some((130, 400)), SearchSort::Relevance, 0, false),
        ("zircon vase", None, false, Some((130, 400)), SearchSort::PriceDesc, 0, false),
        ("vase zircon", Some("kitchen"), true, None, SearchSort::PriceAsc, 0, false),
        // "zirc" begins "zircon" and "zirconia": its set ranks them as their union did (and in
        // an older catalogue the script unites them, ranked by the union's own order or scored
        // and sorted).
        ("zirc", None, false, None, SearchSort::Relevance, 0, true),
        ("zirc", None, true, None, SearchSort::Relevance, 1, false),
        ("zirc", None, false, Some((130, 400)), SearchSort::Relevance, 0, false),
        ("zirc", None, false, None, SearchSort::PriceDesc, 0, false),
        ("vase zirc", None, false, None, SearchSort::Relevance, 0, false),
        ("zircon", None, false, None, SearchSort::Relevance, 0, true),
        ("vase zir", None, false, None, SearchSort::Relevance, 0, false),
        // "co" begins 70 terms: every tray, on every page.
        ("co", None, false, None, SearchSort::Relevance, 0, true),
        ("co", None, false, None, SearchSort::Relevance, 60, true),
        ("tray co", None, false, None, SearchSort::PriceAsc, 55, false),
        ("co", Some("hall"), true, Some((150, 450)), SearchSort::Relevance, 0, false),
    ];
    // The same searches in a catalogue an older Ordo began (no layout stored: a word being typed
    // unites the sets of the terms it begins, in the script) must find the same pages, but for
    // a prefix of more terms than the script unites (64), which only a rebuild fixes.
    for older in [false, true] {
        if older {
            refuse_writes(&mut admin, false).await;
            let layout = "ordo:catalogue:v1:{catalogue}:layout";
            let stored: Option<u32> =
                redis::cmd("GETDEL").arg(layout).query_async(&mut admin).await.expect("layout");
            assert_eq!(stored, Some(2), "the namespace's first batch stores its layout");
            refuse_writes(&mut admin, true).await;
        }
        for (text, category, in_stock, range, sort, offset, walked) in queries {
            let typing = search::words_and_prefix(text).1.is_some();
            if older && text.split(' ').any(|w| w == "co") {
                continue;
            }
            let walked = walked && !(older && typing);
            let q = SearchQuery {
                text: text.into(),
                category: category.map(str::to_owned),
                in_stock,
                min_price: range.map(|r| r.0),
                max_price: range.map(|r| r.1),
                sort,
                cursor: Some(offset.to_string()),
                limit: 15,
                ..SearchQuery::default()
            };
            let tokens = search::tokens(text);
            let mut matches: Vec<(&P, f64)> = model
                .iter()
                .filter(|p| category.is_none_or(|c| p.category == c) && (!in_stock || p.stock > 0))
                .filter(|p| range.is_none_or(|(lo, hi)| p.price >= lo && p.price <= hi))
                .filter_map(|p| {
                    let terms = words(p);
                    let mut score = 0.0;
                    for (i, t) in tokens.iter().enumerate() {
                        let last = i + 1 == tokens.len();
                        let hit: f64 = terms
                            .iter()
                            .filter(|(k, _)| if last { k.starts_with(t.as_str()) } else { *k == t })
                            .map(|(_, w)| *w)
                            .sum();
                        if hit == 0.0 {
                            return None;
                        }
                        score += hit;
                    }
                    Some((p, score))
                })
                .collect();
            match (sort, tokens.is_empty()) {
                (SearchSort::Relevance, false) => {
                    matches.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.sku.cmp(&a.0.sku)))
                }
                (SearchSort::PriceDesc, _) => {
                    matches.sort_by(|a, b| b.0.price.cmp(&a.0.price).then(b.0.sku.cmp(&a.0.sku)))
                }
                _ => matches.sort_by(|a, b| a.0.price.cmp(&b.0.price).then(a.0.sku.cmp(&b.0.sku))),
            }
            let want: Vec<&str> =
                matches.iter().skip(offset).take(15).map(|(p, _)| p.sku.as_str()).collect();
            let page = reads.search(&q).await.expect("search");
            let got: Vec<&str> = page.products.iter().map(|p| p.sku.as_str()).collect();
            assert_eq!(
            got, want,
            "query {text:?} {category:?} in_stock={in_stock} {range:?} {sort:?} from {offset}, older {older}"
        );
            // The same page as documents, without the script when it is one of the simplest searches
            let scripts = calls(&mut admin, "evalsha").await;
            let documents = reads.search_documents(&q).await.expect("search");
            let scripted = calls(&mut admin, "evalsha").await - scripts;
            let rendered: Vec<String> =
                page.products.iter().map(ProductListing::document).collect();
            let case = format!(
                "{text:?} {category:?} {in_stock} {range:?} {sort:?} from {offset}, older {older}"
            );
            assert_eq!(scripted, u64::from(!walked), "script runs for {case}");
            assert_eq!(documents.products, Documents::join(&rendered), "documents of {case}");
            assert_eq!(
                (documents.total, documents.total_is_exact, &documents.next_cursor),
                (page.total, page.total_is_exact, &page.next_cursor),
                "totals and cursor of {case}"
            );
            if page.total_is_exact {
                assert_eq!(page.total as usize, matches.len(), "exact total of {text:?}");
            } else {
                let shown = offset + page.products.len();
                assert!(
                    page.total as usize >= shown && page.total as usize <= matches.len(),
                    "lower bound {} of {} for {case}",
                    page.total,
                    matches.len()
                );
            }
        }
    }
}

/// How many times Redis ran `command` since it started.
async fn calls(admin: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String =
        redis::cmd("INFO").arg("commandstats").query_async(admin).await.expect("info");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().expect("a count"))
}

/// Makes Redis refuse every write, as a read-only replica would (no replica can acknowledge
/// one), or accept them again.
async fn refuse_writes(admin: &mut redis::aio::MultiplexedConnection, refuse: bool) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(u8::from(refuse))
        .query_async(admin)
        .await
        .expect("CONFIG SET min-replicas-to-write");
}
