//! A sound shortcut before the scan: most values of an audit event (a provider name, a summary without
//! numbers, a finish reason) cannot match any detector, and one look at which bytes they hold says so.
//!
//! For every detector, its pattern's syntax tree (parsed by `regex-syntax`, the parser the `regex` crate
//! compiles it with) gives byte sets, *clauses*, such that every string the pattern matches holds at least one
//! byte of each clause: a literal needs each of its bytes, a class one of its bytes (for a character past
//! ASCII, its first UTF-8 byte), a concatenation the clauses of all its parts, an alternation a union with a
//! clause from each branch, a repetition with a minimum of zero (or a look-around) nothing. A match is a
//! substring of the value, so a value missing every byte of some clause cannot be matched by that detector;
//! a value that no detector can match is not scanned. Nothing else is assumed about the patterns: user
//! detectors get their clauses the same way, and a pattern that can match without any given byte gets no
//! clause (then every value is scanned).

use regex_syntax::hir::{Class, Hir, HirKind};

/// A set of bytes (256 bits).
type Bytes = [u64; 4];

/// Most clauses kept per sub-pattern (the rarest ones; fewer only means fewer values skipped).
const MAX_CLAUSES: usize = 8;

/// Values longer than this are scanned without looking (the look would rarely pay for itself on them).
const MAX_LOOK: usize = 4096;

/// The byte classes the check works on (a value's classes are one `u64`, computed with one table look-up per
/// byte): each letter, each case, on its own; the digits; white space; `@ : - . / _ = #` each on its own; every
/// byte past ASCII; everything else. A clause becomes the classes of its bytes (a superset: still sound).
const fn class_of(b: u8) -> u32 {
    match b {
        b'a'..=b'z' => (b - b'a') as u32,
        b'A'..=b'Z' => 26 + (b - b'A') as u32,
        b'0'..=b'9' => 52,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => 53,
        b'@' => 54,
        b':' => 55,
        b'-' => 56,
        b'.' => 57,
        b'/' => 58,
        b'_' => 59,
        b'=' => 60,
        b'#' => 61,
        0x80.. => 62,
        _ => 63,
    }
}

static CLASS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = 1 << class_of(b as u8);
        b += 1;
    }
    t
};

/// Per detector, the clauses (as classes) a value must meet for it to match, rarest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefilter {
    /// All the clauses, one detector after the other (one array: this is walked for every value).
    clauses: Vec<u64>,
    /// Where each detector's clauses end in `clauses`.
    ends: Vec<usize>,
    /// Some detector has no clause: every value is scanned.
    always: bool,
}

impl Prefilter {
    /// The clauses of the detectors' `(pattern, needs_digit)`, in order: `needs_digit` when the detector's
    /// validator keeps only values holding an ASCII digit (a built-in fact, e.g. for the labelled identifiers).
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = (&'a str, bool)>) -> Self {
        let (mut all, mut ends) = (Vec::new(), Vec::new());
        let mut always = false;
        for (pattern, needs_digit) in patterns {
            let mut clauses = match regex_syntax::ParserBuilder::new().build().parse(pattern) {
                Ok(hir) => clauses(&hir),
                // The regex crate compiled it, so this does not happen; if it did, scan everything.
                Err(_) => Vec::new(),
            };
            if needs_digit {
                let mut digits = [0; 4];
                (b'0'..=b'9').for_each(|b| add(&mut digits, b));
                clauses.push(digits);
            }
            always |= clauses.is_empty();
            let mut classes: Vec<u64> = clauses.iter().map(classes).collect();
            classes.dedup();
            all.extend(classes);
            ends.push(all.len());
        }
        Self { clauses: all, ends, always }
    }

    /// Whether some detector may match `text` (`false`: none can, the scan is skipped).
    pub(crate) fn may_match(&self, text: &str) -> bool {
        if self.always || text.len() > MAX_LOOK {
            return true;
        }
        let present = presence(text);
        let mut start = 0;
        for &end in &self.ends {
            if self.clauses[start..end].iter().all(|&c| c & present != 0) {
                return true;
            }
            start = end;
        }
        false
    }

    /// Whether detector `i` may match a value holding the byte classes `present`.
    pub(crate) fn possible(&self, i: usize, present: u64) -> bool {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.clauses[start..self.ends[i]].iter().all(|&c| c & present != 0)
    }
}

/// The byte classes of `text`.
pub(crate) fn presence(text: &str) -> u64 {
    text.bytes().fold(0, |set, b| set | CLASS[usize::from(b)])
}

/// The classes of the bytes of `clause`.
fn classes(clause: &Bytes) -> u64 {
    (0..=255u8)
        .filter(|&b| clause[usize::from(b >> 6)] & (1 << (b & 63)) != 0)
        .fold(0, |set, b| set | CLASS[usize::from(b)])
}

fn add(set: &mut Bytes, b: u8) {
    set[usize::from(b >> 6)] |= 1 << (b & 63);
}

fn byte(b: u8) -> Bytes {
    let mut set = [0; 4];
    add(&mut set, b);
    set
}

/// How common the bytes of a clause are in text (lower: rarer, so a better filter). Only the choice of clauses
/// depends on it, never whether they are sound.
fn cost(c: &Bytes) -> u32 {
    // Per mille, English letter frequencies; capitals a fifth of that.
    const LOWER: [u32; 26] =
        [82, 15, 28, 43, 127, 22, 20, 61, 70, 2, 8, 40, 24, 67, 75, 19, 1, 60, 63, 91, 28, 10, 24, 2, 20, 1];
    let weight = |b: u8| match b {
        b' ' => 180,
        b'a'..=b'z' => LOWER[usize::from(b - b'a')],
        b'A'..=b'Z' => LOWER[usize::from(b - b'A')] / 5 + 1,
        b'0'..=b'9' => 4,
        b'.' | b',' | b'\n' => 10,
        b'-' | b'\'' | b'"' | b'(' | b')' | b'/' | b':' | b'_' => 3,
        0x80.. => 1,
        _ => 2,
    };
    let mut total = 0;
    for (w, word) in c.iter().enumerate() {
        let mut bits = *word;
        while bits != 0 {
            let b = bits.trailing_zeros();
            bits &= bits - 1;
            total += weight((w as u32 * 64 + b) as u8);
        }
    }
    total
}

/// At most [`MAX_CLAUSES`] distinct clauses, rarest first.
fn prune(mut clauses: Vec<Bytes>) -> Vec<Bytes> {
    clauses.sort_by_key(cost);
    clauses.dedup();
    clauses.truncate(MAX_CLAUSES);
    clauses
}

/// Clauses every match of `hir` meets (see the module's documentation).
fn clauses(hir: &Hir) -> Vec<Bytes> {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Vec::new(),
        HirKind::Literal(lit) => prune(lit.0.iter().map(|&b| byte(b)).collect()),
        HirKind::Class(Class::Bytes(class)) => {
            let mut set = [0; 4];
            for r in class.ranges() {
                for b in r.start()..=r.end() {
                    add(&mut set, b);
                }
            }
            // An empty class matches nothing: the empty clause is then met by no value, which is right.
            vec![set]
        }
        HirKind::Class(Class::Unicode(class)) => {
            let mut set = [0; 4];
            for r in class.ranges() {
                let (start, end) = (u32::from(r.start()), u32::from(r.end()));
                for c in start..=end.min(0x7F) {
                    add(&mut set, c as u8);
                }
                if end >= 0x80 {
                    // Any character past ASCII: its first UTF-8 byte (0xC2..=0xF4), over-approximated by all the
                    // bytes that can start one.
                    for b in 0xC2..=0xF4 {
                        add(&mut set, b);
                    }
                }
            }
            vec![set]
        }
        HirKind::Repetition(rep) if rep.min == 0 => Vec::new(),
        HirKind::Repetition(rep) => clauses(&rep.sub),
        HirKind::Capture(cap) => clauses(&cap.sub),
        HirKind::Concat(subs) => prune(subs.iter().flat_map(clauses).collect()),
        HirKind::Alternation(subs) => {
            let branches: Vec<Vec<Bytes>> = subs.iter().map(clauses).collect();
            if branches.iter().any(Vec::is_empty) {
                return Vec::new();
            }
            // Each clause of each branch, united with the clause of every other branch that widens it least:
            // a match of any branch meets the union.
            let mut out = Vec::new();
            for (i, branch) in branches.iter().enumerate() {
                for c in branch {
                    let mut acc = *c;
                    for (j, other) in branches.iter().enumerate() {
                        if j != i {
                            let least = other.iter().map(|d| union(&acc, d)).min_by_key(cost).unwrap_or(acc);
                            acc = least;
                        }
                    }
                    out.push(acc);
                }
            }
            prune(out)
        }
    }
}

fn union(a: &Bytes, b: &Bytes) -> Bytes {
    [a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(pattern: &str, text: &str) -> bool {
        !Prefilter::new([(pattern, false)]).may_match(text)
    }

    #[test]
    fn clauses_follow_the_syntax() {
        assert!(skips(r"\d{3}-\d{2}", "no digits here"));
        assert!(!skips(r"\d{3}-\d{2}", "1-"));
        assert!(skips(r"a@b", "ab"));
        assert!(!skips(r"a@b", "b@a"));
        // A branch that needs nothing, a repetition from zero, a look-around: no clause, always scanned.
        assert!(!skips(r"x|y*", "zzz"));
        assert!(!skips(r"\b", "zzz"));
        assert!(!skips(r"(?:ab)?", ""));
        // Alternation: a byte from each branch.
        assert!(skips(r"(?:cat|dog)", "xyz"));
        assert!(!skips(r"(?:cat|dog)", "a dog"));
        assert!(skips(r"(?:cat|dog)", "d"));
        // Case-insensitive letters have both cases (and U+212A, the Kelvin sign, for `k`).
        assert!(!skips(r"(?i:key)", "KEY"));
        assert!(!skips(r"(?i:k)", "\u{212A}"));
        // Past ASCII.
        assert!(!skips(r"é", "café"));
        assert!(!skips(r"\p{Greek}", "α"));
        assert!(skips(r"\p{Greek}", "alpha"));
        // An empty class matches nothing.
        assert!(skips(r"[^\s\S]", "anything"));
    }
}
