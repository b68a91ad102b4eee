//! Read models against a real private `redis-server`: a scripted shop goes through the command
//! path into an embedded store, the projections run, and every query is checked.

mod shop;

use ordo_eventstore::EventStore;
use ordo_projections::query::{Documents, HistoryQuery, ReadModels, SearchQuery, SearchSort};
use ordo_projections::runner::{Runner, RunnerConfig};
use ordo_projections::views::{
    documents_key, order_document_key, product_document_key, OrderView, ProductListing,
    ProductView, View,
};
use shop::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_answers_after_a_scripted_shop() {
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);

    let head = shop.store.last_position().await.expect("head").expect("events");
    let status: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("ordo:status:catalogue")
        .query_async(&mut shop.connection().await)
        .await
        .expect("status");
    assert_eq!(status.get("position"), Some(&head.0.to_string()));
    assert_eq!(
        (
            status.get("lag_events").map(String::as_str),
            status.get("last_error").map(String::as_str)
        ),
        (Some("0"), Some(""))
    );

    let order = reads.order("ord-a3").await.expect("query").expect("exists");
    assert_eq!(
        (order.status.as_str(), order.payment_status.as_str(), order.carrier.as_str()),
        ("shipped", "authorized", "DHL")
    );
    assert_eq!(order.total_minor, 1_250);
    assert!(reads.order("ord-none").await.expect("query").is_none());

    // History: newest first, paged with a cursor, filtered by status and by date.
    let page =
        |cursor: Option<String>| HistoryQuery { limit: 2, cursor, ..HistoryQuery::default() };
    let first = reads.order_history("cus-a", &page(None)).await.expect("history");
    let ids = |p: &ordo_projections::query::HistoryPage| {
        p.orders.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), vec!["ord-a5", "ord-a4"]);
    let second =
        reads.order_history("cus-a", &page(first.next_cursor.clone())).await.expect("history");
    assert_eq!(ids(&second), vec!["ord-a3", "ord-a2"]);
    let third =
        reads.order_history("cus-a", &page(second.next_cursor.clone())).await.expect("history");
    assert_eq!((ids(&third), third.next_cursor), (vec!["ord-a1".to_owned()], None));
    let placed =
        HistoryQuery { status: Some("placed".into()), limit: 10, ..HistoryQuery::default() };
    assert_eq!(
        ids(&reads.order_history("cus-a", &placed).await.expect("history")),
        vec!["ord-a5", "ord-a1"]
    );
    let window = HistoryQuery {
        from: Some(2 * HOUR),
        to: Some(4 * HOUR),
        limit: 10,
        ..HistoryQuery::default()
    };
    assert_eq!(
        ids(&reads.order_history("cus-a", &window).await.expect("history")),
        vec!["ord-a4", "ord-a3", "ord-a2"]
    );
    assert_eq!(
        ids(&reads
            .order_history("cus-b", &HistoryQuery { limit: 10, ..Default::default() })
            .await
            .expect("history")),
        vec!["ord-b1"]
    );

    // Catalogue and search.
    let mug = reads.product("MUG-1").await.expect("query").expect("exists");
    assert_eq!(
        (mug.available, mug.listed),
        (4, true),
        "10 mugs, 6 held by three order reservations"
    );
    assert!(!reads.product("LMP-1").await.expect("query").expect("exists").listed);
    let search =
        |text: &str| SearchQuery { text: text.into(), limit: 10, ..SearchQuery::default() };
    let skus = |p: ordo_projections::query::SearchPage| {
        p.products.into_iter().map(|p| p.sku).collect::<Vec<_>>()
    };
    assert_eq!(
        skus(reads.search(&search("mug")).await.expect("search")),
        vec!["MUG-2", "MUG-1"],
        "ties by SKU, name matches first"
    );
    assert_eq!(
        skus(reads.search(&search("ena")).await.expect("search")),
        vec!["MUG-2"],
        "type-ahead: a prefix of 'enamel'"
    );
    assert!(
        skus(reads.search(&search("lamp")).await.expect("search")).is_empty(),
        "the delisted lamp is not found"
    );
    assert_eq!(
        skus(reads.search(&search("POTTER tea")).await.expect("search")),
        vec!["POT-1", "MUG-1"],
        "case-folded, every word must match, name outranks description"
    );
    let kitchen = SearchQuery {
        category: Some("Kitchen".into()),
        sort: SearchSort::PriceDesc,
        limit: 10,
        ..SearchQuery::default()
    };
    assert_eq!(
        skus(reads.search(&kitchen).await.expect("search")),
        vec!["KET-1", "POT-1", "MUG-1"]
    );
    let cheap_in_stock = SearchQuery {
        max_price: Some(3_500),
        in_stock: true,
        sort: SearchSort::PriceAsc,
        limit: 10,
        ..SearchQuery::default()
    };
    assert_eq!(
        skus(reads.search(&cheap_in_stock).await.expect("search")),
        vec!["MUG-1", "POT-1"],
        "MUG-2 has no stock"
    );
    let by_brand = SearchQuery {
        brand: Some("trailhead".into()),
        min_price: Some(1_000),
        limit: 10,
        ..SearchQuery::default()
    };
    assert_eq!(skus(reads.search(&by_brand).await.expect("search")), vec!["TNT-1"]);
    let paged = SearchQuery { sort: SearchSort::PriceAsc, limit: 2, ..SearchQuery::default() };
    let p1 = reads.search(&paged).await.expect("search");
    assert_eq!((p1.total, p1.next_cursor.clone()), (5, Some("2".to_owned())));
    let p3 =
        reads.search(&SearchQuery { cursor: Some("4".into()), ..paged }).await.expect("search");
    assert_eq!((skus(p3.clone()), p3.next_cursor), (vec!["TNT-1".to_owned()], None));
    assert!(skus(reads.search(&search("zebra")).await.expect("search")).is_empty());

    let cart = reads.cart("cart-open").await.expect("query").expect("exists");
    assert_eq!((cart.status.as_str(), cart.total_minor, cart.lines.len()), ("open", 7_000, 1));
    let checked_out = reads.cart("cart-ord-a1").await.expect("query").expect("exists");
    assert_eq!(
        (checked_out.status.as_str(), checked_out.order_id.as_str()),
        ("checked_out", "ord-a1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_documents_are_the_views_rendered_even_for_orders_written_before_documents() {
    // Given a projected shop, one of whose orders lost its rendered document (as if an older
    // Ordo had written it)
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);
    let ns = reads.namespace(OrderView::PROJECTION).await.expect("namespace");
    shop.delete(order_document_key(&ns, "ord-a4")).await;

    // When the history is read as documents, page by page
    let page = |cursor: Option<String>| HistoryQuery { limit: 3, cursor, ..Default::default() };
    let views = reads.order_history("cus-a", &page(None)).await.expect("history");
    let first = reads.order_history_documents("cus-a", &page(None)).await.expect("history");
    let next = first.next_cursor.clone();
    let second = reads.order_history_documents("cus-a", &page(next)).await.expect("history");

    // Then each page holds the same orders, in the same order, as the typed history, each
    // rendered from its view (the one without a stored document too)
    let rendered: Vec<String> = views.orders.iter().map(OrderView::document).collect();
    assert_eq!(first.orders, rendered);
    assert!(first.orders[1].contains("\"order_id\":\"ord-a4\""));
    assert_eq!(first.next_cursor, views.next_cursor);
    assert_eq!(second.orders.len(), 2);
    assert_eq!(second.next_cursor, None);
    // and one order reads as its document with its customer, stored or not.
    for order_id in ["ord-a4", "ord-a5"] {
        let view = reads.order(order_id).await.expect("query").expect("exists");
        let expected = Some(("cus-a".to_owned(), view.document()));
        assert_eq!(reads.order_document(order_id).await.expect("query"), expected, "{order_id}");
    }
}

/// How many times Redis refused `command` before running it (ACL, unknown arguments).
async fn refusals(shop: &Shop, command: &str) -> u64 {
    shop.command_stat(command, "rejected_calls").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_history_page_is_one_command_and_pages_on_as_the_long_way_does() {
    // Given a customer with orders placed at the same millisecond, and one placed earlier
    let shop = scripted_shop().await;
    for order_id in ["ord-t2", "ord-t10", "ord-t1", "ord-t3"] {
        shop.place_order("cus-t", order_id, 9 * HOUR).await;
    }
    shop.place_order("cus-t", "ord-t0", 8 * HOUR).await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);

    for (customer, status) in [("cus-t", None), ("cus-a", None), ("cus-a", Some("placed"))] {
        for limit in 1..=6 {
            let query = |cursor: Option<String>| HistoryQuery {
                status: status.map(str::to_owned),
                limit,
                cursor,
                ..HistoryQuery::default()
            };
            // When its newest page is read as documents, then paged on with its cursor
            let sorts = shop.calls("sort_ro").await;
            let ranges = shop.calls("zrevrangebyscore").await;
            let first = reads.order_history_documents(customer, &query(None)).await.expect("page");
            let sorted = shop.calls("sort_ro").await - sorts;
            let ranged = shop.calls("zrevrangebyscore").await - ranges;
            let mut documents = first.orders.clone();
            let mut cursor = first.next_cursor.clone();
            while cursor.is_some() {
                let next = reads.order_history_documents(customer, &query(cursor)).await;
                let next = next.expect("page");
                documents.extend(next.orders);
                cursor = next.next_cursor;
            }

            // Then the newest page took one SORT_RO and no range read
            let case = format!("{customer} {status:?} limit {limit}");
            assert_eq!((sorted, ranged), (1, 0), "{case}");
            // and holds, with its cursor, what the typed history (the long way) holds
            let typed = reads.order_history(customer, &query(None)).await.expect("page");
            let rendered: Vec<String> = typed.orders.iter().map(OrderView::document).collect();
            assert_eq!(
                (&first.orders, &first.next_cursor),
                (&rendered, &typed.next_cursor),
                "{case}"
            );
            // and the pages after it hold every order once, newest first, equal times by
            // descending id.
            let all = HistoryQuery {
                status: status.map(str::to_owned),
                limit: 50,
                ..HistoryQuery::default()
            };
            let every = reads.order_history(customer, &all).await.expect("page");
            let every: Vec<String> = every.orders.iter().map(OrderView::document).collect();
            assert_eq!(documents, every, "{case}");
        }
    }
    let five = HistoryQuery { limit: 5, ..HistoryQuery::default() };
    let newest = reads.order_history("cus-t", &five).await.expect("page");
    let ids: Vec<String> = newest.orders.into_iter().map(|o| o.order_id).collect();
    assert_eq!(ids, ["ord-t3", "ord-t2", "ord-t10", "ord-t1", "ord-t0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_refuses_sort_ro_still_answers_history_pages() {
    // Given a projected shop on a Redis whose user may not run SORT_RO (an ACL without
    // `@dangerous`)
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-sort_ro")
        .query_async(&mut shop.connection().await)
        .await
        .expect("acl");

    // When the newest history page is read twice, and with other read models (which have not
    // met the refusal yet) the catalogue is searched twice by price
    let query = HistoryQuery { limit: 2, ..HistoryQuery::default() };
    let first = reads.order_history_documents("cus-a", &query).await.expect("page");
    let again = reads.order_history_documents("cus-a", &query).await.expect("page");
    let searching = ReadModels::new(shop.connection().await);
    let cheapest = SearchQuery { limit: 2, ..SearchQuery::default() };
    let searches = [
        searching.search_documents(&cheapest).await.expect("search"),
        searching.search_documents(&cheapest).await.expect("search"),
    ];

    // Then both are the page the typed history reads, both searches the typed search's page,
    // and each read models tried SORT_RO once only.
    let typed = reads.order_history("cus-a", &query).await.expect("page");
    let rendered: Vec<String> = typed.orders.iter().map(OrderView::document).collect();
    for page in [first, again] {
        assert_eq!((page.orders, page.next_cursor), (rendered.clone(), typed.next_cursor.clone()));
    }
    let typed = reads.search(&cheapest).await.expect("search");
    let rendered: Vec<String> = typed.products.iter().map(ProductListing::document).collect();
    for page in searches {
        assert_eq!(
            (page.products, page.next_cursor),
            (Documents::join(&rendered), typed.next_cursor.clone())
        );
    }
    assert_eq!(refusals(&shop, "sort_ro").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_documents_are_the_listings_rendered_even_for_products_written_before_documents() {
    // Given a projected shop, one of whose products lost its rendered document (as if an older
    // Ordo had written it)
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);
    let ns = reads.namespace(ProductView::PROJECTION).await.expect("namespace");
    shop.forget(documents_key(&ns), "POT-1").await;
    shop.delete(product_document_key(&ns, "POT-1")).await;

    // When products are read and searched as documents
    // Then they are the listings rendered, a delisted or unknown product has none, and a
    // search page holds the same products as the typed search, in the same order, whether the
    // page has the product without a document (limit 3) or not (limit 2: joined in Redis)
    for sku in ["MUG-1", "POT-1"] {
        let listing = reads.product(sku).await.expect("query").expect("exists");
        let document = reads.product_document(sku).await.expect("query");
        assert_eq!(document, Some(listing.document()), "{sku}");
    }
    assert_eq!(reads.product_document("LMP-1").await.expect("query"), None, "delisted");
    assert_eq!(reads.product_document("NONE-1").await.expect("query"), None);
    let pages =
        [2, 3].into_iter().flat_map(|l| [(l, SearchSort::PriceAsc), (l, SearchSort::PriceDesc)]);
    for (limit, sort) in pages {
        let all = SearchQuery { limit, sort, ..SearchQuery::default() };
        let typed = reads.search(&all).await.expect("search");
        let documents = reads.search_documents(&all).await.expect("search");
        let rendered: Vec<String> = typed.products.iter().map(ProductListing::document).collect();
        assert_eq!(documents.products, Documents::join(&rendered));
        assert_eq!(
            (documents.total, documents.total_is_exact, documents.next_cursor),
            (typed.total, typed.total_is_exact, typed.next_cursor)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_waits_for_its_own_write_then_gives_up_after_the_bound() {
    let shop = scripted_shop().await;
    let reads = ReadModels::new(shop.connection().await);
    let head = shop.store.last_position().await.expect("head").expect("events");
    let err = reads.wait_for("orders", head.0, Duration::from_millis(50)).await;
    assert!(err.is_err(), "nothing is projected yet");
    let store = shop.store.clone();
    let redis = shop.connection().await;
    let runner = tokio::spawn(async move {
        let mut runner = Runner::<OrderView, _>::new(store, redis, 1, RunnerConfig::default())
            .await
            .expect("runner");
        runner.run(Some(head), |_| {}).await
    });
    reads.wait_for("orders", head.0, Duration::from_secs(5)).await.expect("applied in time");
    runner.await.expect("task").expect("runner");
}
