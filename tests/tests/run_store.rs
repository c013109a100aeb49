//! The runs' store adapter (`ptc_core::aws::SdkRunStore`) against the stack's DynamoDB (moto,
//! with the stack's transaction semantics: conflicts cancelled as DynamoDB documents): the
//! lease, outcomes written once under concurrent writers, finishing once.

use std::collections::BTreeMap;
use std::sync::Arc;

use ptc_core::aws::SdkRunStore;
use ptc_core::queue::{Begin, ItemOutcome, RunId, RunRecord, RunStore};
use ptc_tests::Stack;

fn record(run: &RunId, full: bool, planned: u64, started_at: i64) -> RunRecord {
    RunRecord {
        job: "prewarm".into(),
        run: run.clone(),
        trigger: "schedule".into(),
        full,
        complete: true,
        started_at,
        planned,
        messages: 0,
        queued: false,
        done: 0,
        counts: BTreeMap::new(),
        finished_at: None,
        abandoned: false,
        updated_at: None,
    }
}

fn id(n: u32) -> RunId {
    RunId::try_from(format!("prewarm-20261130T0600{n:02}Z-0000000{n}")).unwrap()
}

fn outcome(item: &str, outcome: &str) -> ItemOutcome {
    ItemOutcome {
        item: item.into(),
        group: "quay".into(),
        outcome: outcome.into(),
        reason: None,
    }
}

/// The lease: a second full run while the first holds it is refused; a run that is not full
/// takes none; after the lease, a run that recorded an outcome within the last lease period
/// keeps it, one that recorded none is replaced (and named, to be finished as abandoned);
/// `begin` twice for the same run is `Started` both times.
#[tokio::test(flavor = "multi_thread")]
async fn the_lease_holds_while_a_run_makes_progress() {
    let stack = Stack::shared();
    let store = SdkRunStore::new(stack.dynamodb().await, stack.create_run_table().await);
    let lease = 3600;
    let (first, second, third, side) = (id(1), id(2), id(3), id(4));
    assert_eq!(
        store
            .begin(&record(&first, true, 2, 0), lease, 0)
            .await
            .unwrap(),
        Begin::Started { replaced: None }
    );
    assert_eq!(
        store
            .begin(&record(&first, true, 2, 0), lease, 0)
            .await
            .unwrap(),
        Begin::Started { replaced: None },
        "a retried begin of the same run"
    );
    assert_eq!(
        store
            .begin(&record(&second, true, 1, 10), lease, 10)
            .await
            .unwrap(),
        Begin::InFlight(first.clone())
    );
    assert_eq!(
        store
            .begin(&record(&side, false, 1, 10), lease, 10)
            .await
            .unwrap(),
        Begin::Started { replaced: None },
        "an on-demand run takes no lease"
    );
    // Past the lease, but an outcome recorded 100 s ago: still in flight.
    store
        .record_all(
            "prewarm",
            &first,
            &[outcome("quay.io/a:1", "warmed")],
            3_700,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .begin(&record(&second, true, 1, 3_800), lease, 3_800)
            .await
            .unwrap(),
        Begin::InFlight(first.clone())
    );
    // No outcome for a whole lease period: replaced, and named.
    assert_eq!(
        store
            .begin(&record(&third, true, 1, 7_400), lease, 7_400)
            .await
            .unwrap(),
        Begin::Started {
            replaced: Some(first.clone())
        }
    );
    assert!(store.finish("prewarm", &first, 7_401, true).await.unwrap());
    assert!(
        !store.finish("prewarm", &first, 7_402, true).await.unwrap(),
        "once"
    );
    let old = store.run("prewarm", &first).await.unwrap().unwrap();
    assert!(old.abandoned && old.finished_at == Some(7_401));
    // The new holder keeps the lease: finishing the old run did not release it.
    assert_eq!(
        store
            .begin(&record(&second, true, 1, 7_500), lease, 7_500)
            .await
            .unwrap(),
        Begin::InFlight(third)
    );
}

/// Sixteen writers record 10 outcomes each at the same time (with repeats), as workers do:
/// every outcome once, the counters equal to the outcomes, the conflicts the stack answered
/// retried.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_count_each_outcome_once() {
    let stack = Stack::shared();
    let store = Arc::new(SdkRunStore::new(
        stack.dynamodb().await,
        stack.create_run_table().await,
    ));
    let run = id(9);
    store
        .begin(&record(&run, false, 160, 0), 3600, 0)
        .await
        .unwrap();
    let before = stack.read("dynamodb").await["conflicts"].as_u64().unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let (store, run) = (store.clone(), run.clone());
            tokio::spawn(async move {
                let outcomes: Vec<ItemOutcome> = (0..10)
                    .map(|i| {
                        outcome(
                            &format!("quay.io/w{w}:{i}"),
                            if i % 2 == 0 { "warmed" } else { "failed" },
                        )
                    })
                    .collect();
                let first = store
                    .record_all("prewarm", &run, &outcomes, 5)
                    .await
                    .unwrap();
                // The same message again (a duplicate delivery).
                let again = store
                    .record_all("prewarm", &run, &outcomes, 6)
                    .await
                    .unwrap();
                (first, again)
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), ((10, 0), (0, 10)));
    }
    let record = store.run("prewarm", &run).await.unwrap().unwrap();
    assert_eq!(record.done, 160);
    assert_eq!(record.counts[&("quay".into(), "warmed".into())], 80);
    assert_eq!(record.counts[&("quay".into(), "failed".into())], 80);
    assert_eq!(store.outcomes(&run, 1000).await.unwrap().len(), 160);
    let conflicts = stack.read("dynamodb").await["conflicts"].as_u64().unwrap() - before;
    eprintln!("{conflicts} transactions cancelled for a conflict, and retried");
    assert!(conflicts > 0, "sixteen writers of one record conflict");
}
