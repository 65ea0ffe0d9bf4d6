//! Secrets: provider API keys (OpenAI, Anthropic, AWS, GitHub), JWTs, bearer tokens, passwords in URLs and
//! after `password=`.

use super::{spec, Ctx, Spec, SECRET};
use crate::redact::policy::Kind;
use crate::redact::validators;

fn mixed(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let v = c.value();
    c.keep(v.bytes().any(|b| b.is_ascii_digit()) && v.bytes().any(|b| b.is_ascii_alphabetic()))
}

fn jwt(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(validators::jwt(c.value()))
}

fn any(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(true)
}

pub(super) fn specs() -> Vec<Spec> {
    vec![
        spec(Kind::Jwt, SECRET, r"\beyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*", jwt),
        // OpenAI (`sk-`, `sk-proj-`, `sk-svcacct-`) and Anthropic (`sk-ant-api03-`, `sk-ant-admin01-`).
        Spec { needs_digit: true, ..spec(Kind::ApiKey, SECRET, r"\bsk-[A-Za-z0-9_-]{20,}", mixed) },
        spec(Kind::ApiKey, SECRET, r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b", any),
        spec(
            Kind::ApiKey,
            SECRET,
            r"(?i:aws_?secret_?access_?key|secret_?access_?key)\W{0,4}(?P<v>[A-Za-z0-9/+=]{40})",
            any,
        ),
        spec(Kind::ApiKey, SECRET, r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b", any),
        Spec {
            needs_digit: true,
            ..spec(Kind::BearerToken, SECRET, r"(?i:\bbearer)\s+(?P<v>[A-Za-z0-9._~+/-]{12,}=*)", mixed)
        },
        // user:password@ in any scheme's URL.
        spec(Kind::Password, SECRET, r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s:/@]+:(?P<v>[^\s@/]+)@", any),
        spec(Kind::Password, SECRET, r#"(?i:\b(?:password|passwd|pwd|passcode))\s*[:=]\s*(?P<v>[^\s"',;]{3,})"#, any),
    ]
}
