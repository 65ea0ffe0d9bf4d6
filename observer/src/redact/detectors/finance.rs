//! Financial identifiers: payment cards (issuer prefix + Luhn) and IBANs (mod 97).

use super::{spec, Ctx, Spec, STRUCTURED};
use crate::redact::policy::Kind;
use crate::redact::validators;

fn card(c: &Ctx<'_>) -> Option<(usize, usize)> {
    let v = c.value();
    // One separator style throughout (`4111 1111 1111 1111` or `4111-1111-…`, not a mix).
    let seps: Vec<u8> = v.bytes().filter(|b| !b.is_ascii_digit()).collect();
    let consistent = seps.windows(2).all(|w| w[0] == w[1]);
    c.keep(consistent && !c.in_longer_number() && validators::card(v))
}

fn iban(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(validators::iban(c.value()))
}

pub(super) fn specs() -> Vec<Spec> {
    vec![
        spec(Kind::CreditCard, STRUCTURED, r"\b(?:\d[ -]?){12,18}\d\b", card),
        spec(Kind::Iban, STRUCTURED, r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", iban),
    ]
}
