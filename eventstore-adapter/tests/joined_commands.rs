//! Commands that carry another stream's events into their commit (`execute_joined`): a hold on
//! a product and the cart line it is for land together or not at all, also when many such
//! commands on one hot product are decided and committed as one batch.

mod common;

use common::counting::CountingStore;
use common::{event, list, receive, reserve, store};
use ordo_domain::product::*;
use ordo_eventstore::command::{CommandContext, CommandError, Receipt, Repository};
use ordo_eventstore::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A cart's line for `cart`, as its first event.
fn new_line(cart: &str) -> StreamAppend {
    StreamAppend {
        stream: StreamName::new(format!("cart-{cart}")).expect("name"),
        expected: ExpectedVersion::NoStream,
        events: vec![event("ItemQuantitySet", cart.as_bytes())],
    }
}

async fn events_of(store: &impl EventStore, stream: &str) -> usize {
    let name = StreamName::new(stream).expect("name");
    store.read_stream(&name, 0, Direction::Forward, 1_000).await.expect("read").len()
}

async fn stocked(repo: &Repository<Product, CountingStore>, units: u32) {
    let context = CommandContext::default();
    repo.execute("HOT-1", &list("HOT-1"), &context).await.expect("listed");
    repo.execute("HOT-1", &receive(units), &context).await.expect("stocked");
}

/// What a hold's command hears.
type Answer = Result<Receipt<ProductEvent>, CommandError<ProductError>>;
type Gated = (tempfile::TempDir, Arc<CountingStore>, Arc<Repository<Product, CountingStore>>);

/// Whether `answer` is a refusal for `stream` having moved (a cart's line expected elsewhere).
fn refused_for(answer: &Answer, stream: &str) -> bool {
    matches!(answer, Err(CommandError::Store(StoreError::WrongExpectedVersion { stream: s, .. })) if s == stream)
}

/// Whether `answer` is the disk's failure (`CountingStore::fail_at`).
fn failed_on_disk(answer: &Answer) -> bool {
    matches!(answer, Err(CommandError::Store(StoreError::Storage(_))))
}

/// `HOT-1` with `units` in stock, on a store whose appends wait at its gate (none let through).
async fn gated_product(units: u32) -> Gated {
    let (dir, embedded) = store();
    let gated = Arc::new(CountingStore::new(embedded, false));
    let repo = Arc::new(Repository::<Product, _>::new(gated.clone(), 100));
    gated.gate.add_permits(2);
    stocked(&repo, units).await;
    (dir, gated, repo)
}

/// Holds (`hold` for `cart`, each with its cart's line) queued behind a hold whose commit is
/// at the gate, so they are decided as one batch; then the gate opens. Each hold's answer.
async fn queued_behind_a_commit_in_flight(
    gated: &Arc<CountingStore>,
    repo: &Arc<Repository<Product, CountingStore>>,
    holds: &[(&str, &'static str)],
) -> BTreeMap<&'static str, Answer> {
    let in_flight = gated.appends() + 1;
    let first = {
        let repo = repo.clone();
        tokio::spawn(async move {
            repo.execute("HOT-1", &reserve("first", 1), &Default::default()).await
        })
    };
    while gated.appends() < in_flight {
        tokio::task::yield_now().await;
    }
    let queued: Vec<_> = holds
        .iter()
        .map(|&(cart, hold)| {
            let repo = repo.clone();
            let (command, line) = (reserve(hold, 1), new_line(cart));
            let task = tokio::spawn(async move {
                repo.execute_joined("HOT-1", &command, &Default::default(), line).await
            });
            (hold, task)
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    gated.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS - 10);
    first.await.expect("task").expect("first held");
    let mut answers = BTreeMap::new();
    for (hold, task) in queued {
        answers.insert(hold, task.await.expect("task"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_holds_with_their_lines_commits_each_line_with_its_own_hold_only() {
    // Given 40 units of a hot product
    let (_dir, embedded) = store();
    let counting = Arc::new(CountingStore::new(embedded, true));
    let repo = Arc::new(Repository::<Product, _>::new(counting.clone(), 100));
    stocked(&repo, 40).await;
    let before = counting.appends();
    // When 64 shoppers hold one unit each, each with their cart's line riding along
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let cart = format!("c{i}");
                let (command, line) = (reserve(&cart, 1), new_line(&cart));
                let context = CommandContext::default();
                let held = repo.execute_joined("HOT-1", &command, &context, line).await;
                (cart, held)
            })
        })
        .collect();
    let (mut held, mut refused) = (vec![], vec![]);
    for task in tasks {
        match task.await.expect("task") {
            (cart, Ok(receipt)) => held.push((cart, receipt)),
            (cart, Err(CommandError::Domain(ProductError::InsufficientStock { .. }))) => {
                refused.push(cart)
            }
            (_, Err(other)) => panic!("unexpected failure {other:?}"),
        }
    }
    // Then 40 hold a unit and their lines are written, each just after its hold's batch;
    assert_eq!((held.len(), refused.len()), (40, 24));
    for (cart, receipt) in &held {
        let line = receipt.joined.expect("the line's outcome");
        assert_eq!((line.first_version, line.version), (0, 0), "{cart}");
        assert!(line.position > receipt.position.expect("held"), "{cart}");
        assert_eq!(events_of(&*counting, &format!("cart-{cart}")).await, 1, "{cart}");
    }
    // the 24 refused wrote no line,
    for cart in &refused {
        assert_eq!(events_of(&*counting, &format!("cart-{cart}")).await, 0, "{cart}");
    }
    // and the crowd still shared commits.
    let appends = counting.appends() - before;
    assert!(appends < 16, "{appends} appends for 64 commands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_batch_a_line_for_a_cart_that_moved_refuses_only_its_own_hold() {
    // Given a product, and a cart that already has a line
    let (_dir, gated, repo) = gated_product(10).await;
    gated.gate.add_permits(1);
    let moved = new_line("b");
    gated.append(&moved.stream, moved.expected, moved.events.clone()).await.expect("moved");
    // When three holds with lines queue behind a commit in flight, the middle one's line
    // expecting a new cart
    let holds = [("a", "a"), ("b", "b"), ("c", "c")];
    let answers = queued_behind_a_commit_in_flight(&gated, &repo, &holds).await;
    // Then a and c hold with their lines, and b is refused with its cart's conflict
    assert!(answers["a"].as_ref().is_ok_and(|r| r.joined.is_some()), "{:?}", answers["a"]);
    assert!(answers["c"].as_ref().is_ok_and(|r| r.joined.is_some()), "{:?}", answers["c"]);
    assert!(refused_for(&answers["b"], "cart-b"), "{:?}", answers["b"]);
    let holds = repo
        .inspect("HOT-1", |_, p| {
            let mut held: Vec<String> =
                p.reservations.keys().map(|r| r.as_str().to_owned()).collect();
            held.sort();
            held
        })
        .await
        .expect("product");
    assert_eq!(holds, ["a", "c", "first"]);
    assert_eq!(events_of(&*gated, "cart-a").await, 1);
    assert_eq!(events_of(&*gated, "cart-b").await, 1, "only the line it had");
    assert_eq!(events_of(&*gated, "cart-c").await, 1);
    // (decided as one batch: its append refused for b's sake, then each on its own)
    assert_eq!(gated.appends(), 4 + 1 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_batch_two_lines_for_one_cart_are_settled_one_by_one_and_none_hears_closed() {
    // Given a product
    let (_dir, gated, repo) = gated_product(10).await;
    let whole_reads = gated.whole_reads();
    // When three holds with lines queue behind a commit in flight, two of them for one cart (a
    // shopper's two tabs), so the batch's commit names that cart twice and is refused
    let holds = [("a", "a1"), ("a", "a2"), ("c", "c")];
    let answers = queued_behind_a_commit_in_flight(&gated, &repo, &holds).await;
    // Then each is settled on its own: c's hold and the first of the cart's lines land with
    // their lines, the other line is refused for its cart's conflict (which of the two came
    // first is the queue's order); none hears that the store closed (it did not)
    // (on the product's cached state: nothing was written, so nothing read it from the start)
    assert_eq!(gated.whole_reads(), whole_reads, "a stream was loaded whole again");
    assert!(answers["c"].as_ref().is_ok_and(|r| r.joined.is_some()), "{:?}", answers["c"]);
    let (landed, refused): (Vec<_>, Vec<_>) =
        [&answers["a1"], &answers["a2"]].into_iter().partition(|a| a.is_ok());
    assert!(landed.iter().all(|a| a.as_ref().is_ok_and(|r| r.joined.is_some())), "{answers:?}");
    assert!(matches!(refused[..], [answer] if refused_for(answer, "cart-a")), "{answers:?}");
    assert_eq!(events_of(&*gated, "cart-a").await, 1, "one line for the cart");
    assert_eq!(events_of(&*gated, "cart-c").await, 1);
    // (decided as one batch, refused for the cart named twice, then each on its own)
    assert_eq!(gated.appends(), 3 + 1 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_commit_the_rest_of_its_batch_decides_on_the_stream_as_it_is() {
    // Given a product, and a disk that fails the first commit the batch below makes one by one
    // (the batch's own commit is refused, as above, so its holds go one by one)
    let (_dir, gated, repo) = gated_product(10).await;
    let one_by_one = gated.appends() + 1 + 1 + 1;
    gated.fail_at.store(one_by_one, std::sync::atomic::Ordering::SeqCst);
    // When three holds with lines queue behind a commit in flight, two of them for one cart
    let holds = [("a", "a1"), ("a", "a2"), ("c", "c")];
    let answers = queued_behind_a_commit_in_flight(&gated, &repo, &holds).await;
    // Then the hold whose commit failed hears the disk's error, and the others are decided
    // on the product as the stream holds it (its cache dropped: the failed commit may have
    // landed): none hears that the store closed
    assert_eq!(answers.values().filter(|a| failed_on_disk(a)).count(), 1, "{answers:?}");
    for answer in answers.values() {
        let settled = answer.is_ok() || refused_for(answer, "cart-a") || failed_on_disk(answer);
        assert!(settled, "{answers:?}");
    }
    assert!(answers.values().filter(|a| a.is_ok()).count() >= 1, "{answers:?}");
}

#[tokio::test]
async fn prepared_events_committed_elsewhere_are_adopted_into_the_cache() {
    // Given two products, one to hold on, one whose stock movement rides along
    let (_dir, embedded) = store();
    let counting = Arc::new(CountingStore::new(embedded, true));
    let repo = Repository::<Product, _>::new(counting.clone(), 100);
    let context = CommandContext::default();
    stocked(&repo, 5).await;
    repo.execute("CUP-1", &list("CUP-1"), &context).await.expect("listed");
    // When the second's receipt of stock is prepared, committed with a hold on the first,
    // and adopted
    let prepared = repo.prepare("CUP-1", &receive(3), &context).await.expect("prepared");
    let companion = prepared.append.clone();
    let held =
        repo.execute_joined("HOT-1", &reserve("c1", 2), &context, companion).await.expect("held");
    let outcome = held.joined.expect("committed together");
    let adopted = repo.adopt("CUP-1", prepared, &outcome).await.expect("adopted");
    // Then its receipt is the commit's, and the cached state has the stock without reading
    // the stream again: the next command on it appends at once, with no lost race
    assert_eq!((adopted.version, adopted.position), (Some(1), Some(outcome.position)));
    let (version, on_hand) = repo.inspect("CUP-1", |v, p| (v, p.on_hand)).await.expect("cup");
    assert_eq!((version, on_hand), (Some(1), 3));
    let before = counting.appends();
    repo.execute("CUP-1", &receive(1), &context).await.expect("received");
    assert_eq!(counting.appends() - before, 1);
    assert_eq!(repo.inspect("CUP-1", |v, p| (v, p.on_hand)).await.expect("cup"), (Some(2), 4));
}
