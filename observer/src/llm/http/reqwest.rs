//! [`LlmMiddleware`]: the instrumentation as a `reqwest-middleware` middleware, and the `reqwest` plumbing shared
//! with the tower layer's `reqwest::Request` service.

use std::future::Future;
use std::pin::Pin;

use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tracing::Instrument;

use super::body::LlmBody;
use super::detect::detect;
use super::record::Recorder;
use super::Options;

/// A [`reqwest_middleware::Middleware`] that traces OpenAI-compatible and Anthropic calls (see the
/// [module docs](crate::llm#http-instrumentation-feature-llm-http)); every other request passes through untouched.
///
/// ```no_run
/// # fn main() {
/// use observer::llm::LlmMiddleware;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(LlmMiddleware::new()).build();
/// # let _ = client;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LlmMiddleware {
    options: Options,
}

super::options_builder!(LlmMiddleware);

impl Middleware for LlmMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'async_trait>>
    where
        Self: 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
    {
        let recorder = begin(&self.options, &req);
        Box::pin(async move {
            match recorder {
                None => next.run(req, extensions).await,
                Some(recorder) => {
                    let span = recorder.span().clone();
                    let result = next.run(req, extensions).instrument(span).await;
                    end(recorder, result)
                }
            }
        })
    }
}

/// The recorder of an LLM call, or `None` to pass `req` through.
pub(crate) fn begin(options: &Options, req: &Request) -> Option<Box<Recorder>> {
    let endpoint = detect(req.method(), req.url().path())?;
    let settings = options.resolve(endpoint.provider())?;
    let body = req.body().and_then(reqwest::Body::as_bytes);
    let url = req.url();
    Some(Box::new(Recorder::start(endpoint, url.host_str(), url.port_or_known_default(), body, settings)))
}

/// Hands the response (or error) back to the caller, its body observed by `recorder`.
pub(crate) fn end<E: std::fmt::Display>(
    mut recorder: Box<Recorder>,
    result: Result<Response, E>,
) -> Result<Response, E> {
    match result {
        Ok(response) => {
            let content_type = response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            recorder.on_response(response.status().as_u16(), content_type);
            Ok(wrap_response(response, recorder))
        }
        Err(error) => {
            recorder.on_error("transport", &error.to_string());
            Err(error)
        }
    }
}

/// The same response with its body wrapped in an [`LlmBody`] (status, headers, extensions and URL kept).
fn wrap_response(response: Response, recorder: Box<Recorder>) -> Response {
    use reqwest::ResponseBuilderExt;
    let url = response.url().clone();
    let (mut parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    // `From<http::Response>` takes the URL from an extension only the builder extension can set.
    if let Ok(with_url) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(with_url.into_parts().0.extensions);
    }
    let body = reqwest::Body::wrap(LlmBody::new(body, Some(recorder)));
    Response::from(http::Response::from_parts(parts, body))
}
