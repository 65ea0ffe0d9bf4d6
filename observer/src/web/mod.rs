//! The web layer (feature `web`): a [`tower_layer::Layer`] for axum, hyper or any `http`-based tower server that
//! gives every request a server span and — from a **verified** bearer token — its actor.
//!
//! Per request, [`ObserverLayer`]:
//!
//! 1. opens a `tracing` span `HTTP request` with the OpenTelemetry HTTP server conventions, read by
//!    `tracing-opentelemetry` (feature `otel`): `otel.name = "{METHOD} {path}"`, `otel.kind = "server"`,
//!    `http.request.method`, `url.path` (never the query), `url.scheme` (when the request URI has one),
//!    `server.address` / `server.port` (from the URI or `Host`), `user_agent.original`, `client.address` (see
//!    [`ClientIp`]), and at the end `http.response.status_code`, with `otel.status_code = "error"` and
//!    `error.type` on a 5xx answer or a service error. Audit events emitted inside carry its trace ids;
//! 2. reads `Authorization: Bearer <jwt>` and verifies it with a [`BearerVerifier`] — a
//!    [`JwksCache`](crate::actor::JwksCache) for Keycloak, or a [`TokenVerifier`](crate::actor::TokenVerifier)
//!    for a static key set. Tokens are never decoded without verification;
//! 3. maps the claims to an [`ActorContext`](crate::ActorContext) with the claim mappings of
//!    [`init`](crate::init) (or [`ObserverLayer::claim_mappings`]), adds the client IP and user agent, and runs
//!    the whole inner service inside [`with_actor`](crate::with_actor): the actor is the current one for the
//!    whole request, across every `.await`, and in tasks spawned with
//!    `tokio::spawn(fut.in_current_scope())` ([`ScopeExt`](crate::ScopeExt)). Nothing is left behind
//!    when the request ends, and a request without an actor never sees another's;
//! 4. on a token that fails verification records an AUTHENTICATION / LOGIN audit event on the `API` resource
//!    (the request path) with outcome FAILURE, severity MEDIUM and metadata `reason` (`expired`,
//!    `invalid_issuer`, `invalid_audience`, `unknown_key`, `invalid_signature`, `unsigned_token`, `malformed`,
//!    …), `detail`, `method`, `path`, `rejected` — never any token text — and then, by
//!    [`InvalidTokenPolicy`], answers `401` with `WWW-Authenticate: Bearer error="invalid_token"` and an empty
//!    body, or goes on without an actor. A request without a token goes on without an actor and without an
//!    audit event unless [`require_auth`](ObserverLayer::require_auth) is set.
//!
//! Headers that are not valid text, several `Authorization` headers and the like are treated as a malformed
//! token; nothing in this layer panics on request input.
//!
//! # Examples
//!
//! ```ignore
//! use axum::{routing::get, Router};
//! use observer::actor::JwksCache;
//! use observer::web::{InvalidTokenPolicy, ObserverLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = JwksCache::keycloak("https://keycloak.example.com/realms/acme").audience("my-api").build()?;
//! let app: Router = Router::new()
//!     .route("/documents/{id}", get(|| async {
//!         // The actor of the verified token: audit events pick it up.
//!         observer::audit::log_read(observer::ResourceType::Document, "doc-1").emit().ok();
//!         "ok"
//!     }))
//!     .layer(ObserverLayer::new(keys).on_invalid_token(InvalidTokenPolicy::Reject));
//! # Ok(()) }
//! ```
//!
//! (`axum` is not a dependency of `observer`; the layer only needs `http` and `tower`.) The example
//! `examples/axum_service.rs` is a complete service.

mod auth;
mod layer;

pub use auth::{BearerVerifier, ClientIp, ClientIpFn, InvalidTokenPolicy, VerifyFuture};
pub use layer::{ObserverLayer, ObserverService, ResponseFuture, RouteFn};
