//! Keycloak claims → ActorContext, and raw JWTs: unverified decoding (`Verify::Skip`) and verification with real
//! RS256 / ES256 / HS256 signatures, PEM keys and a JWKS. The keys under `tests/data/jwt/` are test-only keys.
//!
//! The actor context is thread-level outside scopes and tests run on parallel threads, so each test that sets an
//! actor reads and clears it on its own thread.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use observer::actor::TokenVerifier;
use observer::{
    get_actor_context, set_actor_context, set_actor_from_keycloak_token, ActorContext, ClaimMappings, TokenError,
    Verify,
};
use serde_json::{json, Value};

const RSA_PRIVATE: &[u8] = include_bytes!("data/jwt/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("data/jwt/rsa_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("data/jwt/ec_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("data/jwt/ec_public.pem");
const JWKS: &str = include_str!("data/jwt/jwks.json");
const HMAC_SECRET: &str = "test-only-hmac-secret-0123456789abcdef";
const ISSUER: &str = "https://keycloak.example.com/realms/acme";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// The guide's Keycloak payload plus the claims a real Keycloak access token carries.
fn keycloak_claims() -> Value {
    json!({
        "exp": now() + 300,
        "iat": now(),
        "iss": ISSUER,
        "aud": "account",
        "typ": "Bearer",
        "azp": "my-app",
        "sub": "user-123",
        "email": "user@example.com",
        "name": "John Doe",
        "preferred_username": "johndoe",
        "realm_access": {"roles": ["admin", "user"]},
        "resource_access": {"my-app": {"roles": ["editor"]}, "account": {"roles": ["view-profile"]}},
        "groups": ["/org/engineering"],
        "session_state": "session-456",
        "sid": "session-456",
        "tenant_id": "tenant-1",
        "organization_id": "org-9",
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa private key"),
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE).expect("ec private key"),
        Algorithm::HS256 => EncodingKey::from_secret(HMAC_SECRET.as_bytes()),
        other => panic!("no test key for {other:?}"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).expect("sign")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_verifier() -> TokenVerifier {
    TokenVerifier::rsa_pem(RSA_PUBLIC).expect("rsa public key")
}

fn jwks_verifier() -> TokenVerifier {
    TokenVerifier::from_jwks(&serde_json::from_str::<Value>(JWKS).expect("jwks json")).expect("jwks")
}

/// No error message may contain any part of the token.
fn assert_no_token_text(err: &TokenError, token: &str) {
    let text = format!("{err} {err:?}");
    for segment in token.split('.').filter(|s| s.len() > 8) {
        assert!(!text.contains(segment), "error `{text}` leaks the token");
    }
}

// ---------------------------------------------------------------------------------------------
// Claims → ActorContext

#[test]
fn default_mapping_reads_every_keycloak_claim() {
    let actor = ActorContext::from_keycloak_token(&keycloak_claims(), Some(&ClaimMappings::default())).expect("actor");
    assert_eq!(actor.actor_id, "user-123");
    assert_eq!(actor.actor_type, "user");
    assert_eq!(actor.email.as_deref(), Some("user@example.com"));
    assert_eq!(actor.name.as_deref(), Some("John Doe"));
    assert_eq!(actor.username.as_deref(), Some("johndoe"));
    assert_eq!(actor.roles, ["admin", "user"]);
    assert_eq!(actor.groups, ["/org/engineering"]);
    assert_eq!(actor.session_id.as_deref(), Some("session-456"));
    assert_eq!(actor.tenant_id.as_deref(), Some("tenant-1"));
    assert_eq!(actor.organization_id.as_deref(), Some("org-9"));
    assert_eq!(actor.ip_address, None);
    assert_eq!(actor.user_agent, None);
}

#[test]
fn guide_payload_with_no_mappings_uses_the_defaults() {
    // Without init, `None` means the configured mappings, which are Keycloak's defaults.
    let jwt_payload = json!({
        "sub": "user-123",
        "email": "user@example.com",
        "name": "John Doe",
        "preferred_username": "johndoe",
        "realm_access": {"roles": ["admin", "user"]},
        "groups": ["/org/engineering"],
    });
    let actor = ActorContext::from_keycloak_token(&jwt_payload, None).expect("actor");
    assert_eq!(actor.actor_id, "user-123");
    assert_eq!(actor.roles, ["admin", "user"]);
    assert_eq!(actor.session_id, None);
    assert_eq!(actor.tenant_id, None);
}

#[test]
fn session_id_falls_back_to_sid() {
    let actor = ActorContext::from_keycloak_token(&json!({"sub": "u", "sid": "sid-1"}), None).expect("actor");
    assert_eq!(actor.session_id.as_deref(), Some("sid-1"));
}

#[test]
fn custom_mapping_from_the_guide() {
    let jwt_payload = json!({
        "user_id": "user-123",
        "user_email": "user@example.com",
        "permissions": ["read", "write"],
    });
    let mappings =
        ClaimMappings::from_pairs([("actor_id", "user_id"), ("email", "user_email"), ("roles", "permissions")])
            .expect("mappings");
    let actor = ActorContext::from_keycloak_token(&jwt_payload, Some(&mappings)).expect("actor");
    assert_eq!(actor.actor_id, "user-123");
    assert_eq!(actor.email.as_deref(), Some("user@example.com"));
    assert_eq!(actor.roles, ["read", "write"]);

    // The same through `map`, one field at a time.
    let mapped = ClaimMappings::default()
        .map("actor_id", "user_id")
        .and_then(|m| m.map("email", "user_email"))
        .and_then(|m| m.map("roles", "permissions"))
        .expect("map");
    assert_eq!(mapped, mappings);
}

#[test]
fn client_roles_are_merged_with_realm_roles() {
    let mappings = ClaimMappings::default().client_roles("my-app").expect("client roles");
    let actor = ActorContext::from_keycloak_token(&keycloak_claims(), Some(&mappings)).expect("actor");
    assert_eq!(actor.roles, ["admin", "user", "editor"]);

    let only_client = ClaimMappings::default().map("roles", "resource_access.my-app.roles").expect("mapping");
    let actor = ActorContext::from_keycloak_token(&keycloak_claims(), Some(&only_client)).expect("actor");
    assert_eq!(actor.roles, ["editor"]);
}

#[test]
fn a_string_where_a_list_is_expected_is_a_one_item_list() {
    let claims = json!({"sub": "u", "realm_access": {"roles": "admin"}, "groups": "/one"});
    let actor = ActorContext::from_keycloak_token(&claims, Some(&ClaimMappings::default())).expect("actor");
    assert_eq!(actor.roles, ["admin"]);
    assert_eq!(actor.groups, ["/one"]);
}

#[test]
fn missing_actor_id_is_missing_claim() {
    let defaults = ClaimMappings::default();
    let err = ActorContext::from_keycloak_token(&json!({"email": "a@b"}), Some(&defaults)).expect_err("no sub");
    assert_eq!(err, TokenError::MissingClaim("sub".into()));
    let err = ActorContext::from_keycloak_token(&json!({"sub": {"id": 1}}), Some(&defaults)).expect_err("object sub");
    assert_eq!(err, TokenError::MissingClaim("sub".into()));
    let custom = ClaimMappings::default().map("actor_id", "user.id").expect("mapping");
    let err = ActorContext::from_keycloak_token(&json!({"sub": "x"}), Some(&custom)).expect_err("no user.id");
    assert_eq!(err, TokenError::MissingClaim("user.id".into()));
    // a numeric id is accepted
    let actor = ActorContext::from_keycloak_token(&json!({"sub": 1234}), Some(&defaults)).expect("numeric sub");
    assert_eq!(actor.actor_id, "1234");
}

#[test]
fn non_object_claims_are_malformed() {
    for claims in [json!(null), json!("sub"), json!(42), json!([{"sub": "u"}]), json!(true)] {
        let err = ActorContext::from_keycloak_token(&claims, None).expect_err("not an object");
        assert!(matches!(err, TokenError::Malformed(_)), "{claims}: {err:?}");
    }
}

#[test]
fn invalid_mapping_names_the_field_and_the_valid_names() {
    let err = ClaimMappings::from_pairs([("user_name", "preferred_username")]).expect_err("unknown field");
    assert_eq!(err.field, "keycloak_claim_mappings.user_name");
    assert!(err.message.contains("username") && err.message.contains("actor_id"), "{}", err.message);

    let err = ClaimMappings::from_pairs([("email", " ")]).expect_err("empty path");
    assert_eq!(err.field, "keycloak_claim_mappings.email");
}

// ---------------------------------------------------------------------------------------------
// Raw tokens, Verify::Skip

#[test]
fn skip_decodes_sets_and_returns_the_actor() {
    set_actor_context(None);
    let token = sign(Algorithm::RS256, Some("test-rsa-1"), &keycloak_claims());
    let actor = set_actor_from_keycloak_token(&token, &Verify::Skip).expect("actor");
    assert_eq!(actor.actor_id, "user-123");
    assert_eq!(actor.username.as_deref(), Some("johndoe"));
    assert_eq!(actor.session_id.as_deref(), Some("session-456"));
    assert_eq!(get_actor_context(), Some(actor));
    set_actor_context(None);
    assert_eq!(get_actor_context(), None);
}

#[test]
fn skip_does_not_check_signature_or_expiry() {
    // That is the point of Skip: the gateway did it.
    let mut claims = keycloak_claims();
    claims["exp"] = json!(now() - 3600);
    let token = sign(Algorithm::HS256, None, &claims);
    let actor = set_actor_from_keycloak_token(&token, &Verify::Skip).expect("actor");
    assert_eq!(actor.actor_id, "user-123");
    set_actor_context(None);
}

#[test]
fn bearer_prefix_is_accepted() {
    let token = sign(Algorithm::RS256, None, &keycloak_claims());
    for raw in [format!("Bearer {token}"), format!("bearer {token}"), format!("  Bearer  {token} \r\n")] {
        let actor = set_actor_from_keycloak_token(&raw, &Verify::Skip).expect("skip");
        assert_eq!(actor.actor_id, "user-123");
        let claims = rsa_verifier().verify(&raw).expect("verified");
        assert_eq!(claims["sub"], "user-123");
    }
    set_actor_context(None);
}

#[test]
fn a_rejected_token_clears_the_current_actor() {
    set_actor_context(Some(ActorContext::new("previous-request-user")));
    let err = set_actor_from_keycloak_token("not.a.jwt", &Verify::Skip).expect_err("garbage");
    assert!(matches!(err, TokenError::Malformed(_)));
    assert_eq!(get_actor_context(), None);
}

#[test]
fn a_token_without_sub_is_missing_claim() {
    let mut claims = keycloak_claims();
    claims.as_object_mut().expect("object").remove("sub");
    let token = sign(Algorithm::RS256, None, &claims);
    assert_eq!(set_actor_from_keycloak_token(&token, &Verify::Skip), Err(TokenError::MissingClaim("sub".into())));
    let verify = Verify::from(rsa_verifier());
    assert_eq!(set_actor_from_keycloak_token(&token, &verify), Err(TokenError::MissingClaim("sub".into())));
}

// ---------------------------------------------------------------------------------------------
// Verification

#[test]
fn verifies_rs256_with_a_pem_key_and_sets_the_actor() {
    let token = sign(Algorithm::RS256, None, &keycloak_claims());
    let verify = Verify::from(rsa_verifier().issuer(ISSUER).audience("account"));
    let actor = set_actor_from_keycloak_token(&token, &verify).expect("verified");
    assert_eq!(actor.actor_id, "user-123");
    assert_eq!(actor.roles, ["admin", "user"]);
    assert_eq!(get_actor_context(), Some(actor));
    set_actor_context(None);
}

#[test]
fn verifies_es256_with_a_pem_key() {
    let token = sign(Algorithm::ES256, None, &keycloak_claims());
    let verifier = TokenVerifier::ec_pem(EC_PUBLIC).expect("ec public key");
    assert_eq!(verifier.verify(&token).expect("verified")["sub"], "user-123");
    // an RS256 token is not for this key
    let rs = sign(Algorithm::RS256, None, &keycloak_claims());
    assert!(matches!(verifier.verify(&rs), Err(TokenError::DisallowedAlgorithm(_))));
}

#[test]
fn verifies_hs256_with_a_secret() {
    let token = sign(Algorithm::HS256, None, &keycloak_claims());
    let verifier = TokenVerifier::hmac_secret(HMAC_SECRET).expect("secret");
    assert_eq!(verifier.verify(&token).expect("verified")["email"], "user@example.com");
    let other = TokenVerifier::hmac_secret("another-secret").expect("secret");
    assert_eq!(other.verify(&token), Err(TokenError::InvalidSignature));
}

#[test]
fn verifies_with_a_decoding_key_and_algorithm() {
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUBLIC).expect("key");
    let verifier = TokenVerifier::from_key(key.clone(), Algorithm::RS256).expect("verifier");
    let token = sign(Algorithm::RS256, None, &keycloak_claims());
    assert_eq!(verifier.verify(&token).expect("verified")["sub"], "user-123");
    assert!(matches!(TokenVerifier::from_key(key, Algorithm::HS256), Err(TokenError::InvalidKey(_))));
}

#[test]
fn verifies_through_a_jwks_by_kid() {
    let verifier = jwks_verifier().issuer(ISSUER);
    assert_eq!(verifier.key_ids(), ["test-rsa-1", "test-ec-1"], "the encryption key is skipped");
    let rs = sign(Algorithm::RS256, Some("test-rsa-1"), &keycloak_claims());
    assert_eq!(verifier.verify(&rs).expect("rs256")["sub"], "user-123");
    let es = sign(Algorithm::ES256, Some("test-ec-1"), &keycloak_claims());
    assert_eq!(verifier.verify(&es).expect("es256")["sub"], "user-123");
    let actor = set_actor_from_keycloak_token(&es, &Verify::from(verifier)).expect("actor");
    assert_eq!(actor.username.as_deref(), Some("johndoe"));
    set_actor_context(None);
}

#[test]
fn the_committed_jwks_matches_the_pem_key() {
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUBLIC).expect("key");
    let jwk = jsonwebtoken::jwk::Jwk::from_decoding_key(&key, Some(Algorithm::RS256)).expect("jwk");
    let jwk = serde_json::to_value(jwk).expect("json");
    let jwks: Value = serde_json::from_str(JWKS).expect("jwks");
    assert_eq!(jwks["keys"][0]["n"], jwk["n"]);
    assert_eq!(jwks["keys"][0]["e"], jwk["e"]);
    // and a JWKS built in code works as well
    let built =
        json!({"keys": [{"kid": "built", "use": "sig", "alg": "RS256", "kty": "RSA", "n": jwk["n"], "e": jwk["e"]}]});
    let verifier = TokenVerifier::from_jwks(&built).expect("verifier");
    let token = sign(Algorithm::RS256, Some("built"), &keycloak_claims());
    assert!(verifier.verify(&token).is_ok());
}

#[test]
fn unknown_kid_is_unknown_key() {
    let token = sign(Algorithm::RS256, Some("rotated-away"), &keycloak_claims());
    assert_eq!(jwks_verifier().verify(&token), Err(TokenError::UnknownKey("rotated-away".into())));
    let no_kid = sign(Algorithm::RS256, None, &keycloak_claims());
    assert!(matches!(jwks_verifier().verify(&no_kid), Err(TokenError::UnknownKey(_))));
    // a kid whose key has another algorithm
    let wrong = sign(Algorithm::RS256, Some("test-ec-1"), &keycloak_claims());
    assert!(matches!(jwks_verifier().verify(&wrong), Err(TokenError::DisallowedAlgorithm(_))));
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let mut claims = keycloak_claims();
    claims["exp"] = json!(now() - 3600);
    let token = sign(Algorithm::RS256, None, &claims);
    assert_eq!(rsa_verifier().verify(&token), Err(TokenError::Expired));
    let verify = Verify::from(rsa_verifier());
    assert_eq!(set_actor_from_keycloak_token(&token, &verify), Err(TokenError::Expired));

    // within the leeway
    let mut claims = keycloak_claims();
    claims["exp"] = json!(now() - 10);
    let token = sign(Algorithm::RS256, None, &claims);
    assert!(rsa_verifier().verify(&token).is_ok(), "10 s past exp is inside the 60 s default leeway");
    assert_eq!(rsa_verifier().leeway(std::time::Duration::ZERO).verify(&token), Err(TokenError::Expired));

    let mut claims = keycloak_claims();
    claims["nbf"] = json!(now() + 3600);
    let token = sign(Algorithm::RS256, None, &claims);
    assert_eq!(rsa_verifier().verify(&token), Err(TokenError::NotYetValid));

    let mut claims = keycloak_claims();
    claims.as_object_mut().expect("object").remove("exp");
    let token = sign(Algorithm::RS256, None, &claims);
    assert_eq!(rsa_verifier().verify(&token), Err(TokenError::MissingClaim("exp".into())));
}

#[test]
fn a_tampered_payload_has_an_invalid_signature() {
    let token = sign(Algorithm::RS256, Some("test-rsa-1"), &keycloak_claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("payload b64")).expect("payload json");
    claims["sub"] = json!("admin");
    claims["realm_access"]["roles"] = json!(["superuser"]);
    let forged = format!("{}.{}.{}", parts[0], b64(serde_json::to_vec(&claims).expect("json")), parts[2]);

    for verifier in [rsa_verifier(), jwks_verifier()] {
        let err = verifier.verify(&forged).expect_err("tampered");
        assert_eq!(err, TokenError::InvalidSignature);
        assert_no_token_text(&err, &forged);
    }
    let es = sign(Algorithm::ES256, None, &keycloak_claims());
    let es_parts: Vec<&str> = es.split('.').collect();
    let forged_es = format!("{}.{}.{}", es_parts[0], b64(serde_json::to_vec(&claims).expect("json")), es_parts[2]);
    let ec = TokenVerifier::ec_pem(EC_PUBLIC).expect("ec");
    assert_eq!(ec.verify(&forged_es), Err(TokenError::InvalidSignature));
    // a stripped signature
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(rsa_verifier().verify(&stripped), Err(TokenError::InvalidSignature));
    assert_eq!(set_actor_from_keycloak_token(&stripped, &Verify::Skip), Err(TokenError::UnsignedToken));
}

#[test]
fn alg_none_tokens_are_refused_even_with_skip() {
    let payload = b64(serde_json::to_vec(&keycloak_claims()).expect("json"));
    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None","typ":"JWT"}"#, r#"{"alg":"NONE"}"#] {
        let header = b64(header);
        for token in [format!("{header}.{payload}."), format!("{header}.{payload}.c2lnbmF0dXJl")] {
            assert_eq!(rsa_verifier().verify(&token), Err(TokenError::UnsignedToken));
            assert_eq!(jwks_verifier().verify(&token), Err(TokenError::UnsignedToken));
            assert_eq!(set_actor_from_keycloak_token(&token, &Verify::Skip), Err(TokenError::UnsignedToken));
            assert_eq!(observer::actor::decode_unverified(&token), Err(TokenError::UnsignedToken));
        }
    }
    assert_eq!(get_actor_context(), None);
}

#[test]
fn disallowed_algorithms_are_refused() {
    // The classic confusion attack: HS256 "signed" with the RSA public key as the HMAC secret.
    let forged = encode(&Header::new(Algorithm::HS256), &keycloak_claims(), &EncodingKey::from_secret(RSA_PUBLIC))
        .expect("sign");
    assert_eq!(rsa_verifier().verify(&forged), Err(TokenError::DisallowedAlgorithm("HS256".into())));
    assert!(matches!(jwks_verifier().verify(&forged), Err(TokenError::DisallowedAlgorithm(_))));

    // Algorithms outside the allow-list, and unknown ones.
    let token = sign(Algorithm::RS256, None, &keycloak_claims());
    let strict = rsa_verifier().algorithms([Algorithm::PS256]);
    assert_eq!(strict.verify(&token), Err(TokenError::DisallowedAlgorithm("RS256".into())));
    let parts: Vec<&str> = token.split('.').collect();
    let odd = format!("{}.{}.{}", b64(r#"{"alg":"XS999"}"#), parts[1], parts[2]);
    assert_eq!(rsa_verifier().verify(&odd), Err(TokenError::DisallowedAlgorithm("XS999".into())));
}

#[test]
fn issuer_is_checked_when_configured() {
    let token = sign(Algorithm::RS256, None, &keycloak_claims());
    assert!(rsa_verifier().issuer(ISSUER).verify(&token).is_ok());
    assert!(rsa_verifier().issuer("https://other").issuer(ISSUER).verify(&token).is_ok(), "any of several");
    assert_eq!(
        rsa_verifier().issuer("https://evil.example.com/realms/acme").verify(&token),
        Err(TokenError::InvalidIssuer)
    );
    assert_eq!(rsa_verifier().issuer(format!("{ISSUER}/")).verify(&token), Err(TokenError::InvalidIssuer));

    let mut claims = keycloak_claims();
    claims.as_object_mut().expect("object").remove("iss");
    let no_iss = sign(Algorithm::RS256, None, &claims);
    assert_eq!(rsa_verifier().issuer(ISSUER).verify(&no_iss), Err(TokenError::InvalidIssuer));
    assert!(rsa_verifier().verify(&no_iss).is_ok(), "no issuer configured, none checked");
}

#[test]
fn audience_is_checked_when_configured() {
    let token = sign(Algorithm::RS256, None, &keycloak_claims()); // aud: "account"
    assert!(rsa_verifier().audience("account").verify(&token).is_ok());
    assert_eq!(rsa_verifier().audience("my-api").verify(&token), Err(TokenError::InvalidAudience));

    let mut claims = keycloak_claims();
    claims["aud"] = json!(["realm-management", "my-api", "account"]);
    let array = sign(Algorithm::RS256, None, &claims);
    assert!(rsa_verifier().audience("my-api").verify(&array).is_ok(), "aud array containing it");
    assert!(rsa_verifier().audience("nope").audience("account").verify(&array).is_ok());
    assert_eq!(rsa_verifier().audience("billing").verify(&array), Err(TokenError::InvalidAudience));

    let mut claims = keycloak_claims();
    claims.as_object_mut().expect("object").remove("aud");
    let no_aud = sign(Algorithm::RS256, None, &claims);
    assert_eq!(rsa_verifier().audience("my-api").verify(&no_aud), Err(TokenError::InvalidAudience));
}

#[test]
fn tokens_with_aud_are_accepted_when_no_audience_is_configured() {
    let mut claims = keycloak_claims();
    for aud in [json!("account"), json!(["account", "my-api"])] {
        claims["aud"] = aud;
        let token = sign(Algorithm::RS256, None, &claims);
        assert!(rsa_verifier().verify(&token).is_ok());
        assert!(jwks_verifier().verify(&sign(Algorithm::RS256, Some("test-rsa-1"), &claims)).is_ok());
    }
}

#[test]
fn garbage_is_malformed_and_never_panics() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = Vec::new();
    for len in [1usize, 7, 64, 300] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        random.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut inputs: Vec<String> = ["", " ", "Bearer ", "a.b", "not.a.jwt", "a.b.c.d", "...", "ey.ey.ey", "é.é.é"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    inputs.extend(random);
    inputs.push("x".repeat(200_000));

    let hmac = TokenVerifier::hmac_secret(HMAC_SECRET).expect("hmac");
    for raw in &inputs {
        for result in [
            set_actor_from_keycloak_token(raw, &Verify::Skip),
            rsa_verifier().verify(raw).and_then(|c| ActorContext::from_keycloak_token(&c, None)),
            jwks_verifier().verify(raw).and_then(|c| ActorContext::from_keycloak_token(&c, None)),
            hmac.verify(raw).and_then(|c| ActorContext::from_keycloak_token(&c, None)),
        ] {
            match result {
                Err(TokenError::Malformed(msg)) => assert!(!msg.is_empty()),
                other => panic!("{:?}: {other:?}", raw.chars().take(40).collect::<String>()),
            }
        }
    }

    // Broken variations of a real token.
    let valid = sign(Algorithm::RS256, None, &keycloak_claims());
    let parts: Vec<&str> = valid.split('.').collect();
    let broken = [
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[1], parts[2]), // JWE-shaped
        format!("{}.{}.{}", parts[0], b64("[1,2,3]"), parts[2]),                     // payload not an object
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64(r#"{"alg":"RS256","kid":7}"#), parts[1], parts[2]),
        format!("{}.{}.!!!", parts[0], parts[1]), // signature not base64url
        format!("{}.%%%.{}", parts[0], parts[2]),
    ];
    for raw in &broken {
        let skip = set_actor_from_keycloak_token(raw, &Verify::Skip);
        let rsa = rsa_verifier().verify(raw);
        if raw.contains(&b64("[1,2,3]")) {
            assert!(matches!(skip, Err(TokenError::Malformed(_))), "{skip:?}");
            assert_eq!(rsa, Err(TokenError::InvalidSignature), "the signature is checked before the payload");
        } else if raw.ends_with(".!!!") {
            assert!(skip.is_ok(), "Skip does not look at the signature: {skip:?}");
            assert!(matches!(rsa, Err(TokenError::Malformed(_))), "{rsa:?}");
        } else {
            assert!(matches!(skip, Err(TokenError::Malformed(_))), "{skip:?}");
            assert!(matches!(rsa, Err(TokenError::Malformed(_))), "{rsa:?}");
        }
        assert!(jwks_verifier().verify(raw).is_err());
        assert!(hmac.verify(raw).is_err());
    }
    set_actor_context(None);
}

#[test]
fn errors_never_contain_the_token() {
    let mut claims = keycloak_claims();
    claims["exp"] = json!(now() - 3600);
    let expired = sign(Algorithm::RS256, Some("k"), &claims);
    let unknown = sign(Algorithm::RS256, Some("unknown-kid"), &keycloak_claims());
    for (verifier, token) in
        [(rsa_verifier(), &expired), (jwks_verifier(), &unknown), (rsa_verifier().issuer("x"), &unknown)]
    {
        let err = verifier.verify(token).expect_err("refused");
        assert_no_token_text(&err, token);
    }
}

#[test]
fn debug_of_a_verifier_shows_no_secret_or_key_material() {
    let verifier = TokenVerifier::hmac_secret(HMAC_SECRET).expect("secret").issuer(ISSUER);
    let text = format!("{verifier:?} {:?}", Verify::from(verifier.clone()));
    assert!(!text.contains(HMAC_SECRET), "{text}");
    assert!(!text.contains(&b64(HMAC_SECRET)), "{text}");
    assert!(text.contains(ISSUER), "{text}");

    let jwks: Value = serde_json::from_str(JWKS).expect("jwks");
    let text = format!("{:?}", jwks_verifier());
    let n = jwks["keys"][0]["n"].as_str().expect("n");
    assert!(!text.contains(&n[..20]), "{text}");
    assert!(text.contains("test-rsa-1"), "{text}");
}

#[test]
fn verifier_is_clone_send_sync_debug() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<TokenVerifier>();
    assert_traits::<Verify>();
    assert_traits::<ClaimMappings>();

    let verifier = std::sync::Arc::new(jwks_verifier());
    let token = sign(Algorithm::ES256, Some("test-ec-1"), &keycloak_claims());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (v, t) = (verifier.clone(), token.clone());
            std::thread::spawn(move || v.verify(&t).map(|c| c["sub"].clone()))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), Ok(json!("user-123")));
    }
}

#[test]
fn unusable_keys_are_invalid_key() {
    for result in [
        TokenVerifier::rsa_pem(RSA_PRIVATE),
        TokenVerifier::rsa_pem(EC_PUBLIC),
        TokenVerifier::rsa_pem(b"garbage"),
        TokenVerifier::ec_pem(RSA_PUBLIC),
        TokenVerifier::ec_pem(EC_PRIVATE),
        TokenVerifier::hmac_secret(""),
        TokenVerifier::from_jwks(&json!({"keys": []})),
        TokenVerifier::from_jwks(&json!("not a jwks")),
    ] {
        let err = result.expect_err("unusable key");
        assert!(matches!(err, TokenError::InvalidKey(_)), "{err:?}");
    }
}

#[test]
fn init_config_mappings_are_used_for_raw_tokens() {
    // An invalid mapping is refused when the mappings are built, before any config holds them.
    let err = ClaimMappings::from_pairs([("role", "realm_access.roles")]).expect_err("unknown field");
    assert_eq!(err.field, "keycloak_claim_mappings.role");

    // The process-wide init of this test binary maps one field no other test looks at through `None`/raw tokens.
    static GUARD: std::sync::OnceLock<observer::ObserverGuard> = std::sync::OnceLock::new();
    GUARD.get_or_init(|| {
        observer::init(observer::ObserverConfig {
            service_name: "keycloak-tests".into(),
            audit_sink: observer::AuditSink::Memory(observer::export::MemorySink::new()),
            keycloak_claim_mappings: ClaimMappings::from_pairs([("ip_address", "clientAddress")]).expect("mappings"),
            ..Default::default()
        })
        .expect("init")
    });
    let mut claims = keycloak_claims();
    claims["clientAddress"] = json!("10.0.0.7");
    let token = sign(Algorithm::RS256, None, &claims);
    let actor = set_actor_from_keycloak_token(&token, &Verify::Skip).expect("actor");
    assert_eq!(actor.ip_address.as_deref(), Some("10.0.0.7"), "configured mapping applied");
    assert_eq!(actor.roles, ["admin", "user"], "other fields keep the defaults");
    let explicit = ActorContext::from_keycloak_token(&claims, Some(&ClaimMappings::default())).expect("actor");
    assert_eq!(explicit.ip_address, None);
    set_actor_context(None);
}
