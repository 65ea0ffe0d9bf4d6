//! The JWKS cache against a real HTTP server on 127.0.0.1 that serves a JWKS document, counts the requests and can
//! switch its key set or fail: RS256 tokens signed with the test keys (`tests/data/jwt/`, plus a second RSA key
//! below for rotation), expired / wrong issuer / wrong audience / unknown `kid` / `alg: none` / tampered tokens,
//! the refetch rate limit, key rotation and fetch failures. Every test is bounded by [`BOUND`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use observer::actor::JwksCache;
use observer::TokenError;
use serde_json::{json, Value};

const RSA_PRIVATE: &[u8] = include_bytes!("data/jwt/rsa_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("data/jwt/ec_private.pem");
const JWKS: &str = include_str!("data/jwt/jwks.json");
/// The kid of `RSA_PRIVATE` in `jwks.json`.
const KID: &str = "test-rsa-1";
/// A second RSA 2048 key, generated with `openssl genpkey` for the rotation test only. A **test-only key**: public,
/// never use it for anything else.
const RSA2_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDe/0W+ZhNmgZND
Sn8Yb3RbWvkKfG3AEt4mAX7nd9a9a1X+4tu4Cbt8g1/mNPXeRCy61+U+nOiMO9rC
tHaKqAv+3LLFgpOzlGI+Z2s0OiVVIYcdpEngYJrqOxYLn8zzEPuWVWD7fBW58f8j
IVgWdC1r7K29ZMbWXVQQ2QKtFgleipne9tQjSzSX0NdntIwg2t6Qy/pcQ/WIoBd2
d61Fux2GKXUhmwCOf99rdQu13ftQP7bQ8tyN+JU9KM4z1jHYUdcXDoJhplbsJSrd
p5katquXrmsfND5Buro+dyQAfRAxFkjQircCsQgePg2/Gyfk1b3LHQwDMUXHphWr
Nbs7vVFLAgMBAAECggEALAQnOBXd7nXVI4so2yHkzcN/NNqqrycKQmY5LmcxM+Jj
7xPIWuNQ5prn6wC5J049pgPHdDx0inmmDJiibWwOMhhOET5c+S1o1viC6KQxikQ7
71XmXyuyaFmRWGoKgk/v2RSxN/KeNz3VJpIGWShFbvAguymRNe7mEQ1EwfV/k/FZ
awPssa6fQF1I85W2kN9+fn9hbXch6iF0ExH6mFafetUvhY9C75TVBsdxKUWUKCn6
65RZChr5+hyKrzGPHHyvnLe3VGnOKpQGC1BX0Ijy7GVeDNPu00Hw4ARN9DvjxdCC
p+FiYwjoXNnd9+nHhSEqQUVtbqoBhCmXBT6JXIFuQQKBgQDvsEn3f3yZkk5GGcNc
l/dg6+P8NwNLk7aYvomQZNOxdaSQ5vUndGcauKzpWafM+bzWXQUCJkeSnbefM1Go
xz2PBPFrwto6ctaFx0jDjmooiuJd9vZJ3g9cfPPJDCQ5gTgDfAhuf1vq5RTHC/J0
AJ5n8C/Jf1+XZgC+bjI+9pRubQKBgQDuLDHayZRTe134Wii2cxRD5dvNwz4koMdV
d1/9U9GT7ov4H3D1x8arI0HhwJwwSEyryAKo4dVXsng2hwEBvly1wdwZEljOBQ79
IA9L89La+A063hwpIA1xCC2+16euSD5cR0ngkayYwW3ForLs6FGg2YIasjeiYrFP
WHNxmkeLlwKBgHYIORSBGknB63vH2hWx3CdFYprkOGIyVnv3cGTD0h+UkDqvEVCh
mNhm0veCqAhffyeM3ReG5D4GHtNuASt9Ggpg48YuSSr5PDzauzFZ41sdsYWWRQhx
Kt1fxuldakVLJdtJbBmF7CzLLKUsc/O+DkOe2tl+OQOkPn+IYoPxB30tAoGAXJ/F
V6/TRlAQ8Heno6THecxXmgLXFQmN29gL9Yn2VFCOEJWxqXPi+EVC5tewJjrHznp/
RkxlWrCmfZYtNw9gILNetEVlUeG3vYsNR91v4AZdpsogK4IymAW1PKXDqUyhK+Px
gCtG8zUuSpEGgomqzSIprdYnOrik+hWM994m+ssCgYEA0thqIGE58OA9eiXTs6ji
dUxAqOZhKmntTr2mx+B1fNHJSBNkm+oL5Jx31qMp1cNiW49QxP+WLutixHqjDlvz
97Y9sCGg6cAdXWZuVffBPHjc4mdm6A5fWLGtynIyKk7rfL3GOoaFC0lXm3OLJqWt
MJEGZLyDGI6Y2gmRl9bVVhg=
-----END PRIVATE KEY-----
";
const KID2: &str = "rotated-2";
const AUDIENCE: &str = "my-api";
/// Upper bound of every test.
const BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A JWKS server.

struct ServerState {
    jwks: Value,
    status: u16,
    delay: Duration,
    hits: usize,
}

/// Serves `GET /realms/test/protocol/openid-connect/certs` on 127.0.0.1 (Keycloak's layout).
#[derive(Clone)]
struct JwksServer {
    state: Arc<Mutex<ServerState>>,
    addr: SocketAddr,
}

async fn certs(State(state): State<Arc<Mutex<ServerState>>>) -> impl IntoResponse {
    let (body, status, delay) = {
        let mut s = state.lock().expect("server state");
        s.hits += 1;
        (s.jwks.to_string(), s.status, s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    (StatusCode::from_u16(status).expect("status"), [(CONTENT_TYPE, "application/json")], body)
}

impl JwksServer {
    async fn start(jwks: Value) -> Self {
        let state = Arc::new(Mutex::new(ServerState { jwks, status: 200, delay: Duration::ZERO, hits: 0 }));
        let app =
            Router::new().route("/realms/test/protocol/openid-connect/certs", get(certs)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { state, addr }
    }

    fn issuer(&self) -> String {
        format!("http://{}/realms/test", self.addr)
    }

    fn hits(&self) -> usize {
        self.state.lock().expect("server state").hits
    }

    fn set_jwks(&self, jwks: Value) {
        self.state.lock().expect("server state").jwks = jwks;
    }

    fn set_status(&self, status: u16) {
        self.state.lock().expect("server state").status = status;
    }

    fn set_delay(&self, delay: Duration) {
        self.state.lock().expect("server state").delay = delay;
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens.

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

fn test_jwks() -> Value {
    serde_json::from_str(JWKS).expect("jwks.json")
}

/// A JWKS holding only the second RSA key, under [`KID2`].
fn rotated_jwks() -> Value {
    let key = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).expect("second rsa key");
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk of the second key");
    jwk.common.key_id = Some(KID2.to_owned());
    json!({"keys": [jwk]})
}

fn claims(issuer: &str) -> Value {
    json!({
        "exp": now() + 300,
        "iat": now(),
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "user-123",
        "preferred_username": "johndoe",
        "email": "user@example.com",
        "realm_access": {"roles": ["admin", "user"]},
    })
}

fn sign_with(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).expect("sign")
}

fn sign(kid: &str, claims: &Value) -> String {
    sign_with(&EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa key"), Algorithm::RS256, Some(kid), claims)
}

fn sign2(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).expect("second rsa key");
    sign_with(&key, Algorithm::RS256, Some(KID2), claims)
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn cache(server: &JwksServer) -> JwksCache {
    JwksCache::keycloak(server.issuer()).audience(AUDIENCE).build().expect("cache")
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(BOUND, test).await.expect("test finished within its bound");
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn valid_token_verifies_with_one_fetch() {
    bounded(async {
        let server = JwksServer::start(test_jwks()).await;
        let cache = cache(&server);
        assert!(cache.key_ids().is_empty(), "nothing fetched before the first use");
        let token = sign(KID, &claims(&server.issuer()));
        let claims = cache.verify(&token).await.expect("valid token");
        assert_eq!(claims["sub"], "user-123");
        assert_eq!(claims["realm_access"]["roles"], json!(["admin", "user"]));
        // a leading `Bearer ` is accepted too; the keys are cached
        cache.verify(&format!("Bearer {token}")).await.expect("valid token again");
        assert_eq!(server.hits(), 1);
        assert_eq!(cache.key_ids(), ["test-rsa-1", "test-ec-1"], "the enc key is skipped");
        let debug = format!("{cache:?}");
        assert!(debug.contains("test-rsa-1") && !debug.contains("BEGIN"), "{debug}");
    })
    .await;
}

#[tokio::test]
async fn standard_claims_are_checked() {
    bounded(async {
        let server = JwksServer::start(test_jwks()).await;
        let cache = cache(&server);
        let issuer = server.issuer();

        let mut expired = claims(&issuer);
        expired["exp"] = json!(now() - 3600);
        assert_eq!(cache.verify(&sign(KID, &expired)).await, Err(TokenError::Expired));

        let mut within_leeway = claims(&issuer);
        within_leeway["exp"] = json!(now() - 10);
        assert!(cache.verify(&sign(KID, &within_leeway)).await.is_ok(), "60 s leeway by default");

        let mut wrong_iss = claims(&issuer);
        wrong_iss["iss"] = json!("https://evil.example.com/realms/test");
        assert_eq!(cache.verify(&sign(KID, &wrong_iss)).await, Err(TokenError::InvalidIssuer));

        let mut wrong_aud = claims(&issuer);
        wrong_aud["aud"] = json!("account");
        assert_eq!(cache.verify(&sign(KID, &wrong_aud)).await, Err(TokenError::InvalidAudience));

        let mut no_aud = claims(&issuer);
        no_aud.as_object_mut().expect("object").remove("aud");
        assert_eq!(cache.verify(&sign(KID, &no_aud)).await, Err(TokenError::InvalidAudience));

        let mut aud_array = claims(&issuer);
        aud_array["aud"] = json!(["account", AUDIENCE]);
        assert_eq!(cache.verify(&sign(KID, &aud_array)).await.map(|c| c["sub"].clone()), Ok(json!("user-123")));

        // ES256 is signed correctly (the EC key is in the JWKS) but not in the default allow-list
        let ec = EncodingKey::from_ec_pem(EC_PRIVATE).expect("ec key");
        let es256 = sign_with(&ec, Algorithm::ES256, Some("test-ec-1"), &claims(&issuer));
        assert!(matches!(cache.verify(&es256).await, Err(TokenError::DisallowedAlgorithm(_))));
        let es_cache = JwksCache::keycloak(&issuer)
            .audience(AUDIENCE)
            .algorithms([Algorithm::RS256, Algorithm::ES256])
            .build()
            .expect("cache");
        assert!(es_cache.verify(&es256).await.is_ok(), "ES256 once allowed");

        let leeway_cache =
            JwksCache::keycloak(&issuer).audience(AUDIENCE).leeway(Duration::ZERO).build().expect("cache");
        assert_eq!(leeway_cache.verify(&sign(KID, &within_leeway)).await, Err(TokenError::Expired));
        assert_eq!(server.hits(), 3, "one fetch per cache");
    })
    .await;
}

#[tokio::test]
async fn unsigned_tampered_and_garbage_tokens_are_refused() {
    bounded(async {
        let server = JwksServer::start(test_jwks()).await;
        let cache = cache(&server);
        let issuer = server.issuer();
        let payload = b64(&claims(&issuer).to_string());

        // refused before any fetch: no keys are needed to refuse them
        for alg in ["none", "None", "NONE"] {
            let header = b64(&format!(r#"{{"alg":"{alg}","kid":"{KID}","typ":"JWT"}}"#));
            for token in [format!("{header}.{payload}."), format!("{header}.{payload}.c2ln")] {
                assert_eq!(cache.verify(&token).await, Err(TokenError::UnsignedToken), "{alg}");
            }
        }
        for garbage in ["", "Bearer ", "a.b", "not.a.jwt", "....", "é.é.é"] {
            assert!(matches!(cache.verify(garbage).await, Err(TokenError::Malformed(_))), "{garbage:?}");
        }
        assert_eq!(server.hits(), 0, "no fetch for tokens that cannot be valid");

        // a real token with its payload swapped for another user's
        let token = sign(KID, &claims(&issuer));
        let mut forged = claims(&issuer);
        forged["sub"] = json!("admin");
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], b64(&forged.to_string()), parts[2]);
        assert_eq!(cache.verify(&tampered).await, Err(TokenError::InvalidSignature));
        // a flipped signature
        let mut sig = parts[2].to_owned();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, flipped);
        assert_eq!(cache.verify(&format!("{}.{}.{sig}", parts[0], parts[1])).await, Err(TokenError::InvalidSignature));
        // `alg: none` with a kid the cache knows, after the keys are cached
        let none = format!("{}.{payload}.", b64(r#"{"alg":"none"}"#));
        assert_eq!(cache.verify(&none).await, Err(TokenError::UnsignedToken));
        // HS256 "signed" with the public key as HMAC secret (the classic confusion attack)
        let hs = sign_with(&EncodingKey::from_secret(JWKS.as_bytes()), Algorithm::HS256, Some(KID), &claims(&issuer));
        assert!(matches!(cache.verify(&hs).await, Err(TokenError::DisallowedAlgorithm(_))));
        assert_eq!(server.hits(), 1);
    })
    .await;
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_rate_limits() {
    bounded(async {
        let server = JwksServer::start(test_jwks()).await;
        let interval = Duration::from_millis(400);
        let cache = JwksCache::keycloak(server.issuer())
            .audience(AUDIENCE)
            .min_refresh_interval(interval)
            .build()
            .expect("cache");
        let issuer = server.issuer();
        cache.verify(&sign(KID, &claims(&issuer))).await.expect("valid token");
        assert_eq!(server.hits(), 1);

        tokio::time::sleep(interval + Duration::from_millis(100)).await;
        let unknown = sign("no-such-key", &claims(&issuer));
        assert_eq!(cache.verify(&unknown).await, Err(TokenError::UnknownKey("no-such-key".into())));
        assert_eq!(server.hits(), 2, "one refetch for the unknown kid");

        // within the window: neither the same nor another unknown kid fetches again
        assert!(matches!(cache.verify(&unknown).await, Err(TokenError::UnknownKey(_))));
        let other = sign("another-key", &claims(&issuer));
        assert_eq!(cache.verify(&other).await, Err(TokenError::UnknownKey("another-key".into())));
        assert_eq!(server.hits(), 2, "rate-limited");
        // known keys still verify meanwhile
        cache.verify(&sign(KID, &claims(&issuer))).await.expect("valid token");

        // after the window, one more refetch is allowed
        tokio::time::sleep(interval + Duration::from_millis(100)).await;
        assert!(matches!(cache.verify(&other).await, Err(TokenError::UnknownKey(_))));
        assert_eq!(server.hits(), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_is_picked_up_with_one_shared_fetch() {
    bounded(async {
        let server = JwksServer::start(test_jwks()).await;
        let interval = Duration::from_secs(1);
        let cache = JwksCache::keycloak(server.issuer())
            .audience(AUDIENCE)
            .min_refresh_interval(interval)
            .build()
            .expect("cache");
        let issuer = server.issuer();
        let old = sign(KID, &claims(&issuer));
        cache.verify(&old).await.expect("old key");
        assert_eq!(server.hits(), 1);

        // Keycloak rotates: the old key is gone, a new one with a new kid signs the tokens
        server.set_jwks(rotated_jwks());
        server.set_delay(Duration::from_millis(200)); // keep the fetch in flight while the others arrive
        tokio::time::sleep(interval + Duration::from_millis(100)).await;
        let new = sign2(&claims(&issuer));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, new) = (cache.clone(), new.clone());
                tokio::spawn(async move { cache.verify(&new).await.map(|c| c["sub"].clone()) })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("task"), Ok(json!("user-123")));
        }
        assert_eq!(server.hits(), 2, "eight concurrent misses, one fetch");
        assert_eq!(cache.key_ids(), [KID2]);
        server.set_delay(Duration::ZERO);

        // the old key is no longer trusted (and asking again within the window does not fetch)
        assert!(matches!(cache.verify(&old).await, Err(TokenError::UnknownKey(_))));
        assert_eq!(server.hits(), 2);
    })
    .await;
}

#[tokio::test]
async fn failed_fetches_keep_the_old_keys() {
    bounded(async {
        let server = JwksServer::start(test_jwks()).await;
        let max_age = Duration::from_millis(200);
        let interval = Duration::from_millis(400);
        let cache = JwksCache::keycloak(server.issuer())
            .audience(AUDIENCE)
            .max_age(max_age)
            .min_refresh_interval(interval)
            .build()
            .expect("cache");
        let issuer = server.issuer();
        let token = sign(KID, &claims(&issuer));
        cache.verify(&token).await.expect("valid token");
        assert_eq!(server.hits(), 1);

        // the keys are stale and the server fails: the refresh is tried, the old keys stay
        server.set_status(500);
        tokio::time::sleep(interval + Duration::from_millis(100)).await;
        cache.verify(&token).await.expect("still valid with the cached keys");
        assert_eq!(server.hits(), 2, "the stale keys were refreshed (and that failed)");
        // retries after a failure are rate-limited too: neither staleness nor an unknown kid fetches now
        let unknown = sign("x", &claims(&issuer));
        assert!(matches!(cache.verify(&unknown).await, Err(TokenError::UnknownKey(_))));
        cache.verify(&token).await.expect("still valid");
        assert_eq!(server.hits(), 2);
        tokio::time::sleep(interval + Duration::from_millis(100)).await;
        assert!(matches!(cache.verify(&unknown).await, Err(TokenError::UnknownKey(_))));
        assert_eq!(server.hits(), 3, "one retry per interval");
        // a forced refresh reports the failure and keeps the keys
        assert_eq!(cache.refresh().await, Err(TokenError::KeysUnavailable("HTTP 500".into())));
        assert_eq!(server.hits(), 4);
        cache.verify(&token).await.expect("still valid");

        // a document without usable keys is a failure too
        server.set_status(200);
        server.set_jwks(json!({"keys": [{"kid": "h", "kty": "oct", "k": "c2VjcmV0"}]}));
        assert!(matches!(cache.refresh().await, Err(TokenError::KeysUnavailable(_))));
        server.set_jwks(json!("not a jwks"));
        assert!(matches!(cache.refresh().await, Err(TokenError::KeysUnavailable(_))));
        cache.verify(&token).await.expect("still valid");
        assert_eq!(cache.key_ids(), ["test-rsa-1", "test-ec-1"]);

        // recovery
        server.set_jwks(test_jwks());
        cache.refresh().await.expect("refresh");
    })
    .await;
}

#[tokio::test]
async fn no_keys_at_all_is_keys_unavailable() {
    bounded(async {
        let server = JwksServer::start(test_jwks()).await;
        server.set_status(503);
        let cache = cache(&server);
        let token = sign(KID, &claims(&server.issuer()));
        assert_eq!(cache.verify(&token).await, Err(TokenError::KeysUnavailable("HTTP 503".into())));
        assert_eq!(cache.verify(&token).await, Err(TokenError::KeysUnavailable("HTTP 503".into())));
        assert_eq!(server.hits(), 1, "retries are rate-limited");

        // a server that does not answer in time
        server.set_status(200);
        server.set_delay(Duration::from_secs(10));
        let slow =
            JwksCache::keycloak(server.issuer()).fetch_timeout(Duration::from_millis(300)).build().expect("cache");
        let started = std::time::Instant::now();
        let Err(TokenError::KeysUnavailable(reason)) = slow.verify(&token).await else { panic!("keys unavailable") };
        assert!(reason.contains("timed out"), "{reason}");
        assert!(started.elapsed() < Duration::from_secs(5));

        // nobody listening
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let refused = JwksCache::keycloak(format!("http://{closed}/realms/test")).build().expect("cache");
        let Err(TokenError::KeysUnavailable(reason)) = refused.refresh().await else { panic!("keys unavailable") };
        assert!(reason.starts_with("connection failed"), "{reason}");
        assert!(!reason.contains(&closed.port().to_string()), "no URL in the reason: {reason}");
    })
    .await;
}

#[test]
fn configuration_errors() {
    let err = |r: Result<JwksCache, observer::ConfigurationError>| r.err().map(|e| e.field);
    assert_eq!(err(JwksCache::builder("ftp://example.com/certs").build()), Some("jwks.url".into()));
    assert_eq!(err(JwksCache::keycloak("").build()), Some("jwks.url".into()));
    assert_eq!(
        err(JwksCache::keycloak("https://kc.example.com/realms/a").algorithms([Algorithm::HS256]).build()),
        Some("jwks.algorithms".into())
    );
}
