//! The distributed indexer's consumer: Kafka partitions in, span rows and postings out.
//!
//! - Consumer group with cooperative-sticky assignment; a partition's assignment is its
//!   ownership, and the group generation it was assigned in is the fencing token.
//! - Before indexing a partition, the member claims it in the [`OwnershipLedger`] at that
//!   generation. After writing a batch's rows it records its progress there, a
//!   compare-and-set on (member, generation), and only then commits the offsets to
//!   Kafka. A stale owner is refused by both and abandons its in-flight work.
//! - Every write is a deterministic function of the message, so a partition replayed by
//!   its next owner rewrites the same rows; nothing is stored or counted twice.
//! - Write errors are classified. Transient ones (timeouts, overload, outages) are
//!   retried with backoff until the store accepts. A message that can never be stored
//!   (it does not decode, or the store refuses its rows as invalid) is published to the
//!   dead-letter topic ([`dead_letter`]), counted, and the partition moves on.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::ClientConfig;
use rdkafka::{Offset, TopicPartitionList};
use tracekeeper_model::Span;
use tracekeeper_storage::{LedgerError, OwnershipLedger, PartitionId, Progress};

use tracekeeper_indexer::{IndexError, Indexer};

use crate::client_config;
use crate::dead_letter::{DeadLetterError, DeadLetters};
use crate::decode::{decode, Decoded, Encoding};
use crate::group::{GroupContext, GroupView};

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub brokers: String,
    /// librdkafka properties for security (TLS, SASL) and anything else, for every
    /// client of the member; the consumer's own group and commit settings win.
    pub options: Vec<(String, String)>,
    pub topic: String,
    /// How the topic's messages are encoded.
    pub encoding: Encoding,
    pub group: String,
    /// Most messages indexed (and committed) together.
    pub batch_messages: usize,
    /// How long to wait for more messages before indexing a partial batch.
    pub batch_wait: Duration,
    /// How long the group waits for a silent member before moving its partitions.
    pub session_timeout: Duration,
    /// Where messages that can never be stored go.
    pub dead_letter_topic: String,
    /// How long a batch may take to be stored and recorded before this member gives
    /// its partitions up to the group (it cannot reach the store, or the store hangs),
    /// and rejoins only once the store answers again.
    pub stall_timeout: Duration,
}

impl ConsumerConfig {
    /// The settings every client of this member shares: the brokers and the options.
    pub fn client(&self) -> ClientConfig {
        client_config(&self.brokers, &self.options)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("Kafka consumer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("dead-letter producer: {0}")]
    DeadLetters(#[from] DeadLetterError),
}

/// One message as read, kept whole until its offset is committed: it may yet have to
/// go to the dead-letter topic as it came.
struct Entry {
    original: OwnedMessage,
    decoded: Result<Decoded, String>,
}

/// Messages of one partition taken in one batch, all under one ownership.
struct Pending {
    generation: i32,
    messages: Vec<Entry>,
}

impl Pending {
    fn next_offset(&self) -> i64 {
        self.messages.last().map_or(0, |entry| entry.original.offset() + 1)
    }
}

/// This member's ledger claim on a partition.
struct Claim {
    generation: i32,
    progress: Progress,
}

pub struct Member<'a> {
    config: &'a ConsumerConfig,
    indexer: &'a Indexer,
    ledger: &'a dyn OwnershipLedger,
    view: GroupView,
    consumer: StreamConsumer<GroupContext>,
    claims: BTreeMap<i32, Claim>,
    dead_letters: DeadLetters,
}

impl<'a> Member<'a> {
    /// Joins the group; `view` is kept up to date with this member's ownership.
    pub fn join(
        config: &'a ConsumerConfig,
        indexer: &'a Indexer,
        ledger: &'a dyn OwnershipLedger,
        view: GroupView,
    ) -> Result<Self, ConsumerError> {
        view.set_topic(&config.topic);
        let context = GroupContext { topic: config.topic.clone(), view: view.clone() };
        let consumer: StreamConsumer<GroupContext> = config
            .client()
            .set("group.id", &config.group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", config.session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", (config.session_timeout.as_millis() / 4).max(100).to_string())
            .create_with_context(context)?;
        consumer.subscribe(&[&config.topic])?;
        let dead_letters = DeadLetters::new(&config.client(), &config.dead_letter_topic)?;
        Ok(Self { config, indexer, ledger, view, consumer, claims: BTreeMap::new(), dead_letters })
    }

    /// Consumes until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ConsumerError> {
        tokio::pin!(shutdown);
        loop {
            let Some(batch) = self.collect(&mut shutdown).await else { return Ok(()) };
            let stall_timeout = self.config.stall_timeout;
            match tokio::time::timeout(stall_timeout, self.store(batch)).await {
                Ok(committed) => {
                    self.commit(committed)?;
                    self.report_lag();
                }
                Err(_) => {
                    if !self.step_out(&mut shutdown).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Claims, writes and records a batch; returns the offsets to commit.
    async fn store(&mut self, batch: BTreeMap<i32, Pending>) -> Vec<(i32, i64)> {
        let claimed = self.claim_all(batch).await;
        let stored = self.write(claimed).await;
        self.record(stored).await
    }

    /// After a batch could not be stored within the stall timeout: this member leaves
    /// the group, so that members that can write take its partitions (the abandoned
    /// batch is neither recorded nor committed: its next owner reads it again), and
    /// rejoins once the store answers. A member that stayed would hold its partitions
    /// unindexed for as long as its own link to the store is down, since its heartbeats
    /// to Kafka go on. `false` on shutdown.
    async fn step_out(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<bool, ConsumerError> {
        metrics::counter!(crate::telemetry::KAFKA_STALLS_TOTAL).increment(1);
        tracing::warn!(
            stall_timeout = ?self.config.stall_timeout,
            partitions = ?self.view.owned().keys().collect::<Vec<_>>(),
            "a batch could not be stored in time; leaving the group until the store answers"
        );
        self.claims.clear();
        self.consumer.unsubscribe();
        // Polling goes on while the store is probed: it serves the revocation, which
        // lets librdkafka leave the group at once (a probe may take as long as a
        // request's timeout). A message still buffered belongs to no partition this
        // member owns, and is dropped.
        let ledger = self.ledger;
        let answers = async {
            let mut backoff = Duration::from_millis(500);
            loop {
                tokio::time::sleep(backoff).await;
                if ledger.owners().await.is_ok() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        };
        tokio::pin!(answers);
        loop {
            tokio::select! {
                _ = shutdown.as_mut() => return Ok(false),
                () = &mut answers => break,
                _ = self.consumer.recv() => {}
            }
        }
        tracing::info!("the store answers again; rejoining the group");
        self.consumer.subscribe(&[&self.config.topic])?;
        Ok(true)
    }

    /// Up to `batch_messages`, grouped by partition; `None` on shutdown.
    async fn collect(
        &self,
        shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Option<BTreeMap<i32, Pending>> {
        let mut batch: BTreeMap<i32, Pending> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + self.config.batch_wait;
        let mut count = 0;
        while count < self.config.batch_messages {
            let received = tokio::select! {
                _ = shutdown.as_mut() => return None,
                _ = tokio::time::sleep_until(deadline), if count > 0 => break,
                m = self.consumer.recv() => m,
            };
            let message = match received {
                Ok(m) => m,
                Err(e) => {
                    // Usually the broker is unreachable; librdkafka reconnects by itself.
                    metrics::counter!(crate::telemetry::KAFKA_RECEIVE_ERRORS_TOTAL).increment(1);
                    tracing::warn!(error = %e, "Kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let partition = message.partition();
            let Some(generation) = self.view.generation_of(partition) else {
                metrics::counter!(crate::telemetry::KAFKA_ABANDONED_MESSAGES_TOTAL).increment(1);
                continue;
            };
            count += 1;
            let pending = batch.entry(partition).or_insert_with(|| Pending { generation, messages: Vec::new() });
            if pending.generation != generation {
                // Revoked and given back within one batch: the earlier messages belong
                // to an ownership that ended, and will be delivered again.
                *pending = Pending { generation, messages: Vec::new() };
            }
            let decoded = decode(&message, self.config.encoding);
            if let Ok(d) = &decoded {
                if d.invalid > 0 {
                    metrics::counter!(tracekeeper_model::telemetry::SPANS_REJECTED_TOTAL, "reason" => "invalid")
                        .increment(d.invalid as u64);
                    let first = d.first_invalid.as_deref().unwrap_or_default();
                    tracing::warn!(topic = %self.config.topic, partition, offset = message.offset(), invalid = d.invalid, first, "spans left out of a message as invalid");
                }
            }
            pending.messages.push(Entry { original: message.detach(), decoded });
        }
        // Partitions revoked while the batch filled are abandoned, uncommitted.
        batch.retain(|partition, pending| {
            let owned = self.view.generation_of(*partition) == Some(pending.generation);
            if !owned {
                metrics::counter!(crate::telemetry::KAFKA_ABANDONED_MESSAGES_TOTAL)
                    .increment(pending.messages.len() as u64);
            }
            owned
        });
        Some(batch)
    }

    fn partition_id(&self, partition: i32) -> PartitionId {
        PartitionId { group: self.config.group.clone(), topic: self.config.topic.clone(), partition }
    }

    /// Keeps the partitions this member holds in the ledger at their generation.
    async fn claim_all(&mut self, batch: BTreeMap<i32, Pending>) -> BTreeMap<i32, Pending> {
        let mut claimed = BTreeMap::new();
        for (partition, pending) in batch {
            if self.claims.get(&partition).is_some_and(|c| c.generation == pending.generation) {
                claimed.insert(partition, pending);
                continue;
            }
            let id = self.partition_id(partition);
            let member = self.view.member();
            let outcome = retry_storage("claim a partition", || {
                self.ledger.claim(&id, &member, pending.generation, self.indexer.now_ns())
            })
            .await;
            match outcome {
                Ok(owner) => {
                    tracing::info!(
                        partition,
                        generation = pending.generation,
                        from_offset = owner.progress.committed_offset,
                        "partition claimed in the ledger"
                    );
                    self.claims.insert(partition, Claim { generation: pending.generation, progress: owner.progress });
                    claimed.insert(partition, pending);
                }
                Err(fenced) => self.fenced(partition, "claim", &fenced),
            }
        }
        claimed
    }

    fn fenced(&mut self, partition: i32, operation: &'static str, error: &LedgerError) {
        self.claims.remove(&partition);
        metrics::counter!(crate::telemetry::FENCED_WRITES_TOTAL, "operation" => operation).increment(1);
        tracing::warn!(partition, error = %error, "refused by the ownership ledger; abandoning the partition's batch");
    }

    /// Writes every span of the batch; returns, per partition, its pending messages and
    /// the spans stored per tenant from offsets not yet counted in the ledger.
    async fn write(&self, batch: BTreeMap<i32, Pending>) -> Vec<(i32, Pending, BTreeMap<String, i64>)> {
        let writes = batch.into_iter().map(|(partition, mut pending)| async move {
            let counted = self.write_partition(partition, &mut pending).await;
            (partition, pending, counted)
        });
        futures::future::join_all(writes).await
    }

    /// One partition's messages, written together per tenant. A message that does not
    /// decode goes to the dead-letter topic; so does one the store refuses, found by
    /// writing a refused group's messages one at a time.
    async fn write_partition(&self, partition: i32, pending: &mut Pending) -> BTreeMap<String, i64> {
        let floor = self.claims.get(&partition).map_or(0, |c| c.progress.committed_offset);
        let mut groups: BTreeMap<(String, bool), (Vec<Span>, Vec<usize>)> = BTreeMap::new();
        for (at, entry) in pending.messages.iter_mut().enumerate() {
            let offset = entry.original.offset();
            match &mut entry.decoded {
                Ok(d) => {
                    let group = groups.entry((d.tenant.clone(), offset >= floor)).or_default();
                    group.0.append(&mut d.spans);
                    group.1.push(at);
                }
                Err(why) => {
                    metrics::counter!(crate::telemetry::KAFKA_POISON_MESSAGES_TOTAL).increment(1);
                    tracing::error!(partition, offset, reason = %why, "a message that cannot be decoded");
                    self.dead_letters.send(&entry.original, &format!("undecodable: {why}")).await;
                }
            }
        }
        let mut counted: BTreeMap<String, i64> = BTreeMap::new();
        for ((tenant, new), (spans, members)) in groups {
            let stored = match write_until_stored(self.indexer, &tenant, spans, new).await {
                Ok(stored) => stored,
                Err(refused) => {
                    tracing::warn!(partition, error = %refused, messages = members.len(), "the store refused a batch; writing its messages one at a time");
                    let entries = members.iter().filter_map(|&at| pending.messages.get(at));
                    self.write_one_at_a_time(entries, new).await
                }
            };
            if new {
                *counted.entry(tenant).or_default() += stored as i64;
            }
        }
        let now_ms = self.indexer.now_ns() / 1_000_000;
        for entry in pending.messages.iter().filter(|entry| entry.decoded.is_ok()) {
            if let Some(produced_ms) = entry.original.timestamp().to_millis() {
                let age_ms = now_ms.saturating_sub(u64::try_from(produced_ms).unwrap_or(0));
                metrics::histogram!(crate::telemetry::FRESHNESS_SECONDS).record(age_ms as f64 / 1e3);
            }
        }
        counted
    }

    /// Writes each message on its own; a refused one goes to the dead-letter topic.
    async fn write_one_at_a_time(&self, entries: impl Iterator<Item = &Entry>, new: bool) -> usize {
        let mut stored = 0;
        for entry in entries {
            // It decoded once; its spans were moved into the refused batch.
            let Ok(decoded) = decode(&entry.original, self.config.encoding) else { continue };
            match write_until_stored(self.indexer, &decoded.tenant, decoded.spans, new).await {
                Ok(count) => stored += count,
                Err(refused) => {
                    metrics::counter!(crate::telemetry::KAFKA_REFUSED_MESSAGES_TOTAL).increment(1);
                    self.dead_letters.send(&entry.original, &format!("refused by storage: {refused}")).await;
                }
            }
        }
        stored
    }

    /// Records each partition's progress in the ledger; returns the offsets to commit.
    async fn record(&mut self, stored: Vec<(i32, Pending, BTreeMap<String, i64>)>) -> Vec<(i32, i64)> {
        let mut committable = Vec::new();
        for (partition, pending, counted) in stored {
            let Some(claim) = self.claims.get(&partition) else { continue };
            let mut progress = claim.progress.clone();
            progress.committed_offset = progress.committed_offset.max(pending.next_offset());
            for (tenant, spans) in counted {
                *progress.tenant_spans.entry(tenant).or_default() += spans;
            }
            let (_, high) = self.watermarks(partition);
            progress.end_offset = high.max(progress.committed_offset);
            progress.last_write_ns = self.indexer.now_ns();
            let id = self.partition_id(partition);
            let member = self.view.member();
            let generation = claim.generation;
            match retry_storage("record progress", || self.ledger.record(&id, &member, generation, &progress)).await {
                Ok(()) => {
                    if let Some(claim) = self.claims.get_mut(&partition) {
                        claim.progress = progress;
                    }
                    committable.push((partition, pending.next_offset()));
                }
                Err(fenced) => self.fenced(partition, "record", &fenced),
            }
        }
        committable
    }

    fn commit(&self, offsets: Vec<(i32, i64)>) -> Result<(), ConsumerError> {
        let mut list = TopicPartitionList::new();
        for (partition, offset) in offsets {
            if self.view.generation_of(partition).is_some() {
                list.add_partition_offset(&self.config.topic, partition, Offset::Offset(offset))?;
            }
        }
        if list.count() == 0 {
            return Ok(());
        }
        if let Err(e) = self.consumer.commit(&list, CommitMode::Sync) {
            // The group moved on without us (an older generation): the next owner
            // resumes from the ledger and rewrites the same rows.
            metrics::counter!(crate::telemetry::KAFKA_COMMIT_FAILURES_TOTAL).increment(1);
            tracing::warn!(error = %e, "offset commit refused");
        }
        Ok(())
    }

    /// `(low, high)` watermarks as last fetched; no broker round trip.
    fn watermarks(&self, partition: i32) -> (i64, i64) {
        crate::group::ffi::cached_watermarks(self.consumer.client(), &self.config.topic, partition).unwrap_or((0, 0))
    }

    fn report_lag(&self) {
        for (partition, claim) in &self.claims {
            let (_, high) = self.watermarks(*partition);
            let lag = (high - claim.progress.committed_offset).max(0);
            self.view.set_position(*partition, claim.progress.committed_offset, high);
            let labels = [("topic", self.config.topic.clone()), ("partition", partition.to_string())];
            metrics::gauge!(crate::telemetry::KAFKA_CONSUMER_LAG, &labels).set(lag as f64);
        }
    }
}

/// Retries a ledger operation while the store is unavailable; a fencing refusal is final.
async fn retry_storage<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, LedgerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LedgerError>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Err(LedgerError::Storage(e)) => {
                metrics::counter!(tracekeeper_indexer::telemetry::STORAGE_WRITE_ERRORS_TOTAL, "table" => "ledger")
                    .increment(1);
                tracing::warn!(error = %e, retry_in = ?backoff, "could not {what}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Writes until the store accepts, retrying transient errors with backoff. Returns the
/// spans stored, or the error when the store refused the write as one that can never
/// succeed. `new`: these offsets were not stored before, so RED counts them.
async fn write_until_stored(indexer: &Indexer, tenant: &str, spans: Vec<Span>, new: bool) -> Result<usize, IndexError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let written = if new {
            indexer.index(tenant, spans.clone()).await
        } else {
            indexer.index_again(tenant, spans.clone()).await
        };
        match written {
            Ok(indexed) => return Ok(indexed.stored),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                metrics::counter!(tracekeeper_indexer::telemetry::STORAGE_WRITE_ERRORS_TOTAL, "table" => "spans")
                    .increment(1);
                tracing::warn!(error = %e, retry_in = ?backoff, "storage write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
