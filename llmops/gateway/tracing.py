"""OpenTelemetry traces of the request path: one trace per request, a span per stage and per upstream try.

On with `otel: {endpoint: http://collector:4318}` in the gateway section, or the standard
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` (and `OTEL_SERVICE_NAME`). Off, the
gateway holds `None` and the request path tests one attribute: nothing is imported, made or called.

Spans are exported over OTLP/HTTP in batches from the SDK's worker thread, never on the request path.
A collector that is down or slow costs dropped spans, counted in `llmops_gateway_spans_dropped_total`
(export failures, and spans refused while the export queue is full). An incoming `traceparent` is
continued, and each upstream try sends its own `traceparent`, so an engine that traces (vLLM with
`--otlp-traces-endpoint`) joins the same trace. Attributes follow the GenAI semantic conventions; no
prompt or completion text is recorded.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pydantic import Field

from llmops.profiles.schema import StrictModel

MAX_QUEUE = 4096
OPERATION = {
    "chat": "chat",
    "messages": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "responses": "chat",
}


class OtelConfig(StrictModel):
    """`otel:` in the gateway section."""

    endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP endpoint: the collector's base URL (…:4318) or its full /v1/traces URL "
        "(default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    service_name: str = Field(default="llmops-gateway", description="service.name of the spans")


def traces_url(otel: OtelConfig | None, environ: dict[str, str] | None = None) -> str | None:
    """Where spans go, or None when tracing is off."""
    env = os.environ if environ is None else environ
    if otel is not None and otel.endpoint:
        base = otel.endpoint
    elif env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        base = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    else:
        return None
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


class _Counted:
    """The exporter, counting what it could not deliver; and the queue bound, counting what was refused."""

    def __init__(self, exporter: Any, dropped: Any) -> None:
        self.exporter = exporter
        self.dropped = dropped
        self.pending = 0
        self.lock = threading.Lock()

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self.exporter.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        with self.lock:
            self.pending -= len(spans)
        if result is not SpanExportResult.SUCCESS:
            self.dropped.inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class Tracing:
    def __init__(self, url: str, service_name: str, metrics: Any) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
        from opentelemetry.trace import SpanKind, set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        counted = _Counted(OTLPSpanExporter(endpoint=url, timeout=5), metrics.spans_dropped)

        class Exporter(SpanExporter):
            def export(self, spans: Any) -> Any:
                return counted.export(spans)

            def shutdown(self) -> None:
                counted.shutdown()

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return counted.force_flush(timeout_millis)

        batch = BatchSpanProcessor(Exporter(), max_queue_size=MAX_QUEUE, schedule_delay_millis=500)

        class Bounded(SpanProcessor):
            """Refuses (and counts) a span while MAX_QUEUE are waiting for export."""

            def on_start(self, span: Any, parent_context: Any = None) -> None:
                return None

            def on_end(self, span: Any) -> None:
                with counted.lock:
                    full = counted.pending >= MAX_QUEUE
                    if not full:
                        counted.pending += 1
                if full:
                    counted.dropped.inc()
                    return
                batch.on_end(span)

            def shutdown(self) -> None:
                batch.shutdown()

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return batch.force_flush(timeout_millis)

        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(Bounded())
        self.tracer = self.provider.get_tracer("llmops.gateway")
        self.propagator = TraceContextTextMapPropagator()
        self.SERVER, self.CLIENT = SpanKind.SERVER, SpanKind.CLIENT
        self._in = set_span_in_context

    def request(self, api: str, headers: dict[str, str]) -> Any:
        """The request's span, continuing the caller's trace when it sent a `traceparent`."""
        ctx = self.propagator.extract(headers)
        op = OPERATION.get(api, api)
        return self.tracer.start_span(
            op, context=ctx, kind=self.SERVER, attributes={"gen_ai.operation.name": op}
        )

    def child(self, parent: Any, name: str, client: bool = False, **attributes: Any) -> Any:
        kind = self.CLIENT if client else None
        ctx = self._in(parent)
        if kind is None:
            return self.tracer.start_span(name, context=ctx, attributes=attributes)
        return self.tracer.start_span(name, context=ctx, kind=kind, attributes=attributes)

    def headers(self, span: Any) -> dict[str, str]:
        """`traceparent` (and `tracestate`) naming this span, for the upstream request."""
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier, context=self._in(span))
        return carrier

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self.provider.shutdown)  # the last batch goes out (bounded by its timeout)


def open_tracing(otel: OtelConfig | None, environ: dict[str, str] | None, metrics: Any) -> Tracing | None:
    url = traces_url(otel, environ)
    if url is None:
        return None
    from llmops.errors import require_module

    require_module("opentelemetry.sdk", package="opentelemetry-sdk", extra="gateway", purpose="gateway otel")
    require_module(
        "opentelemetry.exporter.otlp.proto.http",
        package="opentelemetry-exporter-otlp-proto-http",
        extra="gateway",
        purpose="gateway otel",
    )
    env = os.environ if environ is None else environ
    name = (
        (otel.service_name if otel is not None else None) or env.get("OTEL_SERVICE_NAME") or "llmops-gateway"
    )
    if otel is None and env.get("OTEL_SERVICE_NAME"):
        name = env["OTEL_SERVICE_NAME"]
    return Tracing(url, name, metrics)
