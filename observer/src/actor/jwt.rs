//! Raw JWT handling: [`decode_unverified`] and [`TokenVerifier`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{AlgorithmFamily, Validation};
use serde_json::{Map, Value};

use crate::error::TokenError;

/// Re-exported from `jsonwebtoken` for [`TokenVerifier::from_key`] and [`TokenVerifier::algorithms`].
pub use jsonwebtoken::{Algorithm, DecodingKey};

/// Largest accepted leeway; larger values are clamped to it (a day of clock skew is a broken clock).
const MAX_LEEWAY_SECS: u64 = 86_400;

/// Tokens longer than this are refused as malformed before any decoding (HTTP servers cap headers far lower).
const MAX_TOKEN_LEN: usize = 128 * 1024;

/// Longest piece of a header value (`alg`, `kid`) echoed in an error.
const MAX_ECHO_LEN: usize = 64;

/// base64url without padding, tolerating padding when decoding.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ---------------------------------------------------------------------------------------------
// Splitting and unverified decoding.

/// The three base64url segments of a compact JWS.
struct Segments<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// The header fields this module looks at.
struct HeaderInfo {
    alg: String,
    kid: Option<String>,
}

/// Removes surrounding whitespace and a leading `Bearer ` (any case) from an `Authorization` header value.
fn strip_bearer(raw: &str) -> &str {
    let t = raw.trim();
    match (t.get(..6), t.get(6..)) {
        (Some(prefix), Some(rest))
            if prefix.eq_ignore_ascii_case("bearer") && rest.starts_with(char::is_whitespace) =>
        {
            rest.trim_start()
        }
        _ => t,
    }
}

fn split(token: &str) -> Result<Segments<'_>, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Malformed("empty token".into()));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed(format!("token longer than {MAX_TOKEN_LEN} bytes")));
    }
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(header), Some(payload), Some(signature), None) => {
            if header.is_empty() || payload.is_empty() {
                return Err(TokenError::Malformed("empty header or payload segment".into()));
            }
            Ok(Segments { header, payload, signature })
        }
        _ => Err(TokenError::Malformed(
            "expected three dot-separated segments (encrypted JWE tokens are not supported)".into(),
        )),
    }
}

fn decode_object(segment: &str, what: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = B64URL.decode(segment).map_err(|_| TokenError::Malformed(format!("{what} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(TokenError::Malformed(format!("{what} is not a JSON object"))),
        Err(_) => Err(TokenError::Malformed(format!("{what} is not JSON"))),
    }
}

/// Reads `alg` and `kid`; refuses `alg: none` (any case, surrounding whitespace ignored).
fn header_info(header: &Map<String, Value>) -> Result<HeaderInfo, TokenError> {
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(TokenError::Malformed("header has no `alg` string".into())),
    };
    if alg.trim().eq_ignore_ascii_case("none") {
        return Err(TokenError::UnsignedToken);
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenError::Malformed("header `kid` is not a string".into())),
    };
    Ok(HeaderInfo { alg: alg.clone(), kid })
}

/// A header value safe to put in an error: at most [`MAX_ECHO_LEN`] characters, control characters replaced.
fn echo(value: &str) -> String {
    value.chars().take(MAX_ECHO_LEN).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Decodes a JWT's claims **without verifying anything**: not the signature, not `exp`, not the issuer.
///
/// Use it only where something upstream (an API gateway, a service mesh) has already verified the token, or to
/// look at a token before choosing how to verify it. `raw` may carry a leading `Bearer ` and surrounding
/// whitespace.
///
/// Even so, two kinds of token are refused with [`TokenError::UnsignedToken`], because no verifying gateway
/// would ever have let them through — they are forged or stripped tokens:
/// - a header with `alg: none` (compared case-insensitively), and
/// - an empty signature segment (`header.payload.`).
///
/// # Errors
/// [`TokenError::Malformed`] unless `raw` is three dot-separated base64url segments whose header and payload are
/// JSON objects with an `alg` in the header; [`TokenError::UnsignedToken`] as above.
///
/// # Examples
/// ```
/// use observer::actor::decode_unverified;
///
/// // {"alg":"RS256","typ":"JWT"} . {"sub":"user-123"} . (a signature nobody checks here)
/// let token = "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2ln";
/// let claims = decode_unverified(token)?;
/// assert_eq!(claims["sub"], "user-123");
/// # Ok::<(), observer::TokenError>(())
/// ```
pub fn decode_unverified(raw: &str) -> Result<Value, TokenError> {
    let segments = split(strip_bearer(raw))?;
    header_info(&decode_object(segments.header, "header")?)?;
    if segments.signature.is_empty() {
        return Err(TokenError::UnsignedToken);
    }
    Ok(Value::Object(decode_object(segments.payload, "payload")?))
}

// ---------------------------------------------------------------------------------------------
// Verification.

/// One verification key with what it may be used for.
#[derive(Clone)]
struct VerifierKey {
    kid: Option<String>,
    key: DecodingKey,
    family: AlgorithmFamily,
    /// The only algorithm this key accepts, when known (the JWK's `alg`, or the curve of an EC key).
    alg: Option<Algorithm>,
}

#[derive(Clone)]
enum Keys {
    /// A key given directly: used whatever the token's `kid`.
    Single(VerifierKey),
    /// Keys from a JWKS document, selected by the token's `kid`.
    Set(Vec<VerifierKey>),
}

/// Verifies a JWT's signature and standard claims, and returns its claims.
///
/// Build it from a key — [`rsa_pem`](Self::rsa_pem), [`ec_pem`](Self::ec_pem),
/// [`hmac_secret`](Self::hmac_secret), [`from_key`](Self::from_key) — or from a JWKS document
/// ([`from_jwks`](Self::from_jwks), keys chosen by the token header's `kid`), then narrow it with
/// [`issuer`](Self::issuer), [`audience`](Self::audience), [`leeway`](Self::leeway) and
/// [`algorithms`](Self::algorithms).
///
/// [`verify`](Self::verify) checks, in this order: the header (`alg: none` →
/// [`UnsignedToken`](TokenError::UnsignedToken), an algorithm outside the allow-list or unsuited to the key →
/// [`DisallowedAlgorithm`](TokenError::DisallowedAlgorithm), no key for the `kid` →
/// [`UnknownKey`](TokenError::UnknownKey)), the signature ([`InvalidSignature`](TokenError::InvalidSignature)),
/// then the claims: `exp` is required ([`Expired`](TokenError::Expired)), `nbf` is honoured when present
/// ([`NotYetValid`](TokenError::NotYetValid)), both with the leeway; `iss` must be one of the configured issuers
/// ([`InvalidIssuer`](TokenError::InvalidIssuer), also when absent) and `aud` — a string or an array — must
/// contain one of the configured audiences ([`InvalidAudience`](TokenError::InvalidAudience), also when absent).
/// With no issuer or audience configured, `iss` and `aud` are not checked, so a Keycloak token carrying an `aud`
/// is accepted.
///
/// `Clone`, `Send` and `Sync`: build one at start-up and share it. Its `Debug` output shows the settings and key
/// ids, never key material or HMAC secrets.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Keys,
    algorithms: Vec<Algorithm>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: u64,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct KeysSummary<'a>(&'a Keys);
        impl fmt::Debug for KeysSummary<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Keys::Single(k) => f.debug_struct("Single").field("family", &k.family).finish_non_exhaustive(),
                    Keys::Set(keys) => f
                        .debug_struct("Jwks")
                        .field("kids", &keys.iter().map(|k| k.kid.as_deref().unwrap_or("")).collect::<Vec<_>>())
                        .finish_non_exhaustive(),
                }
            }
        }
        f.debug_struct("TokenVerifier")
            .field("keys", &KeysSummary(&self.keys))
            .field("algorithms", &self.algorithms)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .finish()
    }
}

fn invalid_key(what: &str) -> TokenError {
    TokenError::InvalidKey(what.to_owned())
}

/// Checks that `key` is usable and returns the algorithm its curve implies (EC keys only).
fn key_curve_alg(key: &DecodingKey) -> Result<Option<Algorithm>, TokenError> {
    let jwk = Jwk::from_decoding_key(key, None).map_err(|_| invalid_key("unusable key material"))?;
    Ok(match jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => return Err(invalid_key("unsupported elliptic curve")),
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    })
}

/// Turns one JWKS entry into a signature key; `None` for encryption keys and anything unusable.
fn jwk_to_key(value: &Value) -> Option<VerifierKey> {
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return None;
        }
    }
    // An `alg` that is not a JWS algorithm (e.g. RSA-OAEP) marks an encryption key.
    let declared = match jwk.common.key_algorithm {
        Some(ka) => Some(Algorithm::from_str(&ka.to_string()).ok()?),
        None => None,
    };
    let (family, implied) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => (AlgorithmFamily::Ec, Some(Algorithm::ES256)),
            EllipticCurve::P384 => (AlgorithmFamily::Ec, Some(Algorithm::ES384)),
            _ => return None,
        },
        AlgorithmParameters::OctetKey(_) => (AlgorithmFamily::Hmac, None),
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (AlgorithmFamily::Ed, Some(Algorithm::EdDSA))
        }
        _ => return None,
    };
    if declared.is_some_and(|a| a.family() != family || implied.is_some_and(|i| i != a)) {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    if family == AlgorithmFamily::Ec {
        // from_jwk does not check the coordinates; this does (length and form of the point).
        key_curve_alg(&key).ok()?;
    }
    Some(VerifierKey { kid: jwk.common.key_id, key, family, alg: declared.or(implied) })
}

fn map_jwt_error(err: &jsonwebtoken::errors::Error, alg: Algorithm) -> TokenError {
    match err.kind() {
        ErrorKind::InvalidSignature => TokenError::InvalidSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::InvalidIssuer,
        ErrorKind::InvalidAudience => TokenError::InvalidAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::InvalidIssuer,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::InvalidAudience,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
        ErrorKind::InvalidClaimFormat(c) => TokenError::Malformed(format!("claim `{c}` has an invalid format")),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenError::DisallowedAlgorithm(format!("{alg:?}")),
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => invalid_key("the key cannot verify this token"),
        ErrorKind::Base64(_) => TokenError::Malformed("a segment is not base64url".into()),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => TokenError::Malformed("a segment is not a JSON object".into()),
        _ => TokenError::Malformed("token rejected".into()),
    }
}

impl TokenVerifier {
    /// Default clock-skew allowance for `exp` and `nbf`: 60 seconds.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

    fn single(key: DecodingKey, family: AlgorithmFamily, alg: Option<Algorithm>, default_alg: Algorithm) -> Self {
        Self {
            keys: Keys::Single(VerifierKey { kid: None, key, family, alg }),
            algorithms: vec![default_alg],
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Self::DEFAULT_LEEWAY.as_secs(),
        }
    }

    /// A verifier for RSA signatures from a PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    /// Allows RS256 unless [`algorithms`](Self::algorithms) says otherwise.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the PEM is not an RSA public key.
    pub fn rsa_pem(pem: impl AsRef<[u8]>) -> Result<Self, TokenError> {
        let key = DecodingKey::from_rsa_pem(pem.as_ref()).map_err(|_| invalid_key("not an RSA public key PEM"))?;
        key_curve_alg(&key).map_err(|_| invalid_key("not an RSA public key PEM"))?;
        Ok(Self::single(key, AlgorithmFamily::Rsa, None, Algorithm::RS256))
    }

    /// A verifier for ECDSA signatures from a PEM public key (`BEGIN PUBLIC KEY`). A P-256 key allows ES256, a
    /// P-384 key ES384.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the PEM is not a P-256 or P-384 public key.
    pub fn ec_pem(pem: impl AsRef<[u8]>) -> Result<Self, TokenError> {
        let key = DecodingKey::from_ec_pem(pem.as_ref()).map_err(|_| invalid_key("not an EC public key PEM"))?;
        let alg = key_curve_alg(&key)?.ok_or_else(|| invalid_key("not an EC public key PEM"))?;
        Ok(Self::single(key, AlgorithmFamily::Ec, Some(alg), alg))
    }

    /// A verifier for HMAC signatures with a shared secret. Allows HS256 unless [`algorithms`](Self::algorithms)
    /// says otherwise. The secret never appears in `Debug` output or errors.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the secret is empty.
    pub fn hmac_secret(secret: impl AsRef<[u8]>) -> Result<Self, TokenError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(invalid_key("empty HMAC secret"));
        }
        Ok(Self::single(DecodingKey::from_secret(secret), AlgorithmFamily::Hmac, None, Algorithm::HS256))
    }

    /// A verifier for any [`DecodingKey`] (e.g. from DER, RSA components or a single JWK) and the algorithm the
    /// tokens are signed with; that algorithm is the allow-list.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if the key is unusable or of another family than `algorithm` (an RSA key with
    /// HS256, say), or if an EC key's curve does not match `algorithm`.
    pub fn from_key(key: DecodingKey, algorithm: Algorithm) -> Result<Self, TokenError> {
        let family = key.family();
        if family != algorithm.family() {
            return Err(invalid_key("the key does not fit the algorithm"));
        }
        let implied = key_curve_alg(&key)?;
        if implied.is_some_and(|a| a != algorithm) {
            return Err(invalid_key("the key does not fit the algorithm"));
        }
        Ok(Self::single(key, family, implied, algorithm))
    }

    /// A verifier for the keys of a JWKS document (`{"keys": [...]}`, or a single JWK object), as Keycloak serves
    /// at `{issuer}/protocol/openid-connect/certs`. Tokens pick their key by the header's `kid`; a token without a
    /// `kid` is accepted only when the set holds exactly one key. Encryption keys (`use: enc`, or an `alg` such
    /// as `RSA-OAEP`) and entries that cannot be parsed are skipped. Allows RS256 and ES256 unless
    /// [`algorithms`](Self::algorithms) says otherwise; a key whose JWK names an `alg` accepts only that one.
    ///
    /// # Errors
    /// [`TokenError::InvalidKey`] if `jwks` is not a JWKS document or holds no usable signature key.
    pub fn from_jwks(jwks: &Value) -> Result<Self, TokenError> {
        let entries: Vec<&Value> = match jwks {
            Value::Object(map) if map.contains_key("keys") => match map.get("keys") {
                Some(Value::Array(keys)) => keys.iter().collect(),
                _ => return Err(invalid_key("JWKS `keys` is not an array")),
            },
            Value::Object(map) if map.contains_key("kty") => vec![jwks],
            _ => return Err(invalid_key("not a JWKS document (expected an object with `keys`)")),
        };
        let keys: Vec<VerifierKey> = entries.into_iter().filter_map(jwk_to_key).collect();
        if keys.is_empty() {
            return Err(invalid_key("the JWKS holds no usable signature key"));
        }
        Ok(Self {
            keys: Keys::Set(keys),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Self::DEFAULT_LEEWAY.as_secs(),
        })
    }

    /// Requires `iss` to equal `issuer` exactly (for Keycloak `https://host/realms/{realm}`, no trailing
    /// slash). Call it again to accept several issuers.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Requires `aud` (a string or an array) to contain `audience`. Call it again to accept several audiences.
    /// Keycloak puts a client in `aud` only through an audience mapper; without one its access tokens carry
    /// `aud: "account"` or none.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock-skew allowance for `exp` and `nbf`, in whole seconds (a fraction is dropped; default
    /// [`DEFAULT_LEEWAY`](Self::DEFAULT_LEEWAY), at most a day).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs().min(MAX_LEEWAY_SECS);
        self
    }

    /// Replaces the algorithm allow-list. A token is accepted only if its `alg` is in the list *and* suits the
    /// selected key (an RSA key never verifies an HS256 token).
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The `kid`s of the keys this verifier holds (empty for a key given directly), e.g. for a JWKS cache that
    /// refreshes on an unknown `kid`.
    pub fn key_ids(&self) -> Vec<&str> {
        match &self.keys {
            Keys::Single(_) => Vec::new(),
            Keys::Set(keys) => keys.iter().filter_map(|k| k.kid.as_deref()).collect(),
        }
    }

    fn select_key(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifierKey, TokenError> {
        match &self.keys {
            Keys::Single(key) => Ok(key),
            Keys::Set(keys) => match kid {
                Some(kid) => {
                    let mut matching = keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                    let first = matching.clone().next();
                    matching
                        .find(|k| k.family == alg.family())
                        .or(first)
                        .ok_or_else(|| TokenError::UnknownKey(echo(kid)))
                }
                None if keys.len() == 1 => Ok(&keys[0]),
                None => Err(TokenError::UnknownKey("(token has no kid)".into())),
            },
        }
    }

    /// Verifies `raw` (a leading `Bearer ` is accepted) and returns its claims, always a JSON object. See the
    /// [type docs](Self) for the checks and their errors.
    ///
    /// # Errors
    /// One [`TokenError`] per kind of failure; [`TokenError::Malformed`] for anything that is not a JWS in
    /// compact form with JSON-object header and payload.
    pub fn verify(&self, raw: &str) -> Result<Value, TokenError> {
        let token = strip_bearer(raw);
        let segments = split(token)?;
        let header = decode_object(segments.header, "header")?;
        let info = header_info(&header)?;
        let is_b64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !is_b64url(segments.payload) || !is_b64url(segments.signature) {
            return Err(TokenError::Malformed("a segment is not base64url".into()));
        }
        if matches!(header.get("crit"), Some(v) if !v.is_null()) {
            return Err(TokenError::Malformed("unsupported critical header parameters".into()));
        }
        let alg = Algorithm::from_str(&info.alg).map_err(|_| TokenError::DisallowedAlgorithm(echo(&info.alg)))?;
        if !self.algorithms.contains(&alg) {
            return Err(TokenError::DisallowedAlgorithm(format!("{alg:?}")));
        }
        let key = self.select_key(info.kid.as_deref(), alg)?;
        if key.family != alg.family() || key.alg.is_some_and(|a| a != alg) {
            return Err(TokenError::DisallowedAlgorithm(format!("{alg:?}")));
        }

        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if self.issuers.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&self.issuers);
            required.push("iss");
        }
        if self.audiences.is_empty() {
            // jsonwebtoken would reject every token that has an `aud` (all Keycloak tokens) without this.
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);

        let data = jsonwebtoken::decode::<Value>(token, &key.key, &validation).map_err(|e| map_jwt_error(&e, alg))?;
        match data.claims {
            claims @ Value::Object(_) => Ok(claims),
            _ => Err(TokenError::Malformed("payload is not a JSON object".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        B64URL.encode(s)
    }

    #[test]
    fn strips_bearer_prefix_of_any_case() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("  bearer   abc  "), "abc");
        assert_eq!(strip_bearer("BEARER\tabc"), "abc");
        assert_eq!(strip_bearer("Bearerabc"), "Bearerabc");
        assert_eq!(strip_bearer("abc"), "abc");
        // multi-byte characters around the prefix boundary must not panic
        assert_eq!(strip_bearer("bearé x"), "bearé x");
        assert_eq!(strip_bearer("ééééé"), "ééééé");
    }

    #[test]
    fn unverified_decoding_refuses_none_in_any_case_and_empty_signatures() {
        for alg in ["none", "None", "NONE", " nOnE "] {
            let token = format!("{}.{}.sig", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64(r#"{"sub":"x"}"#));
            assert_eq!(decode_unverified(&token), Err(TokenError::UnsignedToken), "{alg}");
        }
        let token = format!("{}.{}.", b64(r#"{"alg":"RS256"}"#), b64(r#"{"sub":"x"}"#));
        assert_eq!(decode_unverified(&token), Err(TokenError::UnsignedToken));
    }

    #[test]
    fn unverified_decoding_accepts_padding_and_checks_shapes() {
        let header = base64::engine::general_purpose::URL_SAFE.encode(r#"{"alg":"RS256" }"#);
        assert!(header.ends_with("=="));
        let padded = format!("{header}.{}.sig", b64(r#"{"sub":"x"}"#));
        assert_eq!(decode_unverified(&padded).map(|c| c["sub"].clone()), Ok(Value::from("x")));
        for (header, payload) in [
            (r#"{"alg":"RS256"}"#, "[1,2]"),
            (r#"{"alg":"RS256"}"#, "null"),
            ("[]", r#"{"sub":"x"}"#),
            (r#"{"typ":"JWT"}"#, r#"{"sub":"x"}"#),
            (r#"{"alg":5}"#, r#"{"sub":"x"}"#),
            (r#"{"alg":"RS256"}"#, "not json"),
        ] {
            let token = format!("{}.{}.sig", b64(header), b64(payload));
            assert!(matches!(decode_unverified(&token), Err(TokenError::Malformed(_))), "{header} {payload}");
        }
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for raw in ["", " ", "Bearer ", "a", "a.b", "a.b.c", "a.b.c.d.e", "..", "not.a.jwt", "é.é.é", "\0.\0.\0", &long]
        {
            assert!(matches!(decode_unverified(raw), Err(TokenError::Malformed(_))), "{raw:?}");
        }
    }

    #[test]
    fn echo_truncates_and_cleans() {
        assert_eq!(echo(&"k".repeat(100)).len(), MAX_ECHO_LEN);
        assert_eq!(echo("a\nb"), "a?b");
    }

    #[test]
    fn debug_hides_secrets() {
        let v = TokenVerifier::hmac_secret("super-secret-value").map(|v| format!("{v:?}"));
        let Ok(text) = v else { panic!("hmac verifier") };
        assert!(!text.contains("super-secret-value"));
        assert!(text.contains("Hmac"));
        assert!(TokenVerifier::hmac_secret("").is_err());
    }

    #[test]
    fn jwks_skips_encryption_and_unusable_keys() {
        let jwks = serde_json::json!({"keys": [
            {"kid": "enc", "kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kid": "oaep", "kty": "RSA", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kid": "weird", "kty": "XYZ"},
            {"kid": "bad-ec", "kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB"},
            "not an object",
        ]});
        assert!(matches!(TokenVerifier::from_jwks(&jwks), Err(TokenError::InvalidKey(_))));
        assert!(matches!(TokenVerifier::from_jwks(&serde_json::json!([1])), Err(TokenError::InvalidKey(_))));
        assert!(matches!(TokenVerifier::from_jwks(&serde_json::json!({"keys": 1})), Err(TokenError::InvalidKey(_))));
        let ok = serde_json::json!({"keys": [{"kid": "h", "kty": "oct", "k": "c2VjcmV0"}]});
        assert_eq!(TokenVerifier::from_jwks(&ok).map(|v| v.key_ids().join(",")), Ok("h".to_owned()));
    }

    #[test]
    fn leeway_is_clamped() {
        let Ok(v) = TokenVerifier::hmac_secret("s") else { panic!("hmac verifier") };
        assert_eq!(v.leeway(Duration::MAX).leeway, MAX_LEEWAY_SECS);
    }
}
