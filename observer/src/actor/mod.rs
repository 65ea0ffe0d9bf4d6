//! Actor context: who did it.
//!
//! The guide's actor API is at the crate root: [`ActorContext`], [`with_actor`](crate::with_actor),
//! [`set_actor_context`](crate::set_actor_context), [`get_actor_context`](crate::get_actor_context),
//! [`register_actor_provider`](crate::register_actor_provider),
//! [`set_actor_from_keycloak_token`](crate::set_actor_from_keycloak_token), [`Verify`](crate::Verify) and
//! [`ClaimMappings`](crate::ClaimMappings). This module holds the rest: the synchronous scope ([`with_actor_sync`]),
//! [`clear_actor_providers`], JWT verification ([`TokenVerifier`], [`decode_unverified`]) and, with feature `jwks`, the
//! [`JwksCache`].
//!
//! # Keycloak claims
//!
//! [`ClaimMappings`](crate::ClaimMappings) say which claim feeds which actor field, as dotted paths into the claims
//! object. The default is Keycloak's layout:
//!
//! | field             | claim path                                         |
//! |-------------------|----------------------------------------------------|
//! | `actor_id`        | `sub` (required)                                   |
//! | `email`           | `email`                                            |
//! | `name`            | `name`                                             |
//! | `username`        | `preferred_username`                               |
//! | `roles`           | `realm_access.roles`                               |
//! | `groups`          | `groups`                                           |
//! | `tenant_id`       | `tenant_id`                                        |
//! | `organization_id` | `organization_id`                                  |
//! | `session_id`      | `session_state`, else `sid`                        |
//!
//! `actor_type` (default `"user"`), `ip_address` and `user_agent` are unmapped unless you map them. Client roles
//! live at `resource_access.<client>.roles`: merge them into `roles` with
//! [`ClaimMappings::client_roles`](crate::ClaimMappings::client_roles) or a mapping value listing several paths.
//!
//! Three ways in:
//! - [`ActorContext::from_keycloak_token`] for claims you already hold as JSON;
//! - [`set_actor_from_keycloak_token`](crate::set_actor_from_keycloak_token) for a raw JWT (an `Authorization` header
//!   value), which decodes — or with [`Verify::With`](crate::Verify::With) verifies — it, builds the actor with the
//!   mappings configured at [`init`](crate::init) (`keycloak_claim_mappings`) and makes it the current actor;
//! - [`TokenVerifier`] and [`decode_unverified`] on their own.
//!
//! ## Examples
//!
//! The default mapping, with the guide's Keycloak payload:
//!
//! ```
//! use observer::{ActorContext, ClaimMappings};
//! use serde_json::json;
//!
//! let jwt_payload = json!({
//!     "sub": "user-123",
//!     "email": "user@example.com",
//!     "name": "John Doe",
//!     "preferred_username": "johndoe",
//!     "realm_access": {"roles": ["admin", "user"]},
//!     "groups": ["/org/engineering"],
//! });
//! let actor = ActorContext::from_keycloak_token(&jwt_payload, Some(&ClaimMappings::default()))?;
//! assert_eq!(actor.actor_id, "user-123");
//! assert_eq!(actor.actor_type, "user");
//! assert_eq!(actor.email.as_deref(), Some("user@example.com"));
//! assert_eq!(actor.username.as_deref(), Some("johndoe"));
//! assert_eq!(actor.roles, ["admin", "user"]);
//! assert_eq!(actor.groups, ["/org/engineering"]);
//! observer::set_actor_context(Some(actor));
//! # observer::set_actor_context(None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Custom claim mappings override the default per field:
//!
//! ```
//! use observer::{ActorContext, ClaimMappings};
//! use serde_json::json;
//!
//! let jwt_payload = json!({
//!     "user_id": "user-123",
//!     "user_email": "user@example.com",
//!     "permissions": ["read", "write"],
//! });
//! let mappings =
//!     ClaimMappings::from_pairs([("actor_id", "user_id"), ("email", "user_email"), ("roles", "permissions")])?;
//! let actor = ActorContext::from_keycloak_token(&jwt_payload, Some(&mappings))?;
//! assert_eq!(actor.actor_id, "user-123");
//! assert_eq!(actor.email.as_deref(), Some("user@example.com"));
//! assert_eq!(actor.roles, ["read", "write"]);
//!
//! // Realm roles plus the roles of one client:
//! let mappings = ClaimMappings::default().client_roles("my-client")?;
//! let claims = json!({
//!     "sub": "u1",
//!     "realm_access": {"roles": ["user"]},
//!     "resource_access": {"my-client": {"roles": ["editor"]}, "other": {"roles": ["x"]}},
//! });
//! assert_eq!(ActorContext::from_keycloak_token(&claims, Some(&mappings))?.roles, ["user", "editor"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! From a raw token that the API gateway has already verified:
//!
//! ```
//! use observer::{get_actor_context, set_actor_from_keycloak_token, Verify};
//!
//! // {"alg":"RS256","typ":"JWT"} . {"sub":"user-123","preferred_username":"johndoe"} . signature
//! let header = "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.\
//!               eyJzdWIiOiJ1c2VyLTEyMyIsInByZWZlcnJlZF91c2VybmFtZSI6ImpvaG5kb2UifQ.c2lnbmF0dXJl";
//! let actor = set_actor_from_keycloak_token(header, &Verify::Skip)?;
//! assert_eq!(actor.username.as_deref(), Some("johndoe"));
//! assert_eq!(get_actor_context(), Some(actor));
//! # observer::set_actor_context(None);
//! # Ok::<(), observer::TokenError>(())
//! ```
//!
//! Verifying it yourself:
//!
//! ```no_run
//! use observer::actor::TokenVerifier;
//! use observer::{set_actor_from_keycloak_token, Verify};
//!
//! # fn main() -> Result<(), observer::TokenError> {
//! # let jwks = serde_json::json!({}); let raw_jwt = "";
//! let verify = Verify::from(
//!     TokenVerifier::from_jwks(&jwks)? // GET {issuer}/protocol/openid-connect/certs
//!         .issuer("https://keycloak.example.com/realms/acme")
//!         .audience("my-api"),
//! );
//! let actor = set_actor_from_keycloak_token(raw_jwt, &verify)?;
//! # Ok(()) }
//! ```
//!
//! # JWT verification
//!
//! [`decode_unverified`] for tokens an API gateway has already verified, and [`TokenVerifier`]
//! for verifying the signature and the standard claims yourself (RS256/ES256/HS256 keys or a JWKS document).
//!
//! Both are building blocks: [`set_actor_from_keycloak_token`](crate::set_actor_from_keycloak_token) uses them, and so
//! can a web layer or a JWKS cache. Every failure is a distinct [`TokenError`](crate::TokenError); no error ever
//! contains the token itself.
//!
//! ## Examples
//!
//! ```no_run
//! use observer::actor::TokenVerifier;
//!
//! # fn main() -> Result<(), observer::TokenError> {
//! # let jwks_json = serde_json::json!({"keys": []});
//! # let raw_jwt = "";
//! // Keycloak publishes its keys at {issuer}/protocol/openid-connect/certs.
//! let verifier = TokenVerifier::from_jwks(&jwks_json)?
//!     .issuer("https://keycloak.example.com/realms/acme")
//!     .audience("my-api");
//! let claims = verifier.verify(raw_jwt)?; // serde_json::Value, always an object
//! # Ok(()) }
//! ```
//!
//! # JWKS cache (feature `jwks`)
//!
//! A [`JwksCache`] verifies JWTs against the signing keys an identity provider publishes.
//!
//! [`JwksCache`] fetches a JWKS document over HTTP(S) — for Keycloak `{issuer}/protocol/openid-connect/certs` —
//! keeps the keys, and verifies tokens with the same checks as [`TokenVerifier`] (it builds one from each fetched
//! document with [`TokenVerifier::from_jwks`]):
//!
//! - **Unknown `kid`**: a token signed with a key the cache does not hold triggers one refetch (Keycloak has
//!   rotated its keys), then is verified again. Refetches are rate-limited ([`min_refresh_interval`], 30 s by
//!   default): a flood of tokens with made-up `kid`s costs at most one fetch per interval, and concurrent misses
//!   wait for and share a single fetch.
//! - **Maximum age**: keys older than [`max_age`] (10 minutes by default) are refreshed by the next verification
//!   (one caller fetches; the others go on with the cached keys meanwhile).
//! - **Failures are not fatal**: a failed fetch (timeout, HTTP error, a document without usable keys) keeps the
//!   keys already cached and is reported with a `tracing` warning. Only when no keys were ever fetched does
//!   verification fail, with [`TokenError::KeysUnavailable`](crate::TokenError::KeysUnavailable).
//! - **Algorithms**: RS256 unless [`algorithms`] says otherwise. `alg: none` is always refused, and HMAC
//!   algorithms (`HS*`) are never allowed with a JWKS: symmetric (`kty: oct`) entries of a document are dropped.
//!
//! Fetching needs a Tokio runtime (the HTTP client is `reqwest`). TLS is the system's OpenSSL (native-tls).
//!
//! Tokens, keys and URL credentials never appear in errors, logs or `Debug` output.
//!
//! [`min_refresh_interval`]: JwksCacheBuilder::min_refresh_interval
//! [`max_age`]: JwksCacheBuilder::max_age
//! [`algorithms`]: JwksCacheBuilder::algorithms
//!
//! ## Examples
//!
//! ```no_run
//! use observer::actor::JwksCache;
//! use observer::ActorContext;
//!
//! # async fn run(raw_jwt: &str) -> Result<(), Box<dyn std::error::Error>> {
//! // JWKS at https://keycloak.example.com/realms/acme/protocol/openid-connect/certs, `iss` must match.
//! let cache = JwksCache::keycloak("https://keycloak.example.com/realms/acme").audience("my-api").build()?;
//! cache.refresh().await?; // optional: fail fast at start-up if Keycloak is unreachable
//!
//! let claims = cache.verify(raw_jwt).await?; // a leading `Bearer ` is accepted
//! let actor = ActorContext::from_keycloak_token(&claims, None)?;
//! # Ok(()) }
//! ```

pub(crate) mod context;
#[cfg(feature = "jwks")]
mod jwks;
mod jwt;
pub(crate) mod keycloak;

pub(crate) use context::current_actor;
pub use context::{clear_actor_providers, with_actor_sync, WithActor};
// The crate's own short paths to the actor nouns published at the root.
pub(crate) use context::ActorContext;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub use jwks::{JwksCache, JwksCacheBuilder};
pub use jwt::{decode_unverified, Algorithm, DecodingKey, TokenVerifier};
