//! The web console in a real browser: Debian's headless Chromium, driven through chromedriver
//! (WebDriver) by `fantoccini`. A shopper searches, adds to the cart, checks out with an
//! approving card and sees the order confirm on its own; a declining card ends cancelled with
//! the stock back; staff sign in, audit the log, find the cancelled order and read its
//! timeline. Screenshots of each page go to `target/console-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (`just bootstrap` installs them).

use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use ordo_tests::Server;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for something to show on a page (a payment, a projection, a poll).
const PATIENCE: Duration = Duration::from_secs(20);

/// A chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The browser is chromedriver's child, in its process group: a test that fails before
        // closing its session must not leave Chromium running, so the whole group goes.
        // A system call, not the `kill` program: procps 4.0.2 reads `kill -KILL -12345` as
        // `kill(-1, SIGKILL)`, every process this user may signal (it took CI down once).
        if let Ok(group) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.exists()));
    found.flatten().unwrap_or_else(|| {
        panic!("{name} is not installed: run `just bootstrap` (Debian: chromium chromium-driver)")
    })
}

async fn browser() -> (Driver, Client) {
    let chromium = program("chromium");
    let port = ordo_tests::free_port();
    let child = Command::new(program("chromedriver"))
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().expect("dir"),
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < PATIENCE, "chromedriver never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The flags keep Chromium off the network this machine does not have (background
    // updates, sync) and work as root in a container (no sandbox).
    let args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--window-size=1280,900".to_owned(),
        format!("--user-data-dir={}", driver._profile.path().display()),
    ];
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), json!({ "binary": chromium, "args": args }));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    (driver, client)
}

/// Waits until the element at `css` shows text containing `needle`; returns the text.
async fn wait_text(client: &Client, css: &str, needle: &str) -> String {
    let started = Instant::now();
    let mut last = None;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(needle) {
                    return text;
                }
                last = Some(text);
            }
        }
        if started.elapsed() >= PATIENCE {
            // Whether the element was there at all tells a wrong screen from a late value.
            let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let view = match client.find(Locator::Css("#view")).await {
                Ok(view) => view.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            match last {
                Some(text) => {
                    panic!("`{css}` never showed {needle:?}; last text: {text:?} (at {url})")
                }
                None => panic!("`{css}` never appeared (at {url}); the page shows: {view:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types into the search box and leaves for a product before the keystroke's search has run,
/// in one script so the order is certain: the search fires while the product's screen is
/// still loading. It must neither put the search back in the URL nor draw over the product.
/// Then moves twice in a row, and the second screen must be the one left on the page.
async fn leave_search_mid_keystroke(client: &Client, server: &Server, sku: &str) {
    client.goto(&format!("{}/#/", server.base)).await.expect("shop page");
    let link = Locator::Css(&format!("a[data-sku='{sku}']"));
    client.wait().for_element(link).await.expect("the product in the shop");
    let script = r#"
        const [sku] = arguments;
        const q = document.getElementById("q");
        q.value = "mu";
        q.dispatchEvent(new Event("input", { bubbles: true }));
        // The debounced search (150 ms) is due before the hash change is handled.
        const until = performance.now() + 300;
        while (performance.now() < until) {}
        location.hash = `#/p/${sku}`;
    "#;
    client.execute(script, vec![json!(sku)]).await.expect("the script runs");
    wait_text(client, "#availability", "available now").await;
    // The search's answer arrives after the product is drawn, and must not replace it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_text(client, "#availability", "available now").await;
    let url = client.current_url().await.expect("url");
    assert_eq!(url.fragment(), Some(format!("/p/{sku}").as_str()), "the URL left the product");

    // And two quick moves end on the second screen: the product's, which waits for a request,
    // must not be drawn over the (empty) cart's, which does not.
    client.goto(&format!("{}/#/", server.base)).await.expect("shop page");
    let script = r#"
        const [sku] = arguments;
        location.hash = `#/p/${sku}`;
        setTimeout(() => (location.hash = `#/cart`), 0);
    "#;
    client.execute(script, vec![json!(sku)]).await.expect("the script runs");
    wait_text(client, "h1", "Your cart").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_text(client, "h1", "Your cart").await;
}

/// Saves a screenshot of the page, which must show no error: a script error or a refused call
/// would be in the message bar, in red.
async fn screenshot(client: &Client, name: &str) {
    if let Ok(error) = client.find(Locator::Css("#flash.error")).await {
        let text = error.text().await.unwrap_or_default();
        panic!("{name}: the page shows an error: {text}");
    }
    let dir = shots_dir();
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1_000, "{name}: not a picture of a page");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.wait().for_element(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("typing");
}

/// Clicks the element at `css`, finding it again if the page re-rendered it meanwhile (search
/// results are replaced as the shopper types).
async fn click(client: &Client, css: &str) {
    let started = Instant::now();
    loop {
        let element = client.wait().for_element(Locator::Css(css)).await.expect(css);
        match element.click().await {
            Ok(()) => return,
            Err(e) if started.elapsed() < PATIENCE => {
                eprintln!("retrying a click on {css}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("clicking {css}: {e}"),
        }
    }
}

/// Searches, opens the product, adds one to the cart and checks out with `card`; returns the
/// order id once the order page shows `settles_as`.
async fn buy_one(
    client: &Client,
    server: &Server,
    card: &str,
    settles_as: &str,
    shots: &str,
) -> String {
    client.goto(&format!("{}/#/", server.base)).await.expect("shop page");
    fill(client, "#q", "mug").await;
    click(client, "a[data-sku='MUG-1']").await;
    wait_text(client, "#availability", "available now").await;
    // Each screen starts without the last one's message: a stale "Added 1" from the previous
    // purchase would read as news about this product (and let the wait below pass early).
    let flash = client.find(Locator::Css("#flash")).await.expect("the message box");
    let old = flash.text().await.unwrap_or_default();
    assert!(old.is_empty(), "the product page shows an earlier message: {old:?}");
    screenshot(client, &format!("{shots}-1-product")).await;
    click(client, "#add-to-cart").await;
    wait_text(client, "#flash", "Added 1").await;
    click(client, "a[data-nav='cart']").await;
    wait_text(client, ".hold", "held for you until").await;
    screenshot(client, &format!("{shots}-2-cart")).await;
    click(client, "#to-checkout").await;
    fill(client, "input[name='name']", "Ada Lovelace").await;
    fill(client, "input[name='line1']", "12 Analytical Row").await;
    fill(client, "input[name='city']", "London").await;
    fill(client, "input[name='postal_code']", "N1 9GU").await;
    fill(client, "input[name='country']", "gb").await;
    click(client, &format!("input[value='{card}']")).await;
    screenshot(client, &format!("{shots}-3-checkout")).await;
    click(client, "#place-order").await;
    // The page moves to the order, placed, then the checkout process settles it; the page
    // polls with the receipt's position and shows the change without a reload.
    wait_text(client, "#order-status", settles_as).await;
    screenshot(client, &format!("{shots}-4-order")).await;
    let url = client.current_url().await.expect("url");
    let fragment = url.fragment().expect("a #/orders/<id> route").to_owned();
    fragment.strip_prefix("/orders/").expect("on the order page").to_owned()
}

fn shots_dir() -> PathBuf {
    ordo_tests::workspace_root().join("target").join("console-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_shop_when_a_shopper_and_staff_use_the_console_then_orders_settle_and_their_history_reads_back(
) {
    // Given a shop with three mugs.
    let server = Server::start();
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 3).await;
    let (_driver, client) = browser().await;

    // When a shopper leaves a search for a product while a keystroke's search is due, the
    // product stays on the screen and in the URL.
    leave_search_mid_keystroke(&client, &server, "MUG-1").await;

    // When a shopper buys one with an approving card, the order confirms on its own.
    let confirmed = buy_one(&client, &server, "tok_visa", "confirmed", "shopper-approved").await;
    // And one with a declining card, which ends cancelled.
    let cancelled =
        buy_one(&client, &server, "tok_declined", "cancelled", "shopper-declined").await;

    // Then the declined order's unit went back: two of three are for sale.
    let started = Instant::now();
    loop {
        let (_, product) = server.call("GET", "/v1/products/MUG-1", None, None).await;
        if product["available"] == 2 {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "stock never came back: {product}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the shopper's history shows both, settled.
    click(&client, "a[data-nav='orders']").await;
    let history = wait_text(&client, "table.orders", &confirmed).await;
    assert!(history.contains(&cancelled), "{history}");
    assert!(history.contains("confirmed") && history.contains("cancelled"), "{history}");
    screenshot(&client, "shopper-history").await;

    // When staff sign in with an admin token.
    click(&client, "a[data-nav='staff']").await;
    fill(&client, "input[name='token']", &admin).await;
    click(&client, "#token button").await;
    // Then they see every projection and role.
    wait_text(&client, "#projections", "orders").await;
    wait_text(&client, "#roles", "checkout").await;
    // And the audit passes.
    click(&client, "#audit").await;
    wait_text(&client, "#audit-result", "hash chain intact").await;
    screenshot(&client, "staff-status").await;

    // When they look up the cancelled order.
    client.goto(&format!("{}/#/staff/find?q={cancelled}", server.base)).await.expect("find page");
    click(&client, &format!("a[href='#/staff/stream/order-{cancelled}']")).await;
    // Then its timeline shows who did what, ending cancelled.
    let timeline = wait_text(&client, "table.timeline", "OrderCancelled").await;
    assert!(timeline.contains("OrderPlaced"), "{timeline}");
    assert!(timeline.contains("process (system)"), "the process cancelled it: {timeline}");
    wait_text(&client, "#state", "cancelled").await;
    screenshot(&client, "staff-timeline").await;
    // And the state as of its first event is the order as placed.
    click(&client, "tr[data-i='0']").await;
    let first = wait_text(&client, "#state", "State as of v0").await;
    assert!(first.contains("placed"), "{first}");
    // And no action applies to a cancelled order.
    let ship = client.find(Locator::Css("form[data-act='ship'] button")).await.expect("ship");
    assert!(!ship.is_enabled().await.expect("enabled?"), "a cancelled order cannot ship");

    // When they open the confirmed order and ship it from the console.
    client
        .goto(&format!("{}/#/staff/stream/order-{confirmed}", server.base))
        .await
        .expect("timeline");
    // (the cancelled order's page has the same form until this one replaces it: a field found
    // on it goes stale under the typing)
    wait_text(&client, "h1", &format!("order-{confirmed}")).await;
    fill(&client, "input[name='carrier']", "DHL").await;
    fill(&client, "input[name='tracking']", "JD0001").await;
    click(&client, "form[data-act='ship'] button").await;
    // Then the order records it, by this operator.
    wait_text(&client, "table.timeline", "OrderShipped").await;
    let types = server.event_types(&admin, &format!("order-{confirmed}")).await;
    assert_eq!(types.last().map(String::as_str), Some("OrderShipped"), "{types:?}");

    // And the live log shows the shop's events as they were written.
    client.goto(&format!("{}/#/staff/log", server.base)).await.expect("log page");
    wait_text(&client, "#tail", "OrderShipped").await;
    screenshot(&client, "staff-log").await;

    // And on a phone-sized screen the shop still reads (one column, nothing cut off).
    client.set_window_size(390, 844).await.expect("resize");
    client.goto(&format!("{}/#/?q=mug", server.base)).await.expect("shop page");
    wait_text(&client, "#results", "Stoneware mug").await;
    // (one product, not "1 products")
    assert_eq!(wait_text(&client, "#count", "1 product").await, "1 product");
    screenshot(&client, "shopper-phone").await;

    client.close().await.expect("session closed");
}
