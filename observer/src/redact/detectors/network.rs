//! Network identifiers: URLs, IPv4 and IPv6 addresses.

use super::{spec, Ctx, Spec, CONTAINER, STRUCTURED};
use crate::redact::policy::Kind;
use crate::redact::validators;

/// A URL without the punctuation that ends the sentence around it.
fn url(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let v = c.value();
    let trimmed = v.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '\'', '"']);
    (trimmed.len() > 8).then_some((c.start, c.start + trimmed.len()))
}

fn ipv4(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let glued = c.before().is_some_and(|b| b == b'.' || b.is_ascii_digit())
        || matches!(c.after(), (Some(b'.'), Some(d)) if d.is_ascii_digit());
    c.keep(!glued && validators::ipv4(c.value()))
}

fn ipv6(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let glued = c.before().is_some_and(|b| b == b':' || b.is_ascii_alphanumeric())
        || c.after().0.is_some_and(|b| b == b':' || b.is_ascii_alphanumeric());
    let hex_digits = c.value().bytes().filter(u8::is_ascii_hexdigit).count();
    c.keep(!glued && hex_digits >= 4 && validators::ipv6(c.value()))
}

pub(super) fn specs() -> Vec<Spec> {
    vec![
        spec(Kind::Url, CONTAINER, r#"(?i:\b(?:https?|ftp)://|\bwww\.)[^\s<>"'`]+"#, url),
        spec(Kind::Ip, STRUCTURED, r"\b(?:\d{1,3}\.){3}\d{1,3}\b", ipv4),
        spec(Kind::Ip, STRUCTURED, r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|[0-9A-Fa-f:]*::[0-9A-Fa-f:]*", ipv6),
    ]
}
