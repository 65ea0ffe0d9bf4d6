//! Bearer tokens: reading the `Authorization` header, the verifiers, the policies, and the failure audit event.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, Method};
use serde_json::Value;

use crate::actor::context::scoped_actor_sync;
use crate::actor::{JwksCache, TokenVerifier};
use crate::error::TokenError;
use crate::ActorContext;
use crate::{get_audit_logger, AuditAction, AuditEventType, AuditOutcome, AuditSeverity, ResourceType};

/// Longest path or user agent copied into spans, actors and audit events.
const MAX_TEXT: usize = 1024;

/// The future a [`BearerVerifier`] returns: the verified claims (a JSON object) or why the token was refused.
pub type VerifyFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, TokenError>> + Send + 'a>>;

/// Verifies a bearer token for [`ObserverLayer`](super::ObserverLayer): the signature and the standard claims.
///
/// Implemented for [`JwksCache`] (keys fetched from Keycloak and refreshed on rotation) and [`TokenVerifier`] (a
/// static key or key set), and for `Arc`s of either. There is deliberately no implementation that decodes
/// without verifying: a layer that trusted unverified tokens would let anyone choose the actor of every audit
/// event.
pub trait BearerVerifier: Send + Sync + 'static {
    /// Verifies `token` (without the `Bearer ` prefix) and returns its claims.
    fn verify_bearer<'a>(&'a self, token: &'a str) -> VerifyFuture<'a>;
}

impl BearerVerifier for JwksCache {
    fn verify_bearer<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        Box::pin(self.verify(token))
    }
}

impl BearerVerifier for TokenVerifier {
    fn verify_bearer<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        Box::pin(std::future::ready(self.verify(token)))
    }
}

impl<T: BearerVerifier + ?Sized> BearerVerifier for Arc<T> {
    fn verify_bearer<'a>(&'a self, token: &'a str) -> VerifyFuture<'a> {
        (**self).verify_bearer(token)
    }
}

/// What [`ObserverLayer`](super::ObserverLayer) does with a bearer token that fails verification. Either way an
/// AUTHENTICATION failure audit event is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InvalidTokenPolicy {
    /// Answer `401 Unauthorized` with `WWW-Authenticate: Bearer error="invalid_token"` and an empty body; the
    /// inner service is not called. When the keys cannot be fetched at all
    /// ([`TokenError::KeysUnavailable`]) the answer is `503 Service Unavailable` instead: the token may be fine.
    #[default]
    Reject,
    /// Call the inner service without an actor, as for a request without a token.
    Anonymous,
}

/// The function behind [`ClientIp::Custom`]: the client's address from the request headers and extensions.
pub type ClientIpFn = dyn Fn(&HeaderMap, &http::Extensions) -> Option<IpAddr> + Send + Sync;

/// Where the client's IP address (the actor's `ip_address`, the span's `client.address`) comes from.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ClientIp {
    /// Not recorded (default).
    #[default]
    None,
    /// A [`SocketAddr`] in the request extensions (hyper services insert the peer address there themselves).
    /// With axum, whose `ConnectInfo<SocketAddr>` is its own type, use [`ClientIp::custom`].
    PeerAddr,
    /// The last address of the last `X-Forwarded-For` header: the client as seen by the reverse proxy directly
    /// in front of this service. Only behind such a proxy: otherwise clients choose the header's value.
    XForwardedFor,
    /// Your own function of the request headers and extensions.
    Custom(Arc<ClientIpFn>),
}

impl fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientIp::None => "None",
            ClientIp::PeerAddr => "PeerAddr",
            ClientIp::XForwardedFor => "XForwardedFor",
            ClientIp::Custom(_) => "Custom(..)",
        })
    }
}

impl ClientIp {
    /// A [`ClientIp::Custom`] from a closure, e.g. for axum (served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`):
    ///
    /// ```ignore
    /// ClientIp::custom(|_, ext| ext.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
    /// ```
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&HeaderMap, &http::Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        ClientIp::Custom(Arc::new(f))
    }

    pub(crate) fn resolve(&self, headers: &HeaderMap, extensions: &http::Extensions) -> Option<IpAddr> {
        match self {
            ClientIp::None => None,
            ClientIp::PeerAddr => extensions.get::<SocketAddr>().map(SocketAddr::ip),
            ClientIp::XForwardedFor => {
                let last = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
                let entry = last.rsplit(',').next()?.trim();
                entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
            }
            ClientIp::Custom(f) => f(headers, extensions),
        }
    }
}

/// What the `Authorization` header holds.
pub(crate) enum Credential<'a> {
    /// No `Authorization` header, or one with another scheme (`Basic …`): not ours to judge.
    Missing,
    /// A bearer token, prefix stripped.
    Bearer(&'a str),
    /// A header that cannot be a bearer token; the reason says why (no header text in it).
    Unreadable(&'static str),
}

pub(crate) fn credential(headers: &HeaderMap) -> Credential<'_> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(first) = values.next() else { return Credential::Missing };
    if values.next().is_some() {
        return Credential::Unreadable("several Authorization headers");
    }
    let Ok(text) = first.to_str() else { return Credential::Unreadable("Authorization header is not visible ASCII") };
    let text = text.trim();
    let (scheme, rest) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credential::Missing;
    }
    match rest.trim() {
        "" => Credential::Unreadable("empty bearer token"),
        token => Credential::Bearer(token),
    }
}

/// A short machine-readable name of a token error, for audit metadata (`reason`).
pub(crate) fn reason_of(err: &TokenError) -> &'static str {
    match err {
        TokenError::Malformed(_) => "malformed",
        TokenError::UnsignedToken => "unsigned_token",
        TokenError::DisallowedAlgorithm(_) => "disallowed_algorithm",
        TokenError::InvalidSignature => "invalid_signature",
        TokenError::Expired => "expired",
        TokenError::NotYetValid => "not_yet_valid",
        TokenError::InvalidIssuer => "invalid_issuer",
        TokenError::InvalidAudience => "invalid_audience",
        TokenError::UnknownKey(_) => "unknown_key",
        TokenError::InvalidKey(_) => "invalid_key",
        TokenError::MissingClaim(_) => "missing_claim",
        TokenError::KeysUnavailable(_) => "keys_unavailable",
    }
}

/// At most [`MAX_TEXT`] characters.
pub(crate) fn capped(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// What the layer knows about a request, for the span, the actor and audit events.
pub(crate) struct RequestInfo {
    pub method: Method,
    pub path: String,
    pub user_agent: Option<String>,
    pub client_ip: Option<IpAddr>,
}

impl RequestInfo {
    pub(crate) fn new(parts: &http::request::Parts, client_ip: &ClientIp) -> Self {
        Self {
            method: parts.method.clone(),
            path: capped(parts.uri.path()),
            user_agent: parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(capped),
            client_ip: client_ip.resolve(&parts.headers, &parts.extensions),
        }
    }

    /// Adds what the request says about the client to a verified actor.
    pub(crate) fn complete(&self, mut actor: ActorContext) -> ActorContext {
        if let Some(ip) = self.client_ip {
            actor.ip_address = Some(ip.to_string());
        }
        if let Some(ua) = &self.user_agent {
            actor.user_agent = Some(ua.clone());
        }
        actor
    }
}

/// Why authentication failed, for the audit event.
pub(crate) enum Failure {
    /// No bearer token while one is required.
    Missing,
    /// The token was refused.
    Token(TokenError),
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::Missing => "missing_token",
            Failure::Token(e) => reason_of(e),
        }
    }
}

/// Records the AUTHENTICATION failure audit event (LOGIN on the API path, outcome FAILURE, severity MEDIUM).
/// Metadata: `reason`, `detail` (the error message, never token text), `method`, `path`, `auth_scheme`,
/// `rejected` (whether the request was refused), and `ip_address` / `user_agent` when known. The event has no
/// actor from the request: it runs in an empty actor scope (registered providers still apply).
pub(crate) fn audit_failure(info: &RequestInfo, failure: &Failure, rejected: bool) {
    let reason = failure.reason();
    let detail = match failure {
        Failure::Missing => "no bearer token".to_owned(),
        Failure::Token(e) => e.to_string(),
    };
    let result = scoped_actor_sync(None, || {
        let mut builder = get_audit_logger()
            .log(AuditEventType::Authentication, AuditAction::Login, ResourceType::Api, info.path.clone())
            .outcome(AuditOutcome::Failure)
            .severity(AuditSeverity::Medium)
            .description(format!("Bearer authentication failed ({reason}) for {} {}", info.method, info.path))
            .metadata("reason", reason)
            .metadata("detail", detail)
            .metadata("method", info.method.as_str())
            .metadata("path", info.path.clone())
            .metadata("auth_scheme", "Bearer")
            .metadata("rejected", rejected);
        if let Some(ip) = info.client_ip {
            builder = builder.metadata("ip_address", ip.to_string());
        }
        if let Some(ua) = &info.user_agent {
            builder = builder.metadata("user_agent", ua.clone());
        }
        builder.emit()
    });
    crate::export::emit_or_fallback("AUTHENTICATION failure", result);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.append(AUTHORIZATION, v);
            }
        }
        h
    }

    #[test]
    fn reads_bearer_tokens_and_never_panics() {
        assert!(matches!(credential(&headers(&[])), Credential::Missing));
        assert!(matches!(credential(&headers(&[b"Basic dXNlcjpwdw=="])), Credential::Missing));
        assert!(matches!(credential(&headers(&[b"Bearer abc"])), Credential::Bearer("abc")));
        assert!(matches!(credential(&headers(&[b"  bearer\t abc  "])), Credential::Bearer("abc")));
        assert!(matches!(credential(&headers(&[b"Bearer"])), Credential::Unreadable(_)));
        assert!(matches!(credential(&headers(&[b"Bearer   "])), Credential::Unreadable(_)));
        assert!(matches!(credential(&headers(&[b"Bearer a", b"Bearer b"])), Credential::Unreadable(_)));
        assert!(matches!(credential(&headers(&[b"Bearer \xff\xfe"])), Credential::Unreadable(_)));
    }

    #[test]
    fn forwarded_for_takes_the_last_hop() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 10.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        let ext = http::Extensions::new();
        assert_eq!(ClientIp::XForwardedFor.resolve(&h, &ext), "203.0.113.7".parse().ok());
        assert_eq!(ClientIp::None.resolve(&h, &ext), None);
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(ClientIp::XForwardedFor.resolve(&h, &ext), None);
        let mut ext = http::Extensions::new();
        ext.insert(SocketAddr::from(([127, 0, 0, 1], 9)));
        assert_eq!(ClientIp::PeerAddr.resolve(&h, &ext), "127.0.0.1".parse().ok());
    }
}
