//! This member's view of the consumer group: which partitions it owns, and under which
//! generation it was given each. Kept up to date by librdkafka's rebalance callbacks,
//! which run inside `recv`, on the consuming task.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};

#[derive(Debug, Default)]
struct Ownership {
    /// The topic this member consumes (one member per topic; a process may run several).
    topic: String,
    member: String,
    /// Partition → the generation in which it was assigned to this member.
    owned: BTreeMap<i32, i32>,
    /// Partition → (committed offset, end offset) as last seen by the consuming loop.
    positions: BTreeMap<i32, (i64, i64)>,
}

/// Shared between the rebalance callbacks and the consuming loop.
#[derive(Clone, Default)]
pub struct GroupView {
    inner: Arc<Mutex<Ownership>>,
}

impl GroupView {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ownership> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The generation under which this member owns `partition`, if it does.
    pub fn generation_of(&self, partition: i32) -> Option<i32> {
        self.lock().owned.get(&partition).copied()
    }

    pub fn member(&self) -> String {
        self.lock().member.clone()
    }

    pub fn topic(&self) -> String {
        self.lock().topic.clone()
    }

    pub fn set_topic(&self, topic: &str) {
        self.lock().topic = topic.to_string();
    }

    pub fn owned(&self) -> BTreeMap<i32, i32> {
        self.lock().owned.clone()
    }

    pub fn set_position(&self, partition: i32, committed: i64, end: i64) {
        self.lock().positions.insert(partition, (committed, end));
    }

    /// `(committed, end)` offsets of an owned partition, if it has been indexed.
    pub fn position(&self, partition: i32) -> Option<(i64, i64)> {
        let view = self.lock();
        view.owned.contains_key(&partition).then(|| view.positions.get(&partition).copied()).flatten()
    }
}

/// The consumer's context: records assignments and revocations in a [`GroupView`].
pub struct GroupContext {
    pub topic: String,
    pub view: GroupView,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let lost = consumer.assignment_lost();
            let mut view = self.view.lock();
            for element in list.elements_for_topic(&self.topic) {
                view.owned.remove(&element.partition());
                view.positions.remove(&element.partition());
                // Another member reports it from now on; sums over members stay exact.
                let labels = [("topic", self.topic.clone()), ("partition", element.partition().to_string())];
                metrics::gauge!(crate::telemetry::KAFKA_PARTITION_OWNED, &labels).set(0.0);
                metrics::gauge!(crate::telemetry::KAFKA_CONSUMER_LAG, &labels).set(0.0);
            }
            let event = if lost { "lost" } else { "revoked" };
            metrics::counter!(crate::telemetry::KAFKA_REBALANCES_TOTAL, "event" => event).increment(1);
            tracing::info!(partitions = list.count(), lost, "partitions revoked; their in-flight work is abandoned");
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let (generation, member) = ffi::generation(consumer);
                let mut view = self.view.lock();
                view.member = member;
                let assigned: Vec<i32> = list.elements_for_topic(&self.topic).iter().map(|e| e.partition()).collect();
                for &partition in &assigned {
                    view.owned.insert(partition, generation);
                    let labels = [("topic", self.topic.clone()), ("partition", partition.to_string())];
                    metrics::gauge!(crate::telemetry::KAFKA_PARTITION_OWNED, &labels).set(1.0);
                }
                metrics::counter!(crate::telemetry::KAFKA_REBALANCES_TOTAL, "event" => "assigned").increment(1);
                tracing::info!(?assigned, generation, member = %view.member, "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// What rust-rdkafka does not expose and librdkafka does: the group generation and
/// the cached partition watermarks.
#[allow(unsafe_code)]
pub(crate) mod ffi {
    use std::ffi::{CStr, CString};

    use rdkafka::bindings as rd;
    use rdkafka::client::{Client, ClientContext};
    use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

    /// `(low, high)` offsets of a partition as of the last fetch, without asking the
    /// broker; `None` before the first fetch.
    pub fn cached_watermarks<C: ClientContext>(client: &Client<C>, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let topic = CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client handle is live for the borrow, `topic` is a valid C string
        // for the call, and librdkafka only writes the two out-parameters.
        let err = unsafe {
            rd::rd_kafka_get_watermark_offsets(
                client.native_client().ptr(),
                topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some((low, high))
    }

    /// `(generation, member id)` of the consumer right now; `(-1, "")` outside a group.
    pub fn generation<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> (i32, String) {
        let client = consumer.client().native_client().ptr();
        // SAFETY: `client` is a live consumer handle for the duration of the borrow.
        // librdkafka returns a fresh metadata object (or null) that we own and destroy
        // exactly once; the member id string belongs to that object and is copied out
        // before it is destroyed.
        unsafe {
            let metadata = rd::rd_kafka_consumer_group_metadata(client);
            if metadata.is_null() {
                return (-1, String::new());
            }
            let generation = rd::rd_kafka_consumer_group_metadata_generation_id(metadata);
            let member_ptr = rd::rd_kafka_consumer_group_metadata_member_id(metadata);
            let member = if member_ptr.is_null() {
                String::new()
            } else {
                CStr::from_ptr(member_ptr).to_string_lossy().into_owned()
            };
            rd::rd_kafka_consumer_group_metadata_destroy(metadata);
            (generation, member)
        }
    }
}
