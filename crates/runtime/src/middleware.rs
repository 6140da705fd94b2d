//! The one tower layer behind Sigil's per-call middleware (metrics, trace
//! context, admission): each says what it does around a call, in
//! [`Middleware::handle`], and [`Around`] does the tower plumbing once.

use std::{
    future::Future,
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use http::{Request, Response};
use tonic::body::Body;

/// The answer to one call, on its way.
pub type CallFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

/// The rest of the stack: call it at most once to pass the request on.
pub type Next<E> = Box<dyn FnOnce(Request<Body>) -> CallFuture<E> + Send>;

/// Something done around every call.
pub trait Middleware: Clone + Send + Sync + 'static {
    /// Answers `request`, passing it on with `next` or answering itself.
    fn handle<E: Send + 'static>(&self, request: Request<Body>, next: Next<E>) -> CallFuture<E>;
}

/// The layer that puts a [`Middleware`] in front of a service.
#[derive(Debug, Clone)]
pub struct Around<M> {
    middleware: M,
}

impl<M> Around<M> {
    /// A layer running `middleware` around every call.
    pub fn new(middleware: M) -> Self {
        Around { middleware }
    }
}

impl<M: Clone, S> tower::Layer<S> for Around<M> {
    type Service = AroundService<M, S>;

    fn layer(&self, inner: S) -> Self::Service {
        AroundService {
            middleware: self.middleware.clone(),
            inner,
        }
    }
}

/// The service [`Around`] makes.
#[derive(Debug, Clone)]
pub struct AroundService<M, S> {
    middleware: M,
    inner: S,
}

impl<M, S> tower::Service<Request<Body>> for AroundService<M, S>
where
    M: Middleware,
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = CallFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The instance polled ready is the one that must take the call: hand
        // it to `next` and keep a fresh clone for the calls after.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let next: Next<S::Error> = Box::new(move |request| Box::pin(ready.call(request)));
        self.middleware.handle(request, next)
    }
}
