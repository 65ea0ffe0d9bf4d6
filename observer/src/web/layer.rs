//! [`ObserverLayer`] and its service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HOST, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use tracing::field::Empty;
use tracing::{Instrument as _, Span};

use super::auth::{audit_failure, credential, Credential, Failure, RequestInfo};
use super::{BearerVerifier, ClientIp, InvalidTokenPolicy};
use crate::actor::context::scoped_actor;
use crate::error::TokenError;
use crate::{ActorContext, ClaimMappings};

#[derive(Clone)]
struct Config {
    verifier: Option<Arc<dyn BearerVerifier>>,
    on_invalid: InvalidTokenPolicy,
    require_auth: bool,
    mappings: Option<ClaimMappings>,
    client_ip: ClientIp,
    route: Option<Arc<RouteFn>>,
}

/// Finds a request's route template (e.g. `/documents/{id}`); see [`ObserverLayer::route`].
pub type RouteFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// A [`tower_layer::Layer`] for HTTP servers (axum, hyper, tonic, …): a server span per request and the
/// request's actor from a verified bearer token. See the [module docs](super) for what it does in detail.
///
/// `Clone` is cheap; the verifier is shared by every service the layer makes.
#[derive(Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct ObserverLayer {
    config: Arc<Config>,
}

impl fmt::Debug for ObserverLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("ObserverLayer")
            .field("verifies_tokens", &c.verifier.is_some())
            .field("on_invalid", &c.on_invalid)
            .field("require_auth", &c.require_auth)
            .field("claim_mappings", &c.mappings)
            .field("client_ip", &c.client_ip)
            .field("route", &c.route.is_some())
            .finish()
    }
}

impl ObserverLayer {
    /// A layer that verifies bearer tokens with `verifier` — a [`JwksCache`](crate::actor::JwksCache) or a
    /// [`TokenVerifier`](crate::actor::TokenVerifier) — and runs each request with the token's actor. Defaults: invalid
    /// tokens are rejected ([`InvalidTokenPolicy::Reject`]), requests without a token go on anonymously, claims
    /// are mapped with the mappings configured at [`init`](crate::init), no client IP.
    pub fn new(verifier: impl BearerVerifier) -> Self {
        Self {
            config: Arc::new(Config {
                verifier: Some(Arc::new(verifier)),
                on_invalid: InvalidTokenPolicy::Reject,
                require_auth: false,
                mappings: None,
                client_ip: ClientIp::None,
                route: None,
            }),
        }
    }

    /// A layer that only opens the server span (like the guide's `instrument_web_framework`): the
    /// `Authorization` header is ignored, never trusted, and every request runs without an actor.
    pub fn without_auth() -> Self {
        Self {
            config: Arc::new(Config {
                verifier: None,
                on_invalid: InvalidTokenPolicy::Anonymous,
                require_auth: false,
                mappings: None,
                client_ip: ClientIp::None,
                route: None,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// What to do with a token that fails verification (default [`InvalidTokenPolicy::Reject`]).
    pub fn on_invalid_token(mut self, policy: InvalidTokenPolicy) -> Self {
        self.config_mut().on_invalid = policy;
        self
    }

    /// Whether a request without a bearer token is refused (`401` with `WWW-Authenticate: Bearer` and an
    /// AUTHENTICATION failure audit event, reason `missing_token`). Default `false`: it goes on without an actor
    /// and without an audit event. A header with another scheme (`Basic …`) counts as no token. Ignored by
    /// [`without_auth`](Self::without_auth) layers.
    pub fn require_auth(mut self, required: bool) -> Self {
        self.config_mut().require_auth = required;
        self
    }

    /// Maps claims to the actor with `mappings` instead of the ones configured at [`init`](crate::init).
    pub fn claim_mappings(mut self, mappings: ClaimMappings) -> Self {
        self.config_mut().mappings = Some(mappings);
        self
    }

    /// Where the client IP comes from (default [`ClientIp::None`]).
    pub fn client_ip(mut self, source: ClientIp) -> Self {
        self.config_mut().client_ip = source;
        self
    }

    /// How to find a request's route template, so that spans are named `"{METHOD} {route}"` (and get
    /// `http.route`) instead of `"{METHOD} {path}"`: one span name per endpoint rather than one per document id.
    /// With axum, add the layer with `Router::route_layer` (it then runs after routing) and read axum's
    /// `MatchedPath`:
    ///
    /// ```ignore
    /// let layer = ObserverLayer::new(keys)
    ///     .route(|parts| parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned()));
    /// let app = Router::new().route("/documents/{id}", get(read_document)).route_layer(layer);
    /// ```
    ///
    /// When `route` returns `None` (e.g. no route matched), the path is used.
    pub fn route<F>(mut self, route: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.config_mut().route = Some(Arc::new(route));
        self
    }
}

impl<S> tower_layer::Layer<S> for ObserverLayer {
    type Service = ObserverService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ObserverService { inner, config: self.config.clone() }
    }
}

/// The service [`ObserverLayer`] wraps around the inner service.
#[derive(Clone)]
pub struct ObserverService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for ObserverService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObserverService").field("layer", &ObserverLayer { config: self.config.clone() }).finish()
    }
}

/// The response future of [`ObserverService`].
pub type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send + 'static>>;

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for ObserverService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The clone that was not made ready stays here; the ready one serves this request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = req.into_parts();
        let info = RequestInfo::new(&parts, &self.config.client_ip);
        let route = self.config.route.as_ref().and_then(|f| f(&parts));
        let span = server_span(&parts, &info, route.as_deref());
        let fut = handle(self.config.clone(), inner, parts, body, info);
        Box::pin(fut.instrument(span))
    }
}

/// The server span, with the HTTP semantic-convention attributes known before the response.
fn server_span(parts: &http::request::Parts, info: &RequestInfo, route: Option<&str>) -> Span {
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{} {}", info.method, route.unwrap_or(&info.path)),
        http.route = route,
        otel.kind = "server",
        http.request.method = %info.method,
        url.path = %info.path,
        url.scheme = Empty,
        server.address = Empty,
        server.port = Empty,
        user_agent.original = Empty,
        client.address = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(scheme) = parts.uri.scheme_str() {
        span.record("url.scheme", scheme);
    }
    let authority = parts.uri.authority().map(|a| (a.host().to_owned(), a.port_u16())).or_else(|| {
        let host = parts.headers.get(HOST)?.to_str().ok()?;
        let authority = host.parse::<http::uri::Authority>().ok()?;
        Some((authority.host().to_owned(), authority.port_u16()))
    });
    if let Some((host, port)) = authority {
        span.record("server.address", host.as_str());
        if let Some(port) = port {
            span.record("server.port", i64::from(port));
        }
    }
    if let Some(ua) = &info.user_agent {
        span.record("user_agent.original", ua.as_str());
    }
    if let Some(ip) = info.client_ip {
        span.record("client.address", ip.to_string().as_str());
    }
    span
}

fn record_status(status: StatusCode) {
    let span = Span::current();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "error");
        span.record("error.type", status.as_str());
    }
}

fn refusal<B: Default>(status: StatusCode, challenge: Option<&'static str>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    if let Some(challenge) = challenge {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    response
}

/// Authenticates (when configured), then runs the inner service in the request's actor scope.
async fn handle<S, ReqBody, ResBody>(
    config: Arc<Config>,
    mut inner: S,
    parts: http::request::Parts,
    body: ReqBody,
    info: RequestInfo,
) -> Result<Response<ResBody>, S::Error>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    let actor: Option<ActorContext> = match &config.verifier {
        None => None,
        Some(verifier) => {
            let verified = match credential(&parts.headers) {
                Credential::Missing => Err(config.require_auth.then_some(Failure::Missing)),
                Credential::Unreadable(why) => Err(Some(Failure::Token(TokenError::Malformed(why.to_owned())))),
                Credential::Bearer(token) => verifier
                    .verify_bearer(token)
                    .await
                    .and_then(|claims| ActorContext::from_keycloak_token(&claims, config.mappings.as_ref()))
                    .map_err(|e| Some(Failure::Token(e))),
            };
            match verified {
                Ok(actor) => Some(info.complete(actor)),
                Err(None) => None,
                Err(Some(failure)) => {
                    let refused = match &failure {
                        Failure::Missing => Some((StatusCode::UNAUTHORIZED, "Bearer")),
                        Failure::Token(_) if config.on_invalid == InvalidTokenPolicy::Anonymous => None,
                        Failure::Token(TokenError::KeysUnavailable(_)) => Some((StatusCode::SERVICE_UNAVAILABLE, "")),
                        Failure::Token(_) => Some((StatusCode::UNAUTHORIZED, "Bearer error=\"invalid_token\"")),
                    };
                    audit_failure(&info, &failure, refused.is_some());
                    if let Some((status, challenge)) = refused {
                        record_status(status);
                        return Ok(refusal(status, (!challenge.is_empty()).then_some(challenge)));
                    }
                    None
                }
            }
        }
    };

    let req = Request::from_parts(parts, body);
    // An actor scope for the whole request, also when there is no actor: a thread-level actor never shows
    // through and `set_actor_context` in a handler stays within this request.
    let result = scoped_actor(actor, inner.call(req)).await;
    match &result {
        Ok(response) => record_status(response.status()),
        Err(_) => {
            let span = Span::current();
            span.record("otel.status_code", "error");
            span.record("error.type", "service_error");
        }
    }
    result
}
