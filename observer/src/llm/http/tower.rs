//! [`LlmLayer`]: the instrumentation as a `tower` layer, over `http::Request<B>` → `http::Response<B>` services
//! and over `reqwest::Request` → `reqwest::Response` services (e.g. a `reqwest::Client`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use super::body::LlmBody;
use super::detect::detect;
use super::record::Recorder;
use super::Options;

/// The error type of [`LlmService`] over `http` requests: the inner service's error, or the request body's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest request body read for its parameters (larger or unsized bodies are passed on unread).
pub const MAX_REQUEST_BYTES: u64 = 32 << 20;

/// A [`tower_layer::Layer`] that traces OpenAI-compatible and Anthropic calls (see the [module docs](crate::llm#http-instrumentation-feature-llm-http)).
///
/// The service it makes, [`LlmService`], wraps either
/// - an `http::Request<B>` → `http::Response<RB>` service: responses become `http::Response<LlmBody<RB>>`; the
///   request body of an LLM call is read into memory (at most [`MAX_REQUEST_BYTES`], and only when its size is
///   known) and passed on as `B::from(Bytes)`, trailers dropped; or
/// - a `reqwest::Request` → `reqwest::Response` service such as `reqwest::Client` itself (the request body is
///   read in place; the response keeps its type).
///
/// ```
/// use observer::llm::LlmLayer;
/// use tower_layer::Layer;
///
/// let service = LlmLayer::new().layer(reqwest::Client::new());
/// # let _ = service;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LlmLayer {
    options: Options,
}

super::options_builder!(LlmLayer);

impl<S> Layer<S> for LlmLayer {
    type Service = LlmService<S>;

    fn layer(&self, inner: S) -> LlmService<S> {
        LlmService { inner, options: self.options }
    }
}

/// The service made by [`LlmLayer`].
#[derive(Debug, Clone)]
pub struct LlmService<S> {
    inner: S,
    options: Options,
}

impl<S> LlmService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<reqwest::Request> for LlmService<S>
where
    S: Service<reqwest::Request, Response = reqwest::Response>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = reqwest::Response;
    type Error = S::Error;
    type Future = BoxFuture<reqwest::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: reqwest::Request) -> Self::Future {
        match super::reqwest::begin(&self.options, &req) {
            None => Box::pin(self.inner.call(req)),
            Some(recorder) => {
                let future = self.inner.call(req).instrument(recorder.span().clone());
                Box::pin(async move { super::reqwest::end(recorder, future.await) })
            }
        }
    }
}

impl<S, B, RB> Service<http::Request<B>> for LlmService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    RB: Body,
    RB::Data: AsRef<[u8]>,
    RB::Error: std::fmt::Display,
{
    type Response = http::Response<LlmBody<RB>>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response, BoxError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let settings = detect(req.method(), req.uri().path())
            .and_then(|endpoint| Some((endpoint, self.options.resolve(endpoint.provider())?)));
        let Some((endpoint, settings)) = settings else {
            let future = self.inner.call(req);
            return Box::pin(async move {
                let response = future.await.map_err(Into::into)?;
                Ok(response.map(LlmBody::passthrough))
            });
        };
        // The ready inner service handles this request; a clone takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let readable = req.body().size_hint().upper().is_some_and(|n| n <= MAX_REQUEST_BYTES);
            let (req, body) = if readable {
                let (parts, body) = req.into_parts();
                let bytes = collect(body).await.map_err(Into::into)?;
                (http::Request::from_parts(parts, B::from(bytes.clone())), Some(bytes))
            } else {
                (req, None)
            };
            let uri = req.uri();
            let mut recorder = Box::new(Recorder::start(
                endpoint,
                uri.host(),
                uri.port_u16().or_else(|| default_port(uri.scheme_str())),
                body.as_deref(),
                settings,
            ));
            match inner.call(req).instrument(recorder.span().clone()).await {
                Ok(response) => {
                    let content_type = response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                    recorder.on_response(response.status().as_u16(), content_type);
                    Ok(response.map(|b| LlmBody::new(b, Some(recorder))))
                }
                Err(error) => {
                    let error: BoxError = error.into();
                    recorder.on_error("transport", &error.to_string());
                    Err(error)
                }
            }
        })
    }
}

fn default_port(scheme: Option<&str>) -> Option<u16> {
    match scheme {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    }
}

/// Reads a whole body (data frames only).
async fn collect<B: Body>(body: B) -> Result<Bytes, B::Error> {
    let mut body = std::pin::pin!(body);
    let mut buf = Vec::with_capacity(usize::try_from(body.size_hint().lower()).unwrap_or(0).min(1 << 20));
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        if let Ok(mut data) = frame?.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                buf.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    Ok(Bytes::from(buf))
}
