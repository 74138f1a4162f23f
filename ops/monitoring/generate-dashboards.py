#!/usr/bin/env python3
"""Writes the Grafana dashboards in ops/monitoring/dashboards/, one per concern.

The JSON files are what Grafana imports; this script is how they are kept consistent
(datasource and job variables, layout). Edit the panels here and run it again:
    python3 ops/monitoring/generate-dashboards.py
tests/monitoring.rs checks that the files are what this script writes, that every query
parses (with promtool), and that every metric they name is exported by a live tracekeeper.
"""
import json
import pathlib
import sys

JOB = 'job=~"$job"'


def rate(metric, by, extra=""):
    sel = f"{{{JOB}{extra}}}"
    return f"sum by ({by}) (rate({metric}{sel}[$__rate_interval]))"


def quantile(q, metric, by=""):
    group = f"le, {by}" if by else "le"
    return (f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({metric}_bucket{{{JOB}}}[$__rate_interval])))")


def panel(title, targets, unit="short", description="", kind="timeseries"):
    return {"title": title, "targets": targets, "unit": unit, "description": description, "type": kind}


def t(expr, legend):
    return {"expr": expr, "legend": legend}


DASHBOARDS = {
    "ingest": ("Ingest", "Receivers, per-tenant rates, rejects by reason, refusals (429/503).", [
        panel("Spans received by protocol", [t(rate("tracekeeper_spans_received_total", "protocol"), "{{protocol}}")],
              "ops", "Spans decoded from OTLP/HTTP, OTLP/gRPC and Zipkin requests."),
        panel("Spans accepted by tenant", [t(rate("tracekeeper_spans_accepted_total", "tenant"), "{{tenant}}")],
              "ops", "Spans acknowledged to clients."),
        panel("Spans rejected by reason", [t(rate("tracekeeper_spans_rejected_total", "reason"), "{{reason}}")],
              "ops", "Refused with a reason: invalid, in the future, or already expired."),
        panel("Spans dropped by reason", [t(rate("tracekeeper_spans_dropped_total", "reason"), "{{reason}}")],
              "ops", "Accepted for writing and not stored; the client was told to retry."),
        panel("Ingest requests refused (429/503)", [
            t(rate("tracekeeper_requests_refused_total", "reason"), "{{reason}}"),
            t(rate("tracekeeper_http_requests_total", "listener", ', listener=~"otlp-http|otlp-grpc|zipkin", status=~"429|503"'),
              "{{listener}} answered 429/503"),
        ], "reqps"),
        panel("Share of ingest requests refused", [t("tracekeeper:ingest_requests_refused:ratio5m{" + JOB + "}", "{{job}}")],
              "percentunit", "Recording rule; the TracekeeperIngestRefusing alert fires above 5%."),
        panel("Ingest request latency p99 by route", [
            t(quantile(0.99, "tracekeeper_http_request_duration_seconds", "route") .replace(
                f"{{{JOB}}}", f'{{{JOB}, listener=~"otlp-http|otlp-grpc|zipkin"}}'), "{{route}}")], "s"),
        panel("Ready", [t("tracekeeper_ready{" + JOB + "}", "{{instance}}")], "short",
              "1 while /ready answers 200."),
    ]),
    "pipeline": ("Pipeline", "Kafka produce latency, consumer lag per partition, rebalances, fenced writes, poison messages.", [
        panel("Kafka produce latency", [
            t(quantile(0.5, "tracekeeper_kafka_produce_seconds"), "p50"),
            t(quantile(0.99, "tracekeeper_kafka_produce_seconds"), "p99"),
        ], "s", "Time for Kafka to acknowledge one request's messages (collector)."),
        panel("Kafka produce errors", [t(rate("tracekeeper_kafka_produce_errors_total", "instance"), "{{instance}}")], "reqps"),
        panel("Consumer lag per partition", [t("sum by (topic, partition) (tracekeeper_kafka_consumer_lag{" + JOB + "})",
                                               "{{topic}}/{{partition}}")], "short"),
        panel("Partitions owned", [
            t("sum by (topic) (tracekeeper_kafka_partition_owned{" + JOB + "})", "{{topic}} owned"),
            t("max by (topic) (tracekeeper_kafka_topic_partitions{" + JOB + "})", "{{topic}} partitions"),
        ], "short", "Owned below partitions raises TracekeeperPartitionWithoutOwner."),
        panel("Freshness", [
            t(quantile(0.5, "tracekeeper_freshness_seconds"), "p50"),
            t(quantile(0.99, "tracekeeper_freshness_seconds"), "p99"),
        ], "s", "From the collector's Kafka write to the spans being searchable."),
        panel("Rebalances", [t(rate("tracekeeper_kafka_rebalances_total", "event", ""), "{{event}}")], "ops"),
        panel("Fenced writes", [t(rate("tracekeeper_fenced_writes_total", "operation"), "{{operation}}")], "ops",
              "A stale owner's write refused by the ownership ledger."),
        panel("Poison and dead letters", [
            t(rate("tracekeeper_kafka_poison_messages_total", "job"), "undecodable"),
            t(rate("tracekeeper_kafka_refused_messages_total", "job"), "refused by storage"),
            t(rate("tracekeeper_kafka_dead_letters_total", "job"), "sent to the dead-letter topic"),
            t(rate("tracekeeper_kafka_dead_letter_errors_total", "job"), "dead-letter publish failures"),
        ], "ops"),
        panel("Commit failures and abandoned messages", [
            t(rate("tracekeeper_kafka_commit_failures_total", "instance"), "commit refused {{instance}}"),
            t(rate("tracekeeper_kafka_abandoned_messages_total", "instance"), "abandoned {{instance}}"),
        ], "ops"),
    ]),
    "storage": ("Storage", "Write latency, rows per span, errors.", [
        panel("Batch write latency", [
            t(quantile(0.5, "tracekeeper_storage_write_seconds"), "p50"),
            t(quantile(0.99, "tracekeeper_storage_write_seconds"), "p99"),
        ], "s", "One batch written durably (embedded store or CQL)."),
        panel("CQL write latency p99 by table", [t(quantile(0.99, "tracekeeper_cql_write_seconds", "table"), "{{table}}")], "s"),
        panel("CQL rows per span", [t("tracekeeper:cql_rows_per_span:ratio5m{" + JOB + "}", "{{job}}")], "short",
              "Rows written per span stored: the distributed write path's cost."),
        panel("CQL rows written by table", [t(rate("tracekeeper_cql_rows_written_total", "table"), "{{table}}")], "ops"),
        panel("Spans stored", [t(rate("tracekeeper_spans_stored_total", "tenant"), "{{tenant}}")], "ops"),
        panel("Write errors", [
            t(rate("tracekeeper_cql_write_errors_total", "table, kind"), "CQL {{table}} {{kind}}"),
            t(rate("tracekeeper_storage_write_errors_total", "table"), "retried {{table}}"),
        ], "ops"),
    ]),
    "query": ("Query", "Rate, errors and latency per route.", [
        panel("Requests by route", [t(rate("tracekeeper_http_requests_total", "route", ', listener="query"'), "{{route}}")], "reqps"),
        panel("Errors by route (5xx)", [t("tracekeeper:http_requests_errors:ratio5m{" + JOB + ', listener="query"}', "{{route}}")],
              "percentunit"),
        panel("Latency p50 by route", [
            t(quantile(0.5, "tracekeeper_http_request_duration_seconds", "route").replace(
                f"{{{JOB}}}", f'{{{JOB}, listener="query"}}'), "{{route}}")], "s"),
        panel("Latency p99 by route", [
            t(quantile(0.99, "tracekeeper_http_request_duration_seconds", "route").replace(
                f"{{{JOB}}}", f'{{{JOB}, listener="query"}}'), "{{route}}")], "s"),
        panel("Queries refused", [
            t(rate("tracekeeper_queries_refused_total", "reason"), "{{reason}}"),
            t(rate("tracekeeper_http_requests_refused_total", "reason", ', listener="query"'), "serving layer: {{reason}}"),
        ], "reqps", "tenant_busy: the tenant had its share of the node's queries running."),
    ]),
    "retention": ("Retention", "Last run, expired rows, watermark lag.", [
        panel("Time since the last run", [t("time() - max(tracekeeper_retention_last_run_timestamp_seconds{" + JOB + "} > 0)",
                                            "age")], "s", "TracekeeperNoRetentionRun fires past 15 minutes.", "stat"),
        panel("Last run duration", [t("max by (instance) (tracekeeper_retention_last_run_duration_seconds{" + JOB + "})",
                                      "{{instance}}")], "s"),
        panel("Rows expired", [t(rate("tracekeeper_retention_rows_expired_total", "how"), "{{how}}")], "ops"),
        panel("Buckets expired", [t(rate("tracekeeper_retention_buckets_expired_total", "how"), "{{how}}")], "ops"),
        panel("Watermark lag by tenant", [t("max by (tenant) (tracekeeper_retention_watermark_lag_seconds{" + JOB + "})",
                                            "{{tenant}}")], "s"),
        panel("Lease holder", [t("tracekeeper_retention_leader{" + JOB + "}", "{{instance}}")], "short",
              "1 on the worker that holds the retention lease."),
        panel("Fenced runs", [t(rate("tracekeeper_retention_fenced_total", "instance"), "{{instance}}")], "ops"),
    ]),
}


def dashboard(key, title, description, panels):
    out = []
    for i, p in enumerate(panels):
        width = 12
        out.append({
            "id": i + 1,
            "type": p["type"],
            "title": p["title"],
            "description": p["description"],
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": width, "x": (i % 2) * width, "y": (i // 2) * 8},
            "fieldConfig": {"defaults": {"unit": p["unit"]}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if p["type"] == "timeseries" else {},
            "targets": [{"refId": chr(ord("A") + n), "expr": target["expr"], "legendFormat": target["legend"],
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                        for n, target in enumerate(p["targets"])],
        })
    return {
        "uid": f"tracekeeper-{key}",
        "title": f"tracekeeper / {title}",
        "description": description,
        "tags": ["tracekeeper"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            {"name": "job", "label": "Job", "type": "query",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(tracekeeper_build_info, job)", "refId": "jobs"},
             "definition": "label_values(tracekeeper_build_info, job)",
             "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2, "hide": 0},
        ]},
        "panels": out,
    }


def main():
    """Writes into ops/monitoring/dashboards/, or into the directory given."""
    default = pathlib.Path(__file__).resolve().parent / "dashboards"
    here = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default
    here.mkdir(exist_ok=True)
    for key, (title, description, panels) in DASHBOARDS.items():
        text = json.dumps(dashboard(key, title, description, panels), indent=2, sort_keys=True) + "\n"
        (here / f"{key}.json").write_text(text)


if __name__ == "__main__":
    main()
