//! Checksums and structural rules that turn a pattern match into a finding: a bare regex would mask every
//! nine-digit number as an SSN and every sixteen-digit one as a card.

use base64::Engine as _;

/// The ASCII digits of `s`, as numbers.
pub(crate) fn digits(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect()
}

/// The Luhn (mod 10) check over `digits`, the last one being the check digit.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let d = u32::from(d);
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    sum.is_multiple_of(10)
}

/// US Social Security number rules (SSA): area not 000, 666 or 900–999; group not 00; serial not 0000.
pub(crate) fn ssn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 {
        return false;
    }
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = u32::from(d[3]) * 10 + u32::from(d[4]);
    let serial = d[5..].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// A North American Numbering Plan number (10 digits, or 11 with the leading 1): area code and exchange
/// start with 2–9, and the area code is not an N11 service code.
pub(crate) fn nanp(s: &str) -> bool {
    let mut d = digits(s);
    if d.len() == 11 && d[0] == 1 {
        d.remove(0);
    }
    d.len() == 10 && d[0] >= 2 && !(d[1] == 1 && d[2] == 1) && d[3] >= 2
}

/// An E.164 number: `+`, a country code not starting with 0, 8 to 15 digits in all.
pub(crate) fn e164(s: &str) -> bool {
    let d = digits(s);
    s.trim_start().starts_with('+') && (8..=15).contains(&d.len()) && d[0] != 0
}

/// A payment card number: 13–19 digits, a known issuer prefix, the Luhn check.
pub(crate) fn card(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) || !luhn(&d) {
        return false;
    }
    let p = |n: usize| d[..n].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let len = d.len();
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        5 => (51..=55).contains(&p(2)) && len == 16,
        2 => (2221..=2720).contains(&p(4)) && len == 16,
        3 => {
            (matches!(p(2), 34 | 37) && len == 15)
                || (p(2) == 35 && len >= 16)
                || (matches!(p(2), 36 | 38 | 30) && len >= 14)
        }
        6 => p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) || p(2) == 62,
        _ => false,
    }
}

/// An IBAN: country letters, two check digits, the mod-97 check (ISO 13616) and a plausible length.
pub(crate) fn iban(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) || !compact[..2].iter().all(u8::is_ascii_uppercase) {
        return false;
    }
    if let Some(len) = iban_length(&compact[..2]) {
        if compact.len() != len {
            return false;
        }
    }
    let mut rem = 0u32;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// The IBAN length of the common countries (others are checked against 15–34 only).
fn iban_length(country: &[u8]) -> Option<usize> {
    Some(match country {
        b"DE" => 22,
        b"GB" | b"IE" => 22,
        b"FR" | b"IT" | b"MC" => 27,
        b"ES" | b"SE" | b"SK" | b"CZ" => 24,
        b"NL" => 18,
        b"BE" => 16,
        b"CH" | b"LI" => 21,
        b"AT" | b"LU" => 20,
        b"PL" => 28,
        b"PT" => 25,
        b"DK" | b"FI" => 18,
        b"NO" => 15,
        _ => return None,
    })
}

/// A US National Provider Identifier: 10 digits starting with 1 or 2, Luhn over `80840` + the number.
pub(crate) fn npi(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 10 || !(d[0] == 1 || d[0] == 2) {
        return false;
    }
    let mut full = vec![8, 0, 8, 4, 0];
    full.extend_from_slice(&d);
    luhn(&full)
}

/// A DEA registration number: two letters, seven digits; (d1+d3+d5) + 2·(d2+d4+d6) ends in d7.
pub(crate) fn dea(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 9 {
        return false;
    }
    let d = digits(&s[2..]);
    if d.len() != 7 {
        return false;
    }
    let sum = u32::from(d[0] + d[2] + d[4]) + 2 * u32::from(d[1] + d[3] + d[5]);
    sum % 10 == u32::from(d[6])
}

/// A Medicare Beneficiary Identifier (CMS format, 11 characters once dashes are removed). The pattern
/// already fixes each position's class; this only rejects the all-digit tail that a pattern with optional
/// dashes could admit.
pub(crate) fn mbi(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    compact.len() == 11 && compact.iter().any(u8::is_ascii_alphabetic)
}

/// An IPv4 address: four decimal octets, each at most 255, without leading zeros.
pub(crate) fn ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// An IPv6 address in any textual form the standard library accepts.
pub(crate) fn ipv6(s: &str) -> bool {
    s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// A JWT: the header is base64url JSON naming an `alg`.
pub(crate) fn jwt(s: &str) -> bool {
    let header = s.split('.').next().unwrap_or("");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v.get("alg").is_some())
}

/// A calendar date whose parts are a real month and day (the year within 1900–2099 for four digits).
pub(crate) fn ymd(year: Option<u32>, month: u32, day: Option<u32>) -> bool {
    if !(1..=12).contains(&month) {
        return false;
    }
    if let Some(y) = year {
        if y >= 100 && !(1900..=2099).contains(&y) {
            return false;
        }
    }
    match day {
        None => true,
        Some(d) => {
            let max = match month {
                2 => 29,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            (1..=max).contains(&d)
        }
    }
}

/// The month number of an English month name or its abbreviation (`Sept` too).
pub(crate) fn month_name(s: &str) -> Option<u32> {
    let s = s.trim_end_matches('.').to_ascii_lowercase();
    const NAMES: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    if s.len() < 3 {
        return None;
    }
    let i = NAMES.iter().position(|n| s.starts_with(n))?;
    let full = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ][i];
    (full.starts_with(s.as_str()) || s == "sept").then_some(i as u32 + 1)
}

/// The USPS state, district and territory codes.
pub(crate) fn us_state(s: &str) -> bool {
    const STATES: &[&str] = &[
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA",
        "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK",
        "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "PR", "GU", "VI",
        "AS", "MP",
    ];
    STATES.contains(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(luhn(&digits("4111111111111111")));
        assert!(!luhn(&digits("4111111111111112")));
        assert!(card("4111 1111 1111 1111") && card("378282246310005") && card("5555555555554444"));
        assert!(!card("1234567812345678"), "no issuer");
        assert!(ssn("123-45-6789") && !ssn("666-12-3456") && !ssn("900-12-3456") && !ssn("123-00-6789"));
        assert!(!ssn("123-45-0000") && !ssn("000-45-6789"));
        assert!(npi("1234567893") && !npi("1234567890"));
        assert!(dea("AB1234563") && !dea("AB1234564"));
        assert!(iban("GB82 WEST 1234 5698 7654 32") && iban("DE89370400440532013000"));
        assert!(!iban("GB82 WEST 1234 5698 7654 33"));
        assert!(nanp("(617) 555-0123") && !nanp("(117) 555-0123") && !nanp("(611) 555-0123"));
        assert!(ipv4("192.168.1.20") && !ipv4("256.1.1.1") && !ipv4("01.2.3.4"));
        assert!(ipv6("2001:db8::1") && ipv6("fe80:0:0:0:202:b3ff:fe1e:8329") && !ipv6("10:30:00"));
        assert!(ymd(Some(1985), 2, Some(29)) && !ymd(Some(1985), 13, Some(1)) && !ymd(Some(1985), 4, Some(31)));
        assert_eq!(month_name("Sept."), Some(9));
        assert_eq!(month_name("Mayo"), None);
        assert!(mbi("1EG4-TE5-MK73") && !mbi("1EG4TE5MK7"));
    }
}
