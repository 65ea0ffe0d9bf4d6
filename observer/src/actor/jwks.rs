//! The JWKS cache (feature `jwks`): [`JwksCache`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use serde_json::Value;

use crate::actor::jwt::{Algorithm, TokenVerifier};
use crate::error::{ConfigurationError, TokenError};

/// Largest JWKS document accepted (Keycloak's is a few kilobytes).
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Where Keycloak serves a realm's keys, relative to the realm's issuer URL.
const KEYCLOAK_CERTS_PATH: &str = "/protocol/openid-connect/certs";

/// A URL fit for logs and `Debug`: no user name, password, query or fragment.
fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

fn config_error(field: &str, message: impl Into<String>) -> ConfigurationError {
    ConfigurationError::new(format!("jwks.{field}"), message)
}

// ---------------------------------------------------------------------------------------------
// Builder.

/// Configures a [`JwksCache`]; made by [`JwksCache::keycloak`] or [`JwksCache::builder`], finished by
/// [`build`](Self::build).
#[derive(Clone)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct JwksCacheBuilder {
    url: String,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
    min_refresh_interval: Duration,
    max_age: Duration,
    fetch_timeout: Duration,
}

impl fmt::Debug for JwksCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCacheBuilder")
            .field("url", &display_url(&self.url))
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("algorithms", &self.algorithms)
            .field("min_refresh_interval", &self.min_refresh_interval)
            .field("max_age", &self.max_age)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish()
    }
}

impl JwksCacheBuilder {
    fn new(url: String) -> Self {
        Self {
            url,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: TokenVerifier::DEFAULT_LEEWAY,
            algorithms: vec![Algorithm::RS256],
            min_refresh_interval: JwksCache::DEFAULT_MIN_REFRESH_INTERVAL,
            max_age: JwksCache::DEFAULT_MAX_AGE,
            fetch_timeout: JwksCache::DEFAULT_FETCH_TIMEOUT,
        }
    }

    /// Requires `iss` to equal `issuer` exactly. Call it again to accept several issuers.
    /// [`JwksCache::keycloak`] sets the realm's issuer already.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Requires `aud` (a string or an array) to contain `audience`. Call it again to accept several audiences.
    /// Without any, `aud` is not checked and a token issued by the realm to *any* client is accepted; Keycloak
    /// puts your API in `aud` through an audience mapper on the client.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock-skew allowance for `exp` and `nbf`, in whole seconds (a fraction is dropped; default
    /// [`TokenVerifier::DEFAULT_LEEWAY`], at most a day).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The accepted signature algorithms (default RS256, Keycloak's default). HMAC algorithms are refused by
    /// [`build`](Self::build): a JWKS is public, so a symmetric key in it would let anyone sign tokens.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Least time between two fetches caused by tokens with an unknown `kid`, and between retries after a failed
    /// fetch (default 30 s). `Duration::ZERO` removes the limit (tests only: anyone could then make the service
    /// fetch once per request).
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Age after which the cached keys are refreshed (default 10 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Timeout of one fetch, from connecting to the end of the body (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Builds the cache. Nothing is fetched yet: the first verification (or [`JwksCache::refresh`]) fetches.
    ///
    /// # Errors
    /// A [`ConfigurationError`] (fields `jwks.url`, `jwks.algorithms`, `jwks.client`) if the URL is not an
    /// `http`/`https` URL, if the algorithm list is empty or holds an HMAC algorithm, or if the HTTP client cannot
    /// be created (TLS initialisation).
    pub fn build(self) -> Result<JwksCache, ConfigurationError> {
        let url = reqwest::Url::parse(self.url.trim())
            .map_err(|_| config_error("url", format!("`{}` is not a valid URL", display_url(&self.url))))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(config_error("url", "the JWKS URL must be an http:// or https:// URL with a host"));
        }
        let shown = display_url(url.as_str());
        if url.scheme() == "http" && !is_loopback(&url) {
            crate::diag::report!(
                WARN,
                "jwks-plain-http",
                "JWKS fetched over plain HTTP from {shown}: use https outside local development"
            );
        }
        if self.algorithms.is_empty() {
            return Err(config_error("algorithms", "no algorithm allowed"));
        }
        if let Some(alg) =
            self.algorithms.iter().find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(config_error("algorithms", format!("{alg:?} (HMAC) cannot be used with a public JWKS")));
        }
        let client = reqwest::Client::builder()
            .timeout(self.fetch_timeout)
            .connect_timeout(self.fetch_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|_| config_error("client", "the HTTP client could not be created (TLS initialisation failed)"))?;
        Ok(JwksCache {
            inner: Arc::new(Inner {
                url,
                shown_url: shown,
                client,
                issuers: self.issuers,
                audiences: self.audiences,
                leeway: self.leeway,
                algorithms: self.algorithms,
                min_refresh_interval: self.min_refresh_interval,
                max_age: self.max_age,
                keys: ArcSwapOption::empty(),
                fetch: tokio::sync::Mutex::new(FetchState::default()),
            }),
        })
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The cache.

/// The keys of one successful fetch.
struct Snapshot {
    verifier: TokenVerifier,
    fetched_at: Instant,
    /// Counts successful fetches; tells a caller whether someone refreshed since it looked.
    generation: u64,
}

/// Guarded by the fetch lock: only one fetch runs at a time.
#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    generation: u64,
}

struct Inner {
    url: reqwest::Url,
    shown_url: String,
    client: reqwest::Client,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    algorithms: Vec<Algorithm>,
    min_refresh_interval: Duration,
    max_age: Duration,
    keys: ArcSwapOption<Snapshot>,
    fetch: tokio::sync::Mutex<FetchState>,
}

/// Verifies JWTs against a JWKS fetched over HTTP(S) and cached; see the [`actor` module docs](crate::actor#jwks-cache-feature-jwks).
///
/// `Clone` is cheap (an `Arc`), and the cache is `Send + Sync`: build one at start-up and share it between
/// requests, e.g. through `observer::web::ObserverLayer` (feature `web`).
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("JwksCache")
            .field("url", &i.shown_url)
            .field("issuers", &i.issuers)
            .field("audiences", &i.audiences)
            .field("leeway", &i.leeway)
            .field("algorithms", &i.algorithms)
            .field("min_refresh_interval", &i.min_refresh_interval)
            .field("max_age", &i.max_age)
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl JwksCache {
    /// Default least time between two fetches caused by unknown `kid`s (or between retries after a failure): 30 s.
    pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

    /// Default age after which cached keys are refreshed: 10 minutes.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

    /// Default timeout of one fetch (connecting, sending, reading the whole body): 5 s.
    pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

    /// A cache for a Keycloak realm: keys from `{issuer}/protocol/openid-connect/certs`, and `iss` must equal
    /// `issuer` (e.g. `https://keycloak.example.com/realms/acme`; a trailing `/` is ignored). Add an
    /// [`audience`](JwksCacheBuilder::audience), then [`build`](JwksCacheBuilder::build).
    pub fn keycloak(issuer: impl AsRef<str>) -> JwksCacheBuilder {
        let issuer = issuer.as_ref().trim().trim_end_matches('/');
        JwksCacheBuilder::new(format!("{issuer}{KEYCLOAK_CERTS_PATH}")).issuer(issuer)
    }

    /// A cache for the JWKS document at `jwks_url`, with no issuer check unless you add one with
    /// [`issuer`](JwksCacheBuilder::issuer).
    pub fn builder(jwks_url: impl Into<String>) -> JwksCacheBuilder {
        JwksCacheBuilder::new(jwks_url.into())
    }

    /// Verifies `token` (a leading `Bearer ` is accepted) and returns its claims, a JSON object.
    ///
    /// Fetches the keys first if none are cached, refreshes them when older than the maximum age, and refetches
    /// once (rate-limited) when the token's `kid` is unknown.
    ///
    /// # Errors
    /// The [`TokenError`] of [`TokenVerifier::verify`] — [`Expired`](TokenError::Expired),
    /// [`InvalidIssuer`](TokenError::InvalidIssuer), [`InvalidAudience`](TokenError::InvalidAudience),
    /// [`UnknownKey`](TokenError::UnknownKey), [`InvalidSignature`](TokenError::InvalidSignature),
    /// [`UnsignedToken`](TokenError::UnsignedToken), [`DisallowedAlgorithm`](TokenError::DisallowedAlgorithm),
    /// [`Malformed`](TokenError::Malformed), … — or [`TokenError::KeysUnavailable`] when no keys could ever be
    /// fetched.
    pub async fn verify(&self, token: &str) -> Result<Value, TokenError> {
        let snapshot = match self.inner.keys.load_full() {
            Some(s) => {
                if s.fetched_at.elapsed() >= self.inner.max_age {
                    self.refresh_stale(s.generation).await;
                    self.inner.keys.load_full().unwrap_or(s)
                } else {
                    s
                }
            }
            None => {
                // Garbage and `alg: none` tokens must not make us fetch.
                crate::actor::jwt::decode_unverified(token)?;
                self.first_keys().await?
            }
        };
        match snapshot.verifier.verify(token) {
            Err(TokenError::UnknownKey(kid)) => match self.refresh_after_miss(snapshot.generation).await {
                Some(newer) => newer.verifier.verify(token),
                None => Err(TokenError::UnknownKey(kid)),
            },
            other => other,
        }
    }

    /// Fetches the keys now, whatever their age and the rate limit (waiting for a fetch already running), e.g. at
    /// start-up to fail fast when the identity provider is unreachable. A failure keeps the keys already cached.
    ///
    /// # Errors
    /// [`TokenError::KeysUnavailable`] with the reason if the fetch failed.
    pub async fn refresh(&self) -> Result<(), TokenError> {
        let mut state = self.inner.fetch.lock().await;
        self.fetch_locked(&mut state).await.map(|_| ()).map_err(TokenError::KeysUnavailable)
    }

    /// The `kid`s of the keys cached now (empty before the first successful fetch).
    pub fn key_ids(&self) -> Vec<String> {
        match self.inner.keys.load_full() {
            Some(s) => s.verifier.key_ids().into_iter().map(str::to_owned).collect(),
            None => Vec::new(),
        }
    }

    fn rate_limited(&self, state: &FetchState) -> bool {
        state.last_attempt.is_some_and(|t| t.elapsed() < self.inner.min_refresh_interval)
    }

    /// No keys yet: all callers wait for one fetch.
    async fn first_keys(&self) -> Result<Arc<Snapshot>, TokenError> {
        let mut state = self.inner.fetch.lock().await;
        if let Some(s) = self.inner.keys.load_full() {
            return Ok(s);
        }
        if self.rate_limited(&state) {
            let reason = state.last_error.clone().unwrap_or_else(|| "the last fetch failed".to_owned());
            return Err(TokenError::KeysUnavailable(reason));
        }
        self.fetch_locked(&mut state).await.map_err(TokenError::KeysUnavailable)
    }

    /// Keys past their maximum age: one caller refreshes, the others keep using the cached keys meanwhile.
    async fn refresh_stale(&self, seen: u64) {
        let Ok(mut state) = self.inner.fetch.try_lock() else { return };
        if state.generation != seen || self.rate_limited(&state) {
            return;
        }
        // A failure is logged and the old keys stay.
        let _ = self.fetch_locked(&mut state).await;
    }

    /// A `kid` missing from generation `seen`: refetch unless someone already did or the rate limit says no.
    /// Returns the keys to try again with, if there are newer ones.
    async fn refresh_after_miss(&self, seen: u64) -> Option<Arc<Snapshot>> {
        let mut state = self.inner.fetch.lock().await;
        if state.generation != seen {
            return self.inner.keys.load_full();
        }
        if self.rate_limited(&state) {
            tracing::debug!(jwks_url = %self.inner.shown_url, "unknown kid; JWKS refetch skipped (rate limit)");
            return None;
        }
        self.fetch_locked(&mut state).await.ok()
    }

    /// Fetches and installs the keys; the caller holds the fetch lock. On failure the old keys stay, the failure
    /// is logged and its reason returned.
    async fn fetch_locked(&self, state: &mut FetchState) -> Result<Arc<Snapshot>, String> {
        state.last_attempt = Some(Instant::now());
        match self.fetch_document().await.and_then(|doc| self.verifier_for(&doc)) {
            Ok(verifier) => {
                state.generation += 1;
                state.last_error = None;
                let snapshot =
                    Arc::new(Snapshot { verifier, fetched_at: Instant::now(), generation: state.generation });
                tracing::debug!(
                    jwks_url = %self.inner.shown_url,
                    key_ids = ?snapshot.verifier.key_ids(),
                    "JWKS fetched"
                );
                self.inner.keys.store(Some(snapshot.clone()));
                Ok(snapshot)
            }
            Err(reason) => {
                let cached = self.inner.keys.load().is_some();
                crate::diag::report!(
                    WARN,
                    "jwks-fetch-failed",
                    "JWKS fetch from {} failed ({reason}); {}",
                    self.inner.shown_url,
                    if cached { "keeping the cached keys" } else { "no keys cached yet" }
                );
                state.last_error = Some(reason.clone());
                Err(reason)
            }
        }
    }

    async fn fetch_document(&self) -> Result<Value, String> {
        let mut response = self
            .inner
            .client
            .get(self.inner.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err(format!("document larger than {MAX_JWKS_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("document larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| "the response is not JSON".to_owned())
    }

    /// A verifier for `doc` with this cache's settings; symmetric keys are dropped first.
    fn verifier_for(&self, doc: &Value) -> Result<TokenVerifier, String> {
        let mut doc = doc.clone();
        if let Some(Value::Array(keys)) = doc.get_mut("keys") {
            keys.retain(|k| k.get("kty").and_then(Value::as_str) != Some("oct"));
        } else if doc.get("kty").and_then(Value::as_str) == Some("oct") {
            return Err("the JWKS holds no usable signature key".to_owned());
        }
        let i = &self.inner;
        let mut verifier = TokenVerifier::from_jwks(&doc)
            .map_err(|e| e.to_string())?
            .algorithms(i.algorithms.clone())
            .leeway(i.leeway);
        for issuer in &i.issuers {
            verifier = verifier.issuer(issuer.clone());
        }
        for audience in &i.audiences {
            verifier = verifier.audience(audience.clone());
        }
        Ok(verifier)
    }
}

/// A fetch error without the URL: what went wrong and its root cause (e.g. `connection refused`).
fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_redirect() {
        "too many redirects"
    } else if err.is_body() || err.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = err;
    while let Some(source) = root.source() {
        root = source;
    }
    if std::ptr::addr_eq(root, err as &dyn std::error::Error) {
        what.to_owned()
    } else {
        format!("{what}: {root}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_url_drops_credentials_and_query() {
        assert_eq!(
            display_url("https://user:pw@kc.example.com/realms/a/certs?x=secret#f"),
            "https://kc.example.com/realms/a/certs"
        );
        assert_eq!(display_url("not a url"), "(invalid URL)");
    }

    #[test]
    fn keycloak_url_and_issuer() {
        let b = JwksCache::keycloak("https://kc.example.com/realms/acme/");
        assert_eq!(b.url, "https://kc.example.com/realms/acme/protocol/openid-connect/certs");
        assert_eq!(b.issuers, ["https://kc.example.com/realms/acme"]);
    }

    #[test]
    fn build_validates() {
        let err = |b: JwksCacheBuilder| b.build().err().map(|e| e.field);
        assert_eq!(err(JwksCache::builder("nope")), Some("jwks.url".into()));
        assert_eq!(err(JwksCache::builder("file:///etc/passwd")), Some("jwks.url".into()));
        let ok = || JwksCache::builder("https://kc.example.com/certs");
        assert_eq!(err(ok().algorithms([])), Some("jwks.algorithms".into()));
        assert_eq!(err(ok().algorithms([Algorithm::RS256, Algorithm::HS256])), Some("jwks.algorithms".into()));
        let Ok(cache) = ok().algorithms([Algorithm::RS256, Algorithm::ES256]).build() else { panic!("valid") };
        assert!(cache.key_ids().is_empty());
        let debug = format!("{:?}", JwksCache::builder("https://u:secret@kc.example.com/certs?t=tok"));
        assert!(!debug.contains("secret") && !debug.contains("tok"), "{debug}");
    }
}
