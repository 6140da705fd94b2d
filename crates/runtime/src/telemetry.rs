//! Logging and tracing. Logs go to stderr (human or JSON); spans go to an
//! OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and nowhere
//! otherwise. Spans carry ids, never secrets.

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer, Registry, fmt, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::{LogArgs, LogFormat};

/// Where to send spans: read from the standard OpenTelemetry variables.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The collector's OTLP/gRPC endpoint, `http://host:4317`.
    pub endpoint: String,
    /// `service.name` of every span.
    pub service_name: String,
}

impl OtlpSettings {
    /// From `OTEL_EXPORTER_OTLP_ENDPOINT` (none: no export) and
    /// `OTEL_SERVICE_NAME` (default `service`). `OTEL_RESOURCE_ATTRIBUTES`
    /// is read by the SDK itself.
    pub fn from_env(service: &str) -> Option<Self> {
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|endpoint| !endpoint.is_empty())?;
        let service_name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| service.to_owned());
        Some(OtlpSettings {
            endpoint,
            service_name,
        })
    }
}

/// Whether spans go to a collector: without one, the per-call span only
/// labels log lines, and carries nothing the logs do not use.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether [`init_telemetry`] set up span export.
pub(crate) fn exporting_spans() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps the span pipeline alive; flushes what is buffered when dropped.
#[must_use = "dropping it stops the export of spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber, logging to stderr, and the OTLP pipeline
/// when `otlp` is given. Call once, inside the Tokio runtime (the exporter
/// is a tonic client).
pub fn init_telemetry(args: &LogArgs, otlp: Option<OtlpSettings>) -> Result<Telemetry, String> {
    // Human lines are coloured on a terminal only: a file or a log
    // collector would keep the escape codes.
    let colour = std::io::stderr().is_terminal();
    install(args, otlp, std::io::stderr, colour)
}

/// As [`init_telemetry`], with log lines going to `writer`, uncoloured:
/// what tests use to read every line.
pub fn init_telemetry_with_writer<W>(
    args: &LogArgs,
    otlp: Option<OtlpSettings>,
    writer: W,
) -> Result<Telemetry, String>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    install(args, otlp, writer, false)
}

fn install<W>(
    args: &LogArgs,
    otlp: Option<OtlpSettings>,
    writer: W,
    colour: bool,
) -> Result<Telemetry, String>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&args.log_filter)
        .map_err(|error| format!("bad --log-filter {:?}: {error}", args.log_filter))?;
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match args.log_format {
        LogFormat::Human => fmt::layer().with_ansi(colour).with_writer(writer).boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(writer).boxed(),
    };
    let provider = otlp.map(tracer_provider).transpose()?;
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    let spans = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("sigil")));
    // W3C `traceparent` in and out, whether or not spans are exported, so a
    // trace passes through a Sigil without export unbroken.
    global::set_text_map_propagator(TraceContextPropagator::new());
    Registry::default()
        .with(logs.with_filter(filter))
        .with(spans)
        .try_init()
        .map_err(|error| format!("cannot install logging: {error}"))?;
    Ok(Telemetry { provider })
}

fn tracer_provider(settings: OtlpSettings) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&settings.endpoint)
        .build()
        .map_err(|error| format!("bad OTEL_EXPORTER_OTLP_ENDPOINT: {error}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name)
                .build(),
        )
        .build();
    global::set_tracer_provider(provider.clone());
    Ok(provider)
}
