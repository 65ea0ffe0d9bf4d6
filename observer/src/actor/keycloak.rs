//! Keycloak claims → [`ActorContext`], and raw JWT decoding/verification. (Placeholder: being implemented.)

use crate::actor::ActorContext;
use crate::error::TokenError;

/// Which claim feeds which [`ActorContext`] field (dotted paths walk nested objects).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimMappings {}

/// How [`set_actor_from_keycloak_token`] treats the token's signature.
#[derive(Debug, Clone)]
pub enum Verify {
    /// Do not verify (the API gateway already did).
    Skip,
    /// Verify with this verifier.
    With(Box<TokenVerifier>),
}

/// Verifies JWT signatures and standard claims.
#[derive(Debug, Clone)]
pub struct TokenVerifier {}

impl ActorContext {
    /// Builds an actor from decoded JWT claims.
    pub fn from_keycloak_token(
        _claims: &serde_json::Value,
        _mappings: Option<&ClaimMappings>,
    ) -> Result<ActorContext, TokenError> {
        Err(TokenError::Malformed("not implemented".into()))
    }
}

/// Decodes `raw_jwt`, builds the actor with the configured claim mappings and sets it as current.
pub fn set_actor_from_keycloak_token(_raw_jwt: &str, _verify: &Verify) -> Result<ActorContext, TokenError> {
    Err(TokenError::Malformed("not implemented".into()))
}

impl ClaimMappings {
    /// Default mappings overridden by the `field → claim path` pairs of the config.
    pub fn from_config(
        _map: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, crate::error::ConfigurationError> {
        Ok(Self {})
    }
}
