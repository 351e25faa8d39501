"""Exports GenAI spans to LangGuard with the OpenTelemetry Python SDK's own OTLP/HTTP exporter
(protobuf, gzip), as an app instrumented with OpenLLMetry or OpenLIT would.

usage: otlp_exporter.py <endpoint> <ingest key> <count>
Exits 0 only when every export succeeded.
"""

import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class Checked(SpanExporter):
    """Remembers whether every export succeeded."""

    def __init__(self, inner):
        self.inner = inner
        self.failures = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def main():
    endpoint, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    exporter = Checked(
        OTLPSpanExporter(
            endpoint=endpoint,
            headers={"Authorization": f"Bearer {key}", "X-LangGuard-Gateway": "python-app"},
            compression=Compression.Gzip,
            timeout=10,
        )
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-service"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("langguard-test")
    with tracer.start_as_current_span("handle request"):  # not a GenAI call: skipped
        for n in range(count):
            with tracer.start_as_current_span("chat gpt-4o") as span:
                span.set_attribute("gen_ai.system", "openai")
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("gen_ai.request.model", "gpt-4o")
                span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
                span.set_attribute("gen_ai.usage.input_tokens", 40 + n)
                span.set_attribute("gen_ai.usage.output_tokens", 9)
                span.set_attribute("user.id", f"user-{n}")
    provider.shutdown()
    if exporter.failures:
        print(f"{exporter.failures} exports failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
