//! Actor context: who did it. [`ActorContext`], task/thread scopes, providers, and Keycloak JWT claims.

pub(crate) mod context;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub mod jwks;
pub mod jwt;
pub mod keycloak;

pub(crate) use context::current_actor;
pub use context::{
    clear_actor_providers, get_actor_context, register_actor_provider, set_actor_context, with_actor, with_actor_sync,
    ActorContext, ActorScopeExt, WithActor,
};
#[cfg(feature = "jwks")]
pub use jwks::JwksCache;
pub use keycloak::{set_actor_from_keycloak_token, ClaimMappings, TokenVerifier, Verify};
