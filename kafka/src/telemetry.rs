//! The metrics of the Kafka producer and consumer, described.

use tracekeeper_model::telemetry::{Metric, NO_LABELS};

pub const KAFKA_PRODUCE_SECONDS: &str = "tracekeeper_kafka_produce_seconds";
pub const KAFKA_PRODUCE_ERRORS_TOTAL: &str = "tracekeeper_kafka_produce_errors_total";

pub const PRODUCER: &[Metric] = &[
    Metric::histogram(KAFKA_PRODUCE_SECONDS, "Time for Kafka to acknowledge one request's messages."),
    Metric::counter(KAFKA_PRODUCE_ERRORS_TOTAL, "Requests whose messages Kafka did not acknowledge.", NO_LABELS),
];

pub const KAFKA_CONSUMER_LAG: &str = "tracekeeper_kafka_consumer_lag";
pub const KAFKA_PARTITION_OWNED: &str = "tracekeeper_kafka_partition_owned";
pub const KAFKA_TOPIC_PARTITIONS: &str = "tracekeeper_kafka_topic_partitions";
pub const FRESHNESS_SECONDS: &str = "tracekeeper_freshness_seconds";
pub const KAFKA_REBALANCES_TOTAL: &str = "tracekeeper_kafka_rebalances_total";
pub const FENCED_WRITES_TOTAL: &str = "tracekeeper_fenced_writes_total";
pub const KAFKA_POISON_MESSAGES_TOTAL: &str = "tracekeeper_kafka_poison_messages_total";
pub const KAFKA_REFUSED_MESSAGES_TOTAL: &str = "tracekeeper_kafka_refused_messages_total";
pub const KAFKA_DEAD_LETTERS_TOTAL: &str = "tracekeeper_kafka_dead_letters_total";
pub const KAFKA_DEAD_LETTER_ERRORS_TOTAL: &str = "tracekeeper_kafka_dead_letter_errors_total";
pub const KAFKA_COMMIT_FAILURES_TOTAL: &str = "tracekeeper_kafka_commit_failures_total";
pub const KAFKA_RECEIVE_ERRORS_TOTAL: &str = "tracekeeper_kafka_receive_errors_total";
pub const KAFKA_ABANDONED_MESSAGES_TOTAL: &str = "tracekeeper_kafka_abandoned_messages_total";
pub const KAFKA_STALLS_TOTAL: &str = "tracekeeper_kafka_stalls_total";

pub const CONSUMER: &[Metric] = &[
    Metric::gauge(
        KAFKA_CONSUMER_LAG,
        "Messages not yet indexed, per owned partition (0 once the partition is given up).",
        false,
    ),
    Metric::gauge(KAFKA_PARTITION_OWNED, "1 while this member owns the partition, 0 once it gave it up.", false),
    Metric::gauge(KAFKA_TOPIC_PARTITIONS, "Partitions the topic has, as the broker last said.", false),
    Metric::histogram(FRESHNESS_SECONDS, "From a message's Kafka timestamp to its spans being stored and searchable."),
    Metric::counter(
        KAFKA_REBALANCES_TOTAL,
        "Group rebalances seen by this member, by event (assigned, revoked, lost).",
        &[&[("event", "assigned")], &[("event", "revoked")], &[("event", "lost")]],
    ),
    Metric::counter(
        FENCED_WRITES_TOTAL,
        "Writes the ownership ledger refused because a newer owner holds the partition.",
        &[&[("operation", "claim")], &[("operation", "record")]],
    ),
    Metric::counter(KAFKA_POISON_MESSAGES_TOTAL, "Messages that could not be decoded.", NO_LABELS),
    Metric::counter(KAFKA_REFUSED_MESSAGES_TOTAL, "Messages whose rows the store refused.", NO_LABELS),
    Metric::counter(KAFKA_DEAD_LETTERS_TOTAL, "Messages published to the dead-letter topic.", NO_LABELS),
    Metric::counter(
        KAFKA_DEAD_LETTER_ERRORS_TOTAL,
        "Failures to publish to the dead-letter topic (retried).",
        NO_LABELS,
    ),
    Metric::counter(KAFKA_COMMIT_FAILURES_TOTAL, "Offset commits the group refused.", NO_LABELS),
    Metric::counter(KAFKA_RECEIVE_ERRORS_TOTAL, "Errors receiving from Kafka.", NO_LABELS),
    Metric::counter(
        KAFKA_ABANDONED_MESSAGES_TOTAL,
        "Messages dropped from memory because their partition moved to another owner (its new owner reads them again).",
        NO_LABELS,
    ),
    Metric::counter(
        KAFKA_STALLS_TOTAL,
        "Times this member left the group because a batch was not stored within --stall-timeout.",
        NO_LABELS,
    ),
];
