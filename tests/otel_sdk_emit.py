"""Emits one trace through the official OpenTelemetry Python SDK and prints its id.

Driven by tests/otel_sdk.rs and tests/tls.rs: argv[1] is "http" or "grpc", argv[2] the
endpoint, and an optional argv[3] a CA file: then the export goes over TLS and trusts
only that CA.
"""
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

protocol, endpoint = sys.argv[1], sys.argv[2]
ca = sys.argv[3] if len(sys.argv) > 3 else None
scheme = "https" if ca else "http"
if protocol == "http":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=f"{scheme}://{endpoint}/v1/traces", certificate_file=ca or None)
elif ca:
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    with open(ca, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    exporter = OTLPSpanExporter(endpoint=f"https://{endpoint}", insecure=False, credentials=credentials)
else:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=f"http://{endpoint}", insecure=True)

provider = TracerProvider(resource=Resource.create({"service.name": f"py-{protocol}", "deployment.environment": "test"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("tracekeeper-tests", "0.1")

with tracer.start_as_current_span("checkout", kind=trace.SpanKind.SERVER) as root:
    root.set_attribute("http.status_code", 200)
    root.set_attribute("ratio", 0.5)
    root.set_attribute("tags", ["a", "b"])
    root.add_event("validated", {"items": 3})
    with tracer.start_as_current_span("charge", kind=trace.SpanKind.CLIENT) as child:
        child.set_status(Status(StatusCode.ERROR, "card declined"))
    trace_id = format(root.get_span_context().trace_id, "032x")

if not provider.force_flush(10_000):
    sys.exit("export did not finish")
provider.shutdown()
print(trace_id)
