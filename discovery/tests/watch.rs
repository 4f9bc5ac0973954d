//! `cmdb watch` against a real PostgreSQL: changes are imported, a file caught mid-write
//! is never imported half, and a broken file leaves the graph as it was.

use std::io::Write;
use std::time::Duration;

use discovery::cmdb::{watch, WatchEvent, WatchOptions};
use graph_store::query::{self, ListOptions};
use graph_store::testing::TestDb;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const INVENTORY: &str = include_str!("../../examples/sample-fleet/inventory.json");

#[derive(Debug, PartialEq)]
enum Seen {
    Imported,
    Refused(String),
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("no watch event within 20 s").unwrap()
}

async fn roles(db: &TestDb) -> Vec<Option<String>> {
    query::nodes(&db.pool, ListOptions::default()).await.unwrap().into_iter().map(|n| n.role).collect()
}

#[tokio::test]
async fn watch_imports_changes_whole_and_never_half() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.json");
    std::fs::write(&path, INVENTORY).unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let opts = WatchOptions { settle: Duration::from_millis(300), poll: Duration::from_secs(60), ..Default::default() };
    let task = {
        let (pool, files, shutdown) = (db.pool.clone(), vec![path.clone()], shutdown.clone());
        tokio::spawn(async move {
            watch(&pool, &files, opts, shutdown, |event| {
                let seen = match event {
                    WatchEvent::Imported(_) => Some(Seen::Imported),
                    WatchEvent::Refused(e) => Some(Seen::Refused(e.to_string())),
                    WatchEvent::Unchanged => None,
                };
                if let Some(seen) = seen {
                    tx.send(seen).unwrap();
                }
            })
            .await
        })
    };

    assert_eq!(next(&mut rx).await, Seen::Imported);
    assert_eq!(roles(&db).await.len(), 29);
    let backends = roles(&db).await.iter().filter(|r| r.as_deref() == Some("be")).count();
    assert!(backends > 10);

    // A slow writer rewrites the file in place, in two halves with a pause between.
    let changed = INVENTORY.replace("\"role\": \"be\"", "\"role\": \"backend\"");
    let (first, second) = changed.split_at(changed.len() / 2);
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(first.as_bytes()).unwrap();
        f.sync_all().unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        f.write_all(second.as_bytes()).unwrap();
    }
    assert_eq!(next(&mut rx).await, Seen::Imported);
    let now = roles(&db).await;
    assert_eq!(now.iter().filter(|r| r.as_deref() == Some("backend")).count(), backends);
    assert!(!now.iter().any(|r| r.as_deref() == Some("be")));

    // A writer that stops half-way: refused, the graph stays as it was.
    let before = db.dump().await;
    std::fs::write(&path, &INVENTORY[..INVENTORY.len() / 2]).unwrap();
    match next(&mut rx).await {
        Seen::Refused(message) => assert!(message.contains("inventory.json"), "{message}"),
        other => panic!("a half file was imported: {other:?}"),
    }
    assert_eq!(before, db.dump().await);

    // The complete file arrives by rename: imported.
    let tmp = dir.path().join(".inventory.json.tmp");
    std::fs::write(&tmp, INVENTORY).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(next(&mut rx).await, Seen::Imported);
    assert_eq!(roles(&db).await.iter().filter(|r| r.as_deref() == Some("be")).count(), backends);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("watch did not stop").unwrap().unwrap();
}
