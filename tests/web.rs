//! The web layer on real HTTP: axum routers behind `ObserverLayer` on 127.0.0.1, a JWKS server on 127.0.0.1 (the
//! layer verifies with a `JwksCache`, like against Keycloak), real RS256 tokens (`tests/data/jwt/`), and reqwest as
//! the client. Checks the actor inside handlers (across `.await` and in spawned tasks), that it never leaks into
//! the next request, and the 401s and AUTHENTICATION failure audit events of every kind of bad token. Audit events
//! are captured by the memory sink of this binary's one `init` (`common::memory_sink`). Every test is bounded.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use observer::actor::JwksCache;
use observer::actor::TokenVerifier;
use observer::web::{ClientIp, InvalidTokenPolicy, ObserverLayer};
use observer::{audit, get_actor_context, AuditEvent, ResourceType, ScopeExt};
use serde_json::{json, Value};

const RSA_PRIVATE: &[u8] = include_bytes!("data/jwt/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("data/jwt/rsa_public.pem");
const JWKS: &str = include_str!("data/jwt/jwks.json");
const KID: &str = "test-rsa-1";
const AUDIENCE: &str = "my-api";
const BOUND: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(BOUND, test).await.expect("test finished within its bound");
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await });
    addr
}

// ---------------------------------------------------------------------------------------------
// Keycloak stand-in: the realm's JWKS on 127.0.0.1, and tokens signed with the test key.

struct Realm {
    issuer: String,
    hits: Arc<AtomicUsize>,
}

impl Realm {
    async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = Router::new().route(
            "/realms/test/protocol/openid-connect/certs",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { ([(CONTENT_TYPE, "application/json")], JWKS) }
            }),
        );
        let addr = serve(app).await;
        Self { issuer: format!("http://{addr}/realms/test"), hits }
    }

    fn cache(&self) -> JwksCache {
        JwksCache::keycloak(&self.issuer).audience(AUDIENCE).build().expect("jwks cache")
    }

    fn claims(&self) -> Value {
        json!({
            "exp": now() + 300,
            "iat": now(),
            "iss": self.issuer,
            "aud": [AUDIENCE, "account"],
            "typ": "Bearer",
            "azp": "my-client",
            "sub": "user-123",
            "email": "user@example.com",
            "name": "John Doe",
            "preferred_username": "johndoe",
            "realm_access": {"roles": ["admin", "user"]},
            "session_state": "session-456",
        })
    }

    fn token(&self) -> String {
        sign(KID, &self.claims())
    }

    /// Each kind of bad token, by the audit `reason` it must produce.
    fn bad_tokens(&self) -> Vec<(&'static str, String)> {
        let with = |key: &str, value: Value| {
            let mut c = self.claims();
            c[key] = value;
            sign(KID, &c)
        };
        let good = self.token();
        let parts: Vec<&str> = good.split('.').collect();
        let mut forged = self.claims();
        forged["sub"] = json!("admin");
        let b64 = |s: String| URL_SAFE_NO_PAD.encode(s);
        vec![
            ("expired", with("exp", json!(now() - 3600))),
            ("invalid_issuer", with("iss", json!("https://evil.example.com/realms/test"))),
            ("invalid_audience", with("aud", json!("account"))),
            ("unknown_key", sign("no-such-key", &self.claims())),
            ("unsigned_token", format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#.into()), parts[1])),
            ("invalid_signature", format!("{}.{}.{}", parts[0], b64(forged.to_string()), parts[2])),
            ("malformed", "not-a-jwt".to_owned()),
        ]
    }
}

fn sign(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    encode(&header, claims, &EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa key")).expect("sign")
}

// ---------------------------------------------------------------------------------------------
// The application.

fn actor_json() -> Value {
    match get_actor_context() {
        Some(a) => json!({
            "actor_id": a.actor_id,
            "email": a.email,
            "username": a.username,
            "name": a.name,
            "roles": a.roles,
            "session_id": a.session_id,
            "ip_address": a.ip_address,
            "user_agent": a.user_agent,
        }),
        None => Value::Null,
    }
}

/// The actor as the handler sees it: at the start, after an `.await`, in a task spawned with
/// `.in_current_scope()`, and in a task spawned without it.
async fn whoami(State(calls): State<Arc<AtomicUsize>>) -> impl IntoResponse {
    calls.fetch_add(1, Ordering::SeqCst);
    let before = actor_json();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after_await = actor_json();
    let spawned = tokio::spawn(
        async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            actor_json()
        }
        .in_current_scope(),
    )
    .await
    .unwrap_or(Value::Null);
    let unscoped = tokio::spawn(async { actor_json() }).await.unwrap_or(Value::Null);
    let body = json!({"before": before, "after_await": after_await, "spawned": spawned, "unscoped_spawn": unscoped});
    ([(CONTENT_TYPE, "application/json")], body.to_string())
}

/// Records an audit event from the handler; answers its event id.
async fn read_document(Path(id): Path<String>) -> String {
    match audit::log_read(ResourceType::Document, id).emit() {
        Ok(event) => event.event_id.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// Any path under `/r/`: for telling the audit events of the bad-token cases apart (their `resource_id`).
async fn any_path(State(calls): State<Arc<AtomicUsize>>) -> String {
    calls.fetch_add(1, Ordering::SeqCst);
    actor_json().to_string()
}

/// Answers with the status code in the path.
async fn status(Path(code): Path<u16>) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::BAD_REQUEST)
}

fn app(layer: ObserverLayer, calls: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/r/{*rest}", get(any_path))
        .route("/documents/{id}", get(read_document))
        .route("/status/{code}", get(status))
        .with_state(calls)
        .layer(layer)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

async fn get_json(client: &reqwest::Client, url: String, token: Option<&str>) -> (u16, Value) {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The AUTHENTICATION event recorded for `path`, waiting for it to reach the memory sink.
fn auth_event(path: &str) -> AuditEvent {
    let sink = common::memory_sink();
    observer::flush(WAIT).expect("flush");
    sink.wait_for(WAIT, |e| e.resource_id == path && e.audit_type == observer::AuditEventType::Authentication)
        .unwrap_or_else(|| panic!("an AUTHENTICATION event for {path}"))
}

fn auth_events(path: &str) -> usize {
    observer::flush(WAIT).expect("flush");
    common::memory_sink()
        .events()
        .iter()
        .filter(|e| e.resource_id == path && e.audit_type == observer::AuditEventType::Authentication)
        .count()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_token_gives_the_handler_its_actor_everywhere() {
    common::memory_sink();
    bounded(async {
        let realm = Realm::start().await;
        let layer = ObserverLayer::new(realm.cache()).client_ip(ClientIp::XForwardedFor);
        let addr = serve(app(layer, Arc::default())).await;
        let client = client();
        let resp = client
            .get(format!("http://{addr}/whoami"))
            .header("authorization", format!("Bearer {}", realm.token()))
            .header("user-agent", "web-test/1.0")
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        let body: Value = serde_json::from_str(&resp.text().await.expect("body")).expect("json");
        let expected = json!({
            "actor_id": "user-123",
            "email": "user@example.com",
            "username": "johndoe",
            "name": "John Doe",
            "roles": ["admin", "user"],
            "session_id": "session-456",
            "ip_address": "203.0.113.9",
            "user_agent": "web-test/1.0",
        });
        assert_eq!(body["before"], expected);
        assert_eq!(body["after_await"], expected, "across .await");
        assert_eq!(body["spawned"], expected, "in tokio::spawn(fut.in_current_scope())");
        assert_eq!(body["unscoped_spawn"], Value::Null, "a plain spawn does not inherit the actor");
        assert_eq!(realm.hits.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_does_not_outlive_its_request() {
    common::memory_sink();
    bounded(async {
        let realm = Realm::start().await;
        let addr = serve(app(ObserverLayer::new(realm.cache()), Arc::default())).await;
        let client = client();
        let token = realm.token();
        for _ in 0..5 {
            let (status, body) = get_json(&client, format!("http://{addr}/whoami"), Some(&token)).await;
            assert_eq!((status, &body["after_await"]["actor_id"]), (200, &json!("user-123")));
            let (status, body) = get_json(&client, format!("http://{addr}/whoami"), None).await;
            assert_eq!(status, 200);
            for key in ["before", "after_await", "spawned", "unscoped_spawn"] {
                assert_eq!(body[key], Value::Null, "{key}: no actor without a token");
            }
        }
        // concurrent requests of two different users never see each other
        let mut other = realm.claims();
        other["sub"] = json!("user-999");
        let other = sign(KID, &other);
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let (client, token) = (client.clone(), if i % 2 == 0 { token.clone() } else { other.clone() });
                let url = format!("http://{addr}/whoami");
                tokio::spawn(async move {
                    let (_, body) = get_json(&client, url, Some(&token)).await;
                    (i, body)
                })
            })
            .collect();
        for task in tasks {
            let (i, body) = task.await.expect("task");
            let want = if i % 2 == 0 { "user-123" } else { "user-999" };
            for key in ["before", "after_await", "spawned"] {
                assert_eq!(body[key]["actor_id"], want, "{key} of request {i}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn handler_audit_events_carry_the_token_actor() {
    common::memory_sink();
    bounded(async {
        let realm = Realm::start().await;
        let addr = serve(app(ObserverLayer::new(realm.cache()), Arc::default())).await;
        let resp = client()
            .get(format!("http://{addr}/documents/doc-web-1"))
            .header("authorization", format!("Bearer {}", realm.token()))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        let event_id = resp.text().await.expect("body");
        let sink = common::memory_sink();
        observer::flush(WAIT).expect("flush");
        let event = sink.wait_for(WAIT, |e| e.event_id == event_id).expect("the handler's event");
        let actor = event.actor.as_ref().expect("actor");
        assert_eq!(actor.actor_id, "user-123");
        assert_eq!(actor.username.as_deref(), Some("johndoe"));
        assert_eq!(actor.roles, ["admin", "user"]);
        assert_eq!(event.resource_id, "doc-web-1");
    })
    .await;
}

#[tokio::test]
async fn bad_tokens_are_rejected_with_401_and_audited() {
    common::memory_sink();
    bounded(async {
        let realm = Realm::start().await;
        let calls = Arc::new(AtomicUsize::new(0));
        let layer = ObserverLayer::new(realm.cache()).on_invalid_token(InvalidTokenPolicy::Reject);
        let addr = serve(app(layer, calls.clone())).await;
        let client = client();
        // prime the cache so that `unknown_key` is a miss after a fetch, as in production
        let (status, _) = get_json(&client, format!("http://{addr}/r/prime"), Some(&realm.token())).await;
        assert_eq!(status, 200);
        let primed_calls = calls.load(Ordering::SeqCst);

        for (reason, token) in realm.bad_tokens() {
            let path = format!("/r/reject/{reason}");
            let resp = client
                .get(format!("http://{addr}{path}?q=1"))
                .header("authorization", format!("Bearer {token}"))
                .header("user-agent", "web-test/1.0")
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), 401, "{reason}");
            let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
            assert_eq!(challenge.as_deref(), Some(r#"Bearer error="invalid_token""#), "{reason}");
            assert_eq!(resp.text().await.expect("body"), "", "no details in the body ({reason})");

            let event = auth_event(&path);
            assert_eq!(event.outcome, observer::AuditOutcome::Failure, "{reason}");
            assert_eq!(event.severity, observer::AuditSeverity::Medium);
            assert_eq!(event.action, observer::AuditAction::Login);
            assert_eq!(event.resource_type, ResourceType::Api);
            assert_eq!(event.metadata["reason"], reason);
            assert_eq!(event.metadata["method"], "GET");
            assert_eq!(event.metadata["path"], path.as_str());
            assert_eq!(event.metadata["rejected"], true);
            assert_eq!(event.metadata["user_agent"], "web-test/1.0");
            assert!(event.actor.is_none(), "{reason}: no actor from a refused token");
            let text = event.to_json().to_string();
            for segment in token.split('.').filter(|s| s.len() > 8) {
                assert!(!text.contains(segment), "{reason}: the audit event leaks the token");
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), primed_calls, "the handler never ran for a refused token");
        assert_eq!(realm.hits.load(Ordering::SeqCst), 1, "the unknown kid did not refetch within the rate limit");
    })
    .await;
}

#[tokio::test]
async fn bad_tokens_go_on_anonymously_under_the_anonymous_policy() {
    common::memory_sink();
    bounded(async {
        let realm = Realm::start().await;
        let layer = ObserverLayer::new(realm.cache()).on_invalid_token(InvalidTokenPolicy::Anonymous);
        let addr = serve(app(layer, Arc::default())).await;
        let client = client();
        for (reason, token) in realm.bad_tokens() {
            let path = format!("/r/anonymous/{reason}");
            let (status, body) = get_json(&client, format!("http://{addr}{path}"), Some(&token)).await;
            assert_eq!((status, &body), (200, &Value::Null), "{reason}: served without an actor");
            let event = auth_event(&path);
            assert_eq!(event.metadata["reason"], reason);
            assert_eq!(event.metadata["rejected"], false);
            assert_eq!(event.outcome, observer::AuditOutcome::Failure);
        }
        // a valid token still gives the actor
        let (status, body) = get_json(&client, format!("http://{addr}/r/anonymous/valid"), Some(&realm.token())).await;
        assert_eq!((status, &body["actor_id"]), (200, &json!("user-123")));
        assert_eq!(auth_events("/r/anonymous/valid"), 0, "no failure event for a valid token");
    })
    .await;
}

#[tokio::test]
async fn missing_tokens_are_anonymous_unless_auth_is_required() {
    common::memory_sink();
    bounded(async {
        let realm = Realm::start().await;
        let client = client();

        let open = serve(app(ObserverLayer::new(realm.cache()), Arc::default())).await;
        let (status, body) = get_json(&client, format!("http://{open}/r/open/none"), None).await;
        assert_eq!((status, body), (200, Value::Null));
        let resp = client
            .get(format!("http://{open}/r/open/basic"))
            .header("authorization", "Basic dXNlcjpwYXNz")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "another scheme counts as no bearer token");
        assert_eq!(auth_events("/r/open/none") + auth_events("/r/open/basic"), 0, "no audit event by default");

        let calls = Arc::new(AtomicUsize::new(0));
        let closed = serve(app(ObserverLayer::new(realm.cache()).require_auth(true), calls.clone())).await;
        let resp = client.get(format!("http://{closed}/r/closed/none")).send().await.expect("request");
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(challenge.as_deref(), Some("Bearer"));
        assert_eq!(auth_event("/r/closed/none").metadata["reason"], "missing_token");
        let (status, body) = get_json(&client, format!("http://{closed}/r/closed/valid"), Some(&realm.token())).await;
        assert_eq!((status, &body["actor_id"]), (200, &json!("user-123")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(realm.hits.load(Ordering::SeqCst), 1, "no fetch for requests without a token");
    })
    .await;
}

#[tokio::test]
async fn odd_authorization_headers_never_panic() {
    common::memory_sink();
    bounded(async {
        let realm = Realm::start().await;
        let addr = serve(app(ObserverLayer::new(realm.cache()), Arc::default())).await;
        let client = client();
        let cases: Vec<(&str, Vec<reqwest::header::HeaderValue>)> = vec![
            ("empty", vec![reqwest::header::HeaderValue::from_static("Bearer ")]),
            ("binary", vec![reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\x80").expect("obs-text")]),
            (
                "twice",
                vec![
                    reqwest::header::HeaderValue::from_str(&format!("Bearer {}", realm.token())).expect("value"),
                    reqwest::header::HeaderValue::from_static("Bearer other"),
                ],
            ),
            (
                "huge",
                vec![reqwest::header::HeaderValue::from_str(&format!("Bearer {}", "a".repeat(6000))).expect("value")],
            ),
        ];
        for (name, values) in cases {
            let mut headers = reqwest::header::HeaderMap::new();
            for v in values {
                headers.append("authorization", v);
            }
            let path = format!("/r/odd/{name}");
            let resp = client.get(format!("http://{addr}{path}")).headers(headers).send().await.expect("request");
            assert_eq!(resp.status(), 401, "{name}");
            assert_eq!(auth_event(&path).metadata["reason"], "malformed", "{name}");
        }
        // the server is still fine
        let (status, _) = get_json(&client, format!("http://{addr}/r/odd/after"), Some(&realm.token())).await;
        assert_eq!(status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_static_token_verifier_works_too() {
    common::memory_sink();
    bounded(async {
        let verifier = TokenVerifier::rsa_pem(RSA_PUBLIC).expect("rsa key").issuer("https://kc.test/realms/x");
        let client_ip = ClientIp::custom(|_, ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()));
        let addr = serve(app(ObserverLayer::new(verifier).client_ip(client_ip), Arc::default())).await;
        let mut claims = json!({"exp": now() + 60, "iss": "https://kc.test/realms/x", "sub": "svc-1"});
        let token = sign("ignored-for-a-single-key", &claims);
        let (status, body) = get_json(&client(), format!("http://{addr}/r/static/ok"), Some(&token)).await;
        assert_eq!((status, &body["actor_id"]), (200, &json!("svc-1")));
        assert_eq!(body["ip_address"], "127.0.0.1", "from axum's ConnectInfo");
        claims["iss"] = json!("https://other.test");
        let (status, _) = get_json(&client(), format!("http://{addr}/r/static/bad"), Some(&sign("k", &claims))).await;
        assert_eq!(status, 401);
        assert_eq!(auth_event("/r/static/bad").metadata["reason"], "invalid_issuer");
        // and the span-only layer never trusts a token
        let plain = serve(app(ObserverLayer::without_auth(), Arc::default())).await;
        let (status, body) = get_json(&client(), format!("http://{plain}/r/plain"), Some(&token)).await;
        assert_eq!((status, body), (200, Value::Null));
    })
    .await;
}

/// The OTLP receiver and tracing set-up of the span test (once per process; `configure_tracing` is global). Made on
/// a plain thread: the blocking OTLP client must not be created inside the Tokio runtime.
#[cfg(feature = "otel")]
fn otlp() -> &'static common::otlp::OtlpReceiver {
    static RECEIVER: std::sync::OnceLock<common::otlp::OtlpReceiver> = std::sync::OnceLock::new();
    std::thread::spawn(|| {
        RECEIVER.get_or_init(|| {
            let receiver = common::otlp::OtlpReceiver::start();
            common::memory_sink();
            observer::trace::configure_tracing(observer::trace::TracingConfig {
                service_name: "web-test".into(),
                otlp_endpoint: Some(receiver.endpoint()),
                ..Default::default()
            })
            .expect("configure_tracing");
            receiver
        })
    })
    .join()
    .expect("otlp set-up")
}

#[cfg(feature = "otel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_spans_follow_the_http_conventions() {
    let receiver = otlp();
    bounded(async {
        let realm = Realm::start().await;
        let addr = serve(app(ObserverLayer::new(realm.cache()), Arc::default())).await;
        let client = client();
        let resp = client
            .get(format!("http://{addr}/r/span/ok?secret=query"))
            .header("authorization", format!("Bearer {}", realm.token()))
            .header("user-agent", "web-test/1.0")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        let (status, _) = get_json(&client, format!("http://{addr}/r/span/bad"), Some("not-a-jwt")).await;
        assert_eq!(status, 401);
        let (status, _) = get_json(&client, format!("http://{addr}/status/503"), None).await;
        assert_eq!(status, 503);
        tokio::task::spawn_blocking(|| observer::flush(WAIT).expect("flush")).await.expect("flush task");
        let names = ["GET /r/span/ok", "GET /r/span/bad", "GET /status/503"];
        let spans = receiver
            .wait_for(WAIT, |spans| names.iter().all(|n| spans.iter().any(|s| s.name == *n)))
            .expect("the three server spans");
        let span = |name: &str| spans.iter().find(|s| s.name == name).expect("span");

        let ok = span("GET /r/span/ok");
        assert_eq!(ok.attr_str("http.request.method"), Some("GET"));
        assert_eq!(ok.attr_str("url.path"), Some("/r/span/ok"), "no query string");
        assert_eq!(ok.attr_str("server.address"), Some("127.0.0.1"));
        assert_eq!(ok.attributes.get("server.port"), Some(&json!(addr.port())));
        assert_eq!(ok.attr_str("user_agent.original"), Some("web-test/1.0"));
        assert_eq!(ok.attributes.get("http.response.status_code"), Some(&json!(200)));
        assert_ne!(ok.status_code, 2);
        assert!(!format!("{:?}", ok.attributes).contains("secret=query"));

        let bad = span("GET /r/span/bad");
        assert_eq!(bad.attributes.get("http.response.status_code"), Some(&json!(401)));
        assert_ne!(bad.status_code, 2, "a refused token is not a server error");

        let failed = span("GET /status/503");
        assert_eq!(failed.attributes.get("http.response.status_code"), Some(&json!(503)));
        assert_eq!(failed.status_code, 2, "5xx marks the span as an error");
        assert_eq!(failed.attr_str("error.type"), Some("503"));
    })
    .await;
}

#[cfg(feature = "otel")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_named_by_route_template_when_the_route_is_known() {
    let receiver = otlp();
    bounded(async {
        let realm = Realm::start().await;
        let layer = ObserverLayer::new(realm.cache())
            .route(|parts| parts.extensions.get::<axum::extract::MatchedPath>().map(|m| m.as_str().to_owned()));
        // `route_layer`: the layer runs after routing, where axum has put the matched route template.
        let app = Router::new()
            .route("/routed/{id}", get(read_document))
            .route_layer(layer)
            .with_state(Arc::<AtomicUsize>::default());
        let addr = serve(app).await;
        let client = client();
        for id in ["doc-1", "doc-2"] {
            let (status, _) = get_json(&client, format!("http://{addr}/routed/{id}"), Some(&realm.token())).await;
            assert_eq!(status, 200);
        }
        tokio::task::spawn_blocking(|| observer::flush(WAIT).expect("flush")).await.expect("flush task");
        let spans = receiver
            .wait_for(WAIT, |spans| spans.iter().filter(|s| s.name == "GET /routed/{id}").count() >= 2)
            .expect("two spans named by the route template");
        let routed: Vec<_> = spans.iter().filter(|s| s.name == "GET /routed/{id}").collect();
        assert_eq!(routed[0].attr_str("http.route"), Some("/routed/{id}"));
        let paths: std::collections::HashSet<_> = routed.iter().filter_map(|s| s.attr_str("url.path")).collect();
        assert_eq!(paths, ["/routed/doc-1", "/routed/doc-2"].into_iter().collect(), "the path is still recorded");
        assert!(!spans.iter().any(|s| s.name.starts_with("GET /routed/doc")), "no per-document span names");
    })
    .await;
}
