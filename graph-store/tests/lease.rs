//! Leases on once-only work on a real PostgreSQL: one holder at a time, renewals keep it,
//! expiry (the database's clock) hands it over, a release hands it over at once.

use std::time::Duration;

use graph_store::lease::{acquire, all, release};
use graph_store::testing::TestDb;

#[tokio::test]
async fn one_holder_at_a_time_until_it_expires_or_gives_it_back() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    let ttl = Duration::from_secs(1);
    assert!(acquire(pool, "housekeeping", "a", ttl).await.unwrap());
    assert!(!acquire(pool, "housekeeping", "b", ttl).await.unwrap(), "a holds it");
    assert!(acquire(pool, "report", "b", ttl).await.unwrap(), "another lease is another row");
    let first = all(pool).await.unwrap()[0].clone();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(acquire(pool, "housekeeping", "a", ttl).await.unwrap(), "a renews");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!acquire(pool, "housekeeping", "b", ttl).await.unwrap(), "the renewal kept it a's past the first ttl");
    let renewed = all(pool).await.unwrap()[0].clone();
    assert_eq!((renewed.holder.as_str(), renewed.acquired_at), ("a", first.acquired_at));
    assert!(renewed.expires_at > first.expires_at);

    // a stops renewing: b takes it once it has expired.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(acquire(pool, "housekeeping", "b", ttl).await.unwrap(), "expired: b takes over");
    assert!(!acquire(pool, "housekeeping", "a", ttl).await.unwrap(), "a comes back to find it taken");
    let taken = all(pool).await.unwrap()[0].clone();
    assert_eq!(taken.holder, "b");
    assert!(taken.acquired_at > first.acquired_at);

    // Given back: a takes it at once. Giving back what one does not hold changes nothing.
    release(pool, "housekeeping", "a").await.unwrap();
    assert!(!acquire(pool, "housekeeping", "a", Duration::from_secs(60)).await.unwrap());
    release(pool, "housekeeping", "b").await.unwrap();
    assert!(acquire(pool, "housekeeping", "a", Duration::from_secs(60)).await.unwrap());
}
