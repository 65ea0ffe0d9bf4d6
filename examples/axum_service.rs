//! An axum service behind [`ObserverLayer`]: every request gets a server span, and a request with a valid
//! Keycloak access token runs with that user as the actor, so the audit events its handler records name them.
//!
//! Run it against a Keycloak realm:
//!
//! ```text
//! KEYCLOAK_ISSUER=https://keycloak.example.com/realms/acme \
//! KEYCLOAK_AUDIENCE=my-api \
//! PORT=8080 \
//! AUDIT_LOG=audit.jsonl \
//!     cargo run --example axum_service --features web
//!
//! TOKEN=$(curl -s -d grant_type=password -d client_id=my-client -d username=alice -d password=... \
//!     "$KEYCLOAK_ISSUER/protocol/openid-connect/token" | jq -r .access_token)
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/documents/doc-1   # 200, audit event with actor
//! curl -H "Authorization: Bearer nope" http://127.0.0.1:8080/documents/doc-1     # 401 + AUTHENTICATION failure event
//! curl http://127.0.0.1:8080/whoami                                               # 200, anonymous
//! ```
//!
//! - `KEYCLOAK_ISSUER` (required): the realm's issuer URL; keys come from `{issuer}/protocol/openid-connect/certs`.
//! - `KEYCLOAK_AUDIENCE` (optional): required in the token's `aud` (Keycloak adds it with an audience mapper).
//! - `PORT` (optional): the port on 127.0.0.1; `0` or unset picks a free one (printed at start-up).
//! - `AUDIT_LOG` (optional): the JSON-lines audit file, default `audit.jsonl`.
//!
//! Stop it with Ctrl-C or SIGTERM (`docker stop`, Kubernetes): `observer::shutdown_signal()` ends axum's
//! graceful shutdown, `main` returns and the observer guard drains every pending audit event.
//!
//! [`ObserverLayer`]: observer::web::ObserverLayer

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use observer::actor::JwksCache;
use observer::web::{ClientIp, InvalidTokenPolicy, ObserverLayer};
use observer::{audit, get_actor_context, AuditSink, ObserverConfig, ResourceType, ScopeExt};
use serde_json::{json, Value};

/// A JSON response (axum's `Json` needs its `json` feature; this keeps the example's dependencies small).
fn json_response(body: Value) -> Response {
    ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Reads a document: records a DATA_ACCESS event for the current actor, also from a spawned task.
async fn read_document(Path(id): Path<String>) -> Response {
    let event = audit::log_read(ResourceType::Document, id.clone()).description(format!("Read document {id}")).emit();
    let actor = event.as_ref().ok().and_then(|e| e.actor.as_ref()).map(|a| a.actor_id.clone());
    // Background work keeps the request's actor when spawned with `.in_current_scope()`.
    let background = tokio::spawn(async { get_actor_context().map(|a| a.actor_id) }.in_current_scope());
    let background_actor = background.await.ok().flatten();
    json_response(json!({"document": id, "audited_as": actor, "background_actor": background_actor}))
}

/// Who the layer says is calling.
async fn whoami() -> Response {
    match get_actor_context() {
        Some(actor) => json_response(json!({
            "actor_id": actor.actor_id,
            "username": actor.username,
            "email": actor.email,
            "roles": actor.roles,
            "ip_address": actor.ip_address,
        })),
        None => json_response(json!({"actor_id": null})),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("KEYCLOAK_ISSUER").map_err(|_| "set KEYCLOAK_ISSUER to the realm's issuer URL")?;
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT `{p}` is not a port number"))?,
        Err(_) => 0,
    };
    let audit_log = std::env::var("AUDIT_LOG").unwrap_or_else(|_| "audit.jsonl".to_owned());

    let _guard = observer::init(ObserverConfig {
        service_name: "axum-service".into(),
        audit_sink: AuditSink::file(&audit_log),
        ..Default::default()
    })?;

    let mut keys = JwksCache::keycloak(&issuer);
    if let Ok(audience) = std::env::var("KEYCLOAK_AUDIENCE") {
        keys = keys.audience(audience);
    }
    let keys = keys.build()?;
    if let Err(err) = keys.refresh().await {
        // Not fatal: the cache retries on the first request (rate-limited) and keeps serving anonymous routes.
        eprintln!("warning: could not fetch the realm's keys yet: {err}");
    }

    let layer = ObserverLayer::new(keys)
        .on_invalid_token(InvalidTokenPolicy::Reject)
        .client_ip(ClientIp::custom(|_, ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
        // Span names by route template (`GET /documents/{id}`), not one per document id.
        .route(|parts| parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned()));
    // `route_layer`: the layer runs once a route matched (unmatched paths get axum's plain 404).
    let app =
        Router::new().route("/documents/{id}", get(read_document)).route("/whoami", get(whoami)).route_layer(layer);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}  (audit log: {audit_log})", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(observer::shutdown_signal())
        .await?;
    Ok(()) // `_guard` drops here: every queued audit event is written before the process ends
}
