//! Logs and traces. Logs go to stderr (text or JSON lines, filtered by `PAYHOST_LOG`);
//! when `[tracing.otlp]` is configured, spans are also exported over OTLP/HTTP
//! (protobuf) to its endpoint, in batches from a thread of the exporter's own. Without
//! that section there is no exporter at all, and the request spans (debug level) cost
//! nothing. Text lines keep one event per line whatever a plugin or client put in it
//! (`one_line`).

mod one_line;

use std::time::Duration;

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::OtlpConfig;

/// What must be flushed before the process exits.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still buffered; call outside any async runtime (it blocks).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: the OTLP exporter did not shut down cleanly: {e}");
            }
        }
    }
}

/// The OTLP tracer provider for `config`, or `None` when there is none configured.
pub fn otlp_provider(config: Option<&OtlpConfig>) -> Result<Option<SdkTracerProvider>> {
    let Some(config) = config else { return Ok(None) };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(Duration::from_millis(config.timeout_ms))
        .build()
        .with_context(|| format!("OTLP exporter for {}", config.endpoint))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build();
    Ok(Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build()))
}

/// Installs the global subscriber: the log layer, and the OTLP layer when configured
/// (it takes this crate's spans at debug level whatever the log filter says).
pub fn init(json: bool, otlp: Option<&OtlpConfig>) -> Result<Telemetry> {
    let filter = EnvFilter::try_from_env("PAYHOST_LOG").unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(one_line::OneLineStderr);
    let logs = if json { logs.json().with_filter(filter).boxed() } else { logs.with_filter(filter).boxed() };
    let provider = otlp_provider(otlp)?;
    let spans = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer().with_tracer(p.tracer("payhost")).with_filter(EnvFilter::new("payhost=debug"))
    });
    tracing_subscriber::registry().with(logs).with(spans).try_init().context("installing the log subscriber")?;
    Ok(Telemetry { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_otlp_section_means_no_exporter() {
        assert!(otlp_provider(None).unwrap().is_none());
    }

    #[test]
    fn an_otlp_section_builds_an_exporter_without_reaching_it() {
        let config = OtlpConfig { endpoint: "http://127.0.0.1:9/v1/traces".into(), service_name: "payhost".into(), timeout_ms: 100 };
        let provider = otlp_provider(Some(&config)).unwrap().expect("an exporter");
        // Nothing was recorded, so shutting down sends nothing and needs no collector.
        provider.shutdown().unwrap();
    }
}
