//! A real OTLP trace receiver, as a collector runs it: the `TraceService`
//! from opentelemetry-proto, keeping every span it is sent.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse, trace_service_server::TraceService,
    },
    trace::v1::Span,
};
use tonic::{Request, Response, Status};

/// The collector's receiving end: keeps every span it is sent.
#[derive(Clone, Default)]
pub struct Receiver(pub Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// The first span called `name`.
    #[allow(dead_code)]
    pub fn named(&self, name: &str) -> Option<Span> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|span| span.name == name)
            .cloned()
    }
}
