//! Search against a plain model of filtering, sorting and paging, on a catalogue big enough
//! for the search script's walking paths.

mod shop;

use ordo_domain::product::{self, Product, ProductCommand};
use ordo_domain::Timestamp;
use ordo_eventstore::command::Repository;
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore, EventStore};
use ordo_projections::query::{ReadModels, SearchQuery, SearchSort};
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{Runner, RunnerConfig};
use ordo_projections::views::ProductView;
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
    for i in 0..450 {
        let p = P {
            sku: format!("SKU-{i:04}"),
            name: format!(
                "{} {}",
                ["Blue", "Red", "Green"][i % 3],
                ["Mug", "Bowl", "Plate", "Cup", "Jug"][i % 5]
            ),
            brand: ["Potter", "Kiln", "Hearth"][i % 3 / 2 + i % 2],
            category: ["kitchen", "table"][i % 2],
            price: 100 + ((i * 37) % 500) as i64,
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
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(1)
        .query_async(&mut admin)
        .await
        .expect("writes refused from now on");

    let words = |p: &P| ordo_projections::search::weighted_terms(&p.name, p.brand, "");
    let queries = [
        ("", None, false, None, SearchSort::Relevance, 0),
        ("", None, true, None, SearchSort::PriceAsc, 40),
        ("", Some("kitchen"), true, Some((150, 400)), SearchSort::PriceDesc, 20),
        ("", None, false, Some((300, 450)), SearchSort::Relevance, 0),
        ("potter", None, false, None, SearchSort::PriceDesc, 0),
        ("pot", None, true, None, SearchSort::Relevance, 0),
        ("pot", Some("kitchen"), false, Some((100, 400)), SearchSort::PriceAsc, 0),
        ("pot", None, false, Some((150, 450)), SearchSort::Relevance, 2),
        ("blue pot", None, false, None, SearchSort::Relevance, 0),
        ("blue pot", None, true, None, SearchSort::PriceDesc, 0),
        ("blue", Some("table"), false, None, SearchSort::Relevance, 10),
        ("blue mug", None, false, None, SearchSort::PriceAsc, 0),
        ("red", None, false, Some((200, 300)), SearchSort::Relevance, 0),
        // 225 Kiln products: a single word with 200+ matches walks its own index.
        ("kiln", None, false, None, SearchSort::Relevance, 30),
        ("kiln", None, false, None, SearchSort::PriceDesc, 0),
        ("kiln", Some("table"), false, None, SearchSort::PriceAsc, 5),
        // 225 "table" products: price walks driven by the category's own price index.
        ("", Some("table"), false, None, SearchSort::PriceDesc, 3),
        ("", Some("table"), false, Some((100, 400)), SearchSort::PriceAsc, 0),
    ];
    for (text, category, in_stock, range, sort, offset) in queries {
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
        let tokens = ordo_projections::search::tokens(text);
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
            "query {text:?} {category:?} in_stock={in_stock} {range:?} {sort:?} from {offset}"
        );
        if page.total_is_exact {
            assert_eq!(page.total as usize, matches.len(), "exact total of {text:?}");
        } else {
            let shown = offset + page.products.len();
            assert!(
                page.total as usize >= shown && page.total as usize <= matches.len(),
                "lower bound {} of {}",
                page.total,
                matches.len()
            );
        }
    }
}
