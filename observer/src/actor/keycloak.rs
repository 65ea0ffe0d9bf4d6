//! Keycloak JWT claims → [`ActorContext`]: [`ClaimMappings`], [`ActorContext::from_keycloak_token`] and
//! [`set_actor_from_keycloak_token`].

use std::fmt;

use serde_json::{Map, Value};

use crate::actor::context::{set_actor_context, ActorContext};
use crate::actor::jwt::{decode_unverified, TokenVerifier};
use crate::error::{ConfigurationError, TokenError};

// ---------------------------------------------------------------------------------------------
// Fields and paths.

/// The [`ActorContext`] fields a claim can be mapped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ActorId,
    ActorType,
    Email,
    Name,
    Username,
    Roles,
    Groups,
    SessionId,
    IpAddress,
    UserAgent,
    TenantId,
    OrganizationId,
}

const FIELD_COUNT: usize = 12;

const ALL_FIELDS: [Field; FIELD_COUNT] = [
    Field::ActorId,
    Field::ActorType,
    Field::Email,
    Field::Name,
    Field::Username,
    Field::Roles,
    Field::Groups,
    Field::SessionId,
    Field::IpAddress,
    Field::UserAgent,
    Field::TenantId,
    Field::OrganizationId,
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::ActorId => "actor_id",
            Field::ActorType => "actor_type",
            Field::Email => "email",
            Field::Name => "name",
            Field::Username => "username",
            Field::Roles => "roles",
            Field::Groups => "groups",
            Field::SessionId => "session_id",
            Field::IpAddress => "ip_address",
            Field::UserAgent => "user_agent",
            Field::TenantId => "tenant_id",
            Field::OrganizationId => "organization_id",
        }
    }

    fn from_name(name: &str) -> Option<Field> {
        ALL_FIELDS.into_iter().find(|f| f.name() == name)
    }

    /// Keycloak's default claim path(s) for this field.
    fn default_paths(self) -> &'static [&'static str] {
        match self {
            Field::ActorId => &["sub"],
            Field::Email => &["email"],
            Field::Name => &["name"],
            Field::Username => &["preferred_username"],
            Field::Roles => &["realm_access.roles"],
            Field::Groups => &["groups"],
            Field::SessionId => &["session_state", "sid"],
            Field::TenantId => &["tenant_id"],
            Field::OrganizationId => &["organization_id"],
            Field::ActorType | Field::IpAddress | Field::UserAgent => &[],
        }
    }
}

/// A dotted claim path, kept as text with the byte ranges of its segments.
#[derive(Clone, PartialEq, Eq)]
struct ClaimPath {
    text: String,
    segments: Vec<(usize, usize)>,
}

impl ClaimPath {
    /// Parses one path; `None` if it is empty or has an empty segment (`a..b`, `.a`, `a.`).
    fn parse(text: &str) -> Option<ClaimPath> {
        let text = text.trim();
        let mut segments = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c == '.' {
                segments.push((start, i));
                start = i + 1;
            }
        }
        segments.push((start, text.len()));
        if segments.iter().any(|&(s, e)| s == e) {
            return None;
        }
        Some(ClaimPath { text: text.to_owned(), segments })
    }

    /// Walks the claims. At each level the longest run of remaining segments that names an existing key wins, so
    /// claim names that contain dots (`https://example.com/roles`, a client id like `app.example.com`) work too.
    fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        let n = self.segments.len();
        let mut object = claims;
        let mut i = 0;
        loop {
            let start = self.segments[i].0;
            let (j, value) = (i + 1..=n).rev().find_map(|j| {
                let key = &self.text[start..self.segments[j - 1].1];
                object.get(key).map(|v| (j, v))
            })?;
            if j == n {
                return Some(value);
            }
            object = value.as_object()?;
            i = j;
        }
    }
}

/// A usable single value: a non-blank string, a number, or the first such item of an array.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.iter().find_map(|v| match v {
            Value::Array(_) => None,
            v => scalar(v),
        }),
        _ => None,
    }
}

/// Pushes the usable items of `value` (a string counts as a one-item list) onto `out`, skipping duplicates.
fn push_list(value: &Value, out: &mut Vec<String>) {
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    match value {
        Value::Array(items) => {
            for item in items {
                if let Some(s) = match item {
                    Value::String(_) | Value::Number(_) => scalar(item),
                    _ => None,
                } {
                    push(s);
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                push(s);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ClaimMappings.

/// Which claim feeds which [`ActorContext`] field. [`Default`] is Keycloak's layout (see the
/// [`actor` module docs](crate::actor#keycloak-claims)); custom mappings override it per field.
///
/// A mapping value is a dotted path into the claims (`realm_access.roles`), or several paths separated by
/// commas. For a single-valued field the first path that yields a value wins (`session_state, sid`); for `roles`
/// and `groups` the values of all paths are merged, without duplicates. A string where a list is expected
/// counts as a one-item list, and numbers are turned into strings; nulls, booleans, objects and nested arrays are
/// ignored.
///
/// The valid field names are [`ClaimMappings::FIELDS`].
///
/// ```
/// use observer::ClaimMappings;
///
/// let m = ClaimMappings::default().map("roles", "permissions")?.map("tenant_id", "org.tenant")?;
/// assert_eq!(m.get("roles").as_deref(), Some("permissions"));
/// assert!(ClaimMappings::default().map("role", "x").is_err()); // not a field: the error lists the valid ones
/// # Ok::<(), observer::ConfigurationError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimMappings {
    paths: [Vec<ClaimPath>; FIELD_COUNT],
}

impl Default for ClaimMappings {
    /// Keycloak's default claim layout.
    fn default() -> Self {
        let paths = ALL_FIELDS.map(|f| f.default_paths().iter().filter_map(|p| ClaimPath::parse(p)).collect());
        Self { paths }
    }
}

impl fmt::Debug for ClaimMappings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(ALL_FIELDS.iter().map(|&field| (field.name(), self.text_of(field)))).finish()
    }
}

fn config_error(key: &str, message: impl Into<String>) -> ConfigurationError {
    ConfigurationError::new(format!("keycloak_claim_mappings.{key}"), message)
}

impl ClaimMappings {
    /// The field names a mapping can name: every [`ActorContext`] field.
    pub const FIELDS: &'static [&'static str] = &[
        "actor_id",
        "actor_type",
        "email",
        "name",
        "username",
        "roles",
        "groups",
        "session_id",
        "ip_address",
        "user_agent",
        "tenant_id",
        "organization_id",
    ];

    fn field(key: &str) -> Result<Field, ConfigurationError> {
        Field::from_name(key.trim()).ok_or_else(|| {
            config_error(key, format!("unknown ActorContext field `{key}`; valid fields: {}", Self::FIELDS.join(", ")))
        })
    }

    fn text_of(&self, field: Field) -> String {
        let paths = &self.paths[field as usize];
        paths.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Maps `field` to `path` (a dotted claim path, or several separated by commas), replacing its current
    /// mapping.
    ///
    /// # Errors
    /// A [`ConfigurationError`] with field `keycloak_claim_mappings.<field>` if `field` is not one of
    /// [`FIELDS`](Self::FIELDS) (the message lists them) or `path` is empty or has an empty segment.
    pub fn map(mut self, field: &str, path: &str) -> Result<Self, ConfigurationError> {
        let f = Self::field(field)?;
        if path.trim().is_empty() {
            return Err(config_error(field, "empty claim path"));
        }
        let paths = path
            .split(',')
            .map(|p| ClaimPath::parse(p).ok_or_else(|| config_error(field, format!("invalid claim path `{path}`"))))
            .collect::<Result<Vec<_>, _>>()?;
        self.paths[f as usize] = paths;
        Ok(self)
    }

    /// The default mappings overridden by `(field, path)` pairs, as in the guide's
    /// `{"actor_id": "user_id", "email": "user_email", "roles": "permissions"}`.
    ///
    /// # Errors
    /// As [`map`](Self::map), for the first invalid pair.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, ConfigurationError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        pairs.into_iter().try_fold(Self::default(), |m, (k, v)| m.map(k.as_ref(), v.as_ref()))
    }

    /// Adds the roles of Keycloak client `client_id` (`resource_access.<client_id>.roles`) to whatever `roles`
    /// is mapped to; the roles are merged without duplicates.
    ///
    /// # Errors
    /// A [`ConfigurationError`] for `keycloak_claim_mappings.roles` if `client_id` is empty.
    pub fn client_roles(mut self, client_id: &str) -> Result<Self, ConfigurationError> {
        let path = ClaimPath::parse(&format!("resource_access.{}.roles", client_id.trim()))
            .filter(|_| !client_id.trim().is_empty())
            .ok_or_else(|| config_error("roles", format!("invalid client id `{client_id}`")))?;
        let roles = &mut self.paths[Field::Roles as usize];
        if !roles.contains(&path) {
            roles.push(path);
        }
        Ok(self)
    }

    /// The current mapping of `field` as it would be written in a configuration (paths joined by `", "`), or
    /// `None` if `field` is not a field name. Unmapped fields give an empty string.
    pub fn get(&self, field: &str) -> Option<String> {
        Field::from_name(field).map(|f| self.text_of(f))
    }

    fn scalar_of(&self, field: Field, claims: &Map<String, Value>) -> Option<String> {
        self.paths[field as usize].iter().find_map(|p| p.lookup(claims).and_then(scalar))
    }

    fn list_of(&self, field: Field, claims: &Map<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        for path in &self.paths[field as usize] {
            if let Some(value) = path.lookup(claims) {
                push_list(value, &mut out);
            }
        }
        out
    }

    fn build(&self, claims: &Map<String, Value>) -> Result<ActorContext, TokenError> {
        // The actor id must be a string or a number itself, never picked out of an array.
        let actor_id = self.paths[Field::ActorId as usize].iter().find_map(|p| match p.lookup(claims)? {
            v @ (Value::String(_) | Value::Number(_)) => scalar(v),
            _ => None,
        });
        let Some(actor_id) = actor_id else {
            return Err(TokenError::MissingClaim(self.text_of(Field::ActorId)));
        };
        let mut actor = ActorContext::new(actor_id);
        if let Some(t) = self.scalar_of(Field::ActorType, claims) {
            actor.actor_type = t;
        }
        actor.email = self.scalar_of(Field::Email, claims);
        actor.name = self.scalar_of(Field::Name, claims);
        actor.username = self.scalar_of(Field::Username, claims);
        actor.roles = self.list_of(Field::Roles, claims);
        actor.groups = self.list_of(Field::Groups, claims);
        actor.session_id = self.scalar_of(Field::SessionId, claims);
        actor.ip_address = self.scalar_of(Field::IpAddress, claims);
        actor.user_agent = self.scalar_of(Field::UserAgent, claims);
        actor.tenant_id = self.scalar_of(Field::TenantId, claims);
        actor.organization_id = self.scalar_of(Field::OrganizationId, claims);
        Ok(actor)
    }
}

// ---------------------------------------------------------------------------------------------
// ActorContext from claims / raw tokens.

impl ActorContext {
    /// Builds a user actor from decoded JWT claims with `mappings`, or — with `None` — with the mappings
    /// configured at [`init`](crate::init) (`keycloak_claim_mappings`; Keycloak's defaults if nothing was
    /// configured or `init` has not run). Pass `Some(&ClaimMappings::default())` for the plain defaults.
    ///
    /// Only the actor id is required; every other field is left unset when its claim is missing or unusable.
    /// `actor_type` is `"user"` unless mapped.
    ///
    /// # Errors
    /// [`TokenError::Malformed`] if `claims` is not a JSON object; [`TokenError::MissingClaim`] with the
    /// configured path (e.g. `"sub"`) if the actor id is missing, blank, or not a string or number.
    pub fn from_keycloak_token(
        claims: &serde_json::Value,
        mappings: Option<&ClaimMappings>,
    ) -> Result<ActorContext, TokenError> {
        let Value::Object(claims) = claims else {
            return Err(TokenError::Malformed("claims are not a JSON object".into()));
        };
        match mappings {
            Some(m) => m.build(claims),
            None => crate::init::claim_mappings().build(claims),
        }
    }
}

/// How [`set_actor_from_keycloak_token`] treats the token's signature.
#[derive(Debug, Clone)]
pub enum Verify {
    /// Do not verify: the API gateway already did. The claims are only decoded
    /// ([`decode_unverified`](crate::actor::decode_unverified)): no signature, `exp`, issuer or audience
    /// check. Tokens with `alg: none` or an empty signature are still refused with
    /// [`TokenError::UnsignedToken`], since no verifying gateway passes them on.
    Skip,
    /// Verify with this verifier (signature, `exp`/`nbf`, issuer and audience when configured).
    With(Box<TokenVerifier>),
}

impl From<TokenVerifier> for Verify {
    fn from(verifier: TokenVerifier) -> Self {
        Verify::With(Box::new(verifier))
    }
}

/// Decodes `raw_jwt` (a leading `Bearer ` is accepted) — verifying it first with [`Verify::With`] — builds the
/// actor with the claim mappings configured at [`init`](crate::init), sets it as the current actor
/// ([`set_actor_context`]) and returns it.
///
/// On any error the current actor is **cleared**, so a rejected token never leaves an earlier request's actor
/// in place on this thread or scope.
///
/// # Errors
/// The [`TokenError`] of decoding or verification (see [`TokenVerifier`]), or of
/// [`ActorContext::from_keycloak_token`].
pub fn set_actor_from_keycloak_token(raw_jwt: &str, verify: &Verify) -> Result<ActorContext, TokenError> {
    let result = match verify {
        Verify::Skip => decode_unverified(raw_jwt),
        Verify::With(verifier) => verifier.verify(raw_jwt),
    }
    .and_then(|claims| ActorContext::from_keycloak_token(&claims, None));
    match result {
        Ok(actor) => {
            set_actor_context(Some(actor.clone()));
            Ok(actor)
        }
        Err(err) => {
            set_actor_context(None);
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> ClaimPath {
        match ClaimPath::parse(p) {
            Some(p) => p,
            None => panic!("valid path {p}"),
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("object"),
        }
    }

    fn actor(claims: Value, m: &ClaimMappings) -> ActorContext {
        match ActorContext::from_keycloak_token(&claims, Some(m)) {
            Ok(a) => a,
            Err(e) => panic!("actor: {e}"),
        }
    }

    #[test]
    fn paths_parse_and_reject_empty_segments() {
        assert_eq!(path("realm_access.roles").segments.len(), 2);
        assert_eq!(path(" sub ").text, "sub");
        for bad in ["", " ", ".", "a.", ".a", "a..b"] {
            assert!(ClaimPath::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn lookup_walks_nested_objects() {
        let claims = obj(json!({"a": {"b": {"c": 1}}, "realm_access": {"roles": ["x"]}, "s": "str"}));
        assert_eq!(path("a.b.c").lookup(&claims), Some(&json!(1)));
        assert_eq!(path("a.b").lookup(&claims), Some(&json!({"c": 1})));
        assert_eq!(path("realm_access.roles").lookup(&claims), Some(&json!(["x"])));
        assert_eq!(path("a.x").lookup(&claims), None);
        assert_eq!(path("s.deeper").lookup(&claims), None, "a string has no children");
        assert_eq!(path("a.b.c.d").lookup(&claims), None, "a number has no children");
        assert_eq!(path("missing").lookup(&claims), None);
    }

    #[test]
    fn lookup_finds_keys_containing_dots() {
        let claims = obj(json!({
            "https://example.com/roles": ["ns"],
            "resource_access": {"app.example.com": {"roles": ["dotted-client"]}},
        }));
        assert_eq!(path("https://example.com/roles").lookup(&claims), Some(&json!(["ns"])));
        assert_eq!(path("resource_access.app.example.com.roles").lookup(&claims), Some(&json!(["dotted-client"])));
    }

    #[test]
    fn odd_json_never_panics() {
        let m = ClaimMappings::default();
        let weird = json!({
            "sub": 42,
            "email": null,
            "name": ["First", "Second"],
            "preferred_username": {"nested": true},
            "realm_access": {"roles": [null, 1, "r", ["nested"], {"o": 1}, true, "", "r"]},
            "groups": "single-group",
            "session_state": false,
            "sid": "sid-1",
            "tenant_id": 1.5,
            "organization_id": [[], [null]],
        });
        let a = actor(weird, &m);
        assert_eq!(a.actor_id, "42");
        assert_eq!(a.email, None);
        assert_eq!(a.name.as_deref(), Some("First"));
        assert_eq!(a.username, None);
        assert_eq!(a.roles, ["1", "r"]);
        assert_eq!(a.groups, ["single-group"]);
        assert_eq!(a.session_id.as_deref(), Some("sid-1"), "falls back to sid");
        assert_eq!(a.tenant_id.as_deref(), Some("1.5"));
        assert_eq!(a.organization_id, None);
        for claims in [json!(null), json!(1), json!("s"), json!([1, 2]), json!(true)] {
            assert!(matches!(ActorContext::from_keycloak_token(&claims, Some(&m)), Err(TokenError::Malformed(_))));
        }
        for sub in [json!(null), json!(""), json!("  "), json!(["a"]), json!({"id": "a"}), json!(true)] {
            assert_eq!(
                ActorContext::from_keycloak_token(&json!({ "sub": sub }), Some(&m)),
                Err(TokenError::MissingClaim("sub".into()))
            );
        }
    }

    #[test]
    fn session_state_wins_over_sid() {
        let a = actor(json!({"sub": "u", "session_state": "ss", "sid": "sid"}), &ClaimMappings::default());
        assert_eq!(a.session_id.as_deref(), Some("ss"));
    }

    #[test]
    fn mappings_validate_keys_and_paths() {
        let m = ClaimMappings::from_pairs([("roles", "permissions")]);
        assert_eq!(m.as_ref().ok().and_then(|m| m.get("roles")).as_deref(), Some("permissions"));
        assert_eq!(m.ok().and_then(|m| m.get("email")).as_deref(), Some("email"), "other fields keep defaults");

        let Err(err) = ClaimMappings::from_pairs([("roles", "permissions"), ("role", "x")]) else {
            panic!("unknown key accepted")
        };
        assert_eq!(err.field, "keycloak_claim_mappings.role");
        for name in ClaimMappings::FIELDS {
            assert!(err.message.contains(name), "{}", err.message);
        }

        for bad in ["", "  ", "a..b", "a,", ",a"] {
            let Err(err) = ClaimMappings::default().map("email", bad) else { panic!("{bad:?} accepted") };
            assert_eq!(err.field, "keycloak_claim_mappings.email");
        }
        assert!(ClaimMappings::default().client_roles(" ").is_err());
    }

    #[test]
    fn fields_list_matches_the_enum() {
        let names: Vec<&str> = ALL_FIELDS.iter().map(|f| f.name()).collect();
        assert_eq!(names, ClaimMappings::FIELDS);
        for (i, f) in ALL_FIELDS.iter().enumerate() {
            assert_eq!(*f as usize, i);
        }
    }

    #[test]
    fn several_paths_merge_lists_and_fall_back_for_scalars() {
        let m = match ClaimMappings::from_pairs([
            ("roles", "realm_access.roles, resource_access.app.roles"),
            ("email", "mail, email"),
        ]) {
            Ok(m) => m.client_roles("app"),
            Err(e) => panic!("{e}"),
        };
        let Ok(m) = m else { panic!("client roles") };
        assert_eq!(m.get("roles").as_deref(), Some("realm_access.roles, resource_access.app.roles"), "no duplicate");
        let a = actor(
            json!({"sub": "u", "email": "e@x", "realm_access": {"roles": ["a", "b"]},
                   "resource_access": {"app": {"roles": ["b", "c"]}}}),
            &m,
        );
        assert_eq!(a.roles, ["a", "b", "c"]);
        assert_eq!(a.email.as_deref(), Some("e@x"));
        assert!(format!("{m:?}").contains("realm_access.roles"));
    }
}
