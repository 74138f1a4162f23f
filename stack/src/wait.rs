//! Waiting for what a test cannot be told about: a replica to catch up, a consumer
//! group to settle, a worker's next round.

use std::time::Duration;

/// Polls `condition` every 200 ms until it holds; fails the test, naming `what`, once
/// `within` has passed.
pub async fn wait_until(what: &str, within: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
