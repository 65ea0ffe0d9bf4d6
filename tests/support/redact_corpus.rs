//! A labelled corpus for the redaction engine, generated from a fixed seed: clinical-note sentences, chat
//! messages and JSON payloads (agent inputs and outputs) with the byte spans of every identifier they hold,
//! and clean near-misses (order numbers, prices, ICD-10 codes, lab values, years, numbers whose checksum
//! fails) that must not be masked. Deterministic: its own small PRNG (SplitMix64), no dependency whose
//! sequence could change between versions.
#![allow(dead_code)]

use base64::Engine as _;
use observer::redact::Kind;

/// One identifier in a leaf: kind and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gold {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// One string of a snippet (a JSON payload has several, under their keys; text has one, key `text`).
#[derive(Debug, Clone)]
pub struct Leaf {
    pub key: String,
    pub text: String,
    pub gold: Vec<Gold>,
}

/// One snippet of the corpus.
#[derive(Debug, Clone)]
pub struct Snippet {
    /// `note`, `chat`, `json` or `clean`.
    pub source: &'static str,
    pub leaves: Vec<Leaf>,
}

impl Snippet {
    /// The snippet as a JSON object of its leaves.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.leaves.iter().map(|l| (l.key.clone(), serde_json::Value::String(l.text.clone()))).collect(),
        )
    }
}

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| char::from(*self.pick(A))).collect()
    }
    fn upper_digits(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n).map(|_| char::from(*self.pick(A))).collect()
    }
}

/// Builds a leaf piece by piece, recording the spans of identifiers.
#[derive(Default)]
struct Text {
    s: String,
    gold: Vec<Gold>,
}

impl Text {
    fn t(&mut self, s: &str) -> &mut Self {
        self.s.push_str(s);
        self
    }
    fn id(&mut self, kind: Kind, s: &str) -> &mut Self {
        let start = self.s.len();
        self.s.push_str(s);
        self.gold.push(Gold { kind, start, end: self.s.len() });
        self
    }
    fn leaf(self, key: &str) -> Leaf {
        Leaf { key: key.into(), text: self.s, gold: self.gold }
    }
}

fn luhn_digit(body: &[u8]) -> u8 {
    // The check digit that makes body + digit pass Luhn.
    let mut sum = 0u32;
    for (i, &d) in body.iter().rev().enumerate() {
        let d = u32::from(d);
        sum += if i % 2 == 0 {
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
    ((10 - sum % 10) % 10) as u8
}

fn to_digits(s: &str) -> Vec<u8> {
    s.bytes().map(|b| b - b'0').collect()
}

const FIRST: &[&str] = &[
    "Jane", "John", "Maria", "Wei", "Aisha", "Carlos", "Priya", "Tom", "Olga", "Kwame", "Sofia", "Liam", "Mei", "Omar",
    "Grace", "Ivan", "Fatima", "Noah", "Elena", "Hiro",
];
const LAST: &[&str] = &[
    "Roe", "Smith", "Garcia", "Chen", "Okafor", "Nguyen", "Patel", "O'Brien", "Kowalski", "Haddad", "Johnson",
    "Martinez", "Schmidt", "Rossi", "Tanaka", "Ivanova", "McDonald", "Dubois", "Silva", "Andersen",
];
const STREETS: &[&str] =
    &["Elm", "Maple", "Oak", "Cedar", "Washington", "Lake View", "Pine", "Main", "Highland", "Park"];
const SUFFIXES: &[&str] = &["Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Blvd", "Court", "Way"];
const CITIES: &[&str] = &["Springfield", "Boston", "Austin", "Denver", "Portland", "Madison", "Salem", "Dover"];
const STATES: &[&str] = &["MA", "TX", "CO", "OR", "WI", "IL", "NY", "CA", "WA", "FL"];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Generators of valid identifiers.
pub struct Gen<'a>(pub &'a mut Rng);

impl Gen<'_> {
    pub fn ssn(&mut self) -> String {
        let area = loop {
            let a = self.0.range(1, 899);
            if a != 666 {
                break a;
            }
        };
        let group = self.0.range(1, 99);
        let serial = self.0.range(1, 9999);
        match self.0.below(3) {
            0 | 1 => format!("{area:03}-{group:02}-{serial:04}"),
            _ => format!("{area:03} {group:02} {serial:04}"),
        }
    }
    pub fn ssn_bare(&mut self) -> String {
        self.ssn().replace(['-', ' '], "")
    }
    fn nanp_parts(&mut self) -> (u64, u64, u64) {
        let area = loop {
            let a = self.0.range(201, 989);
            if a % 100 != 11 && (a / 10) % 10 != 9 {
                break a;
            }
        };
        let exchange = self.0.range(200, 999);
        (area, exchange, self.0.range(0, 9999))
    }
    pub fn phone(&mut self) -> String {
        let (a, e, n) = self.nanp_parts();
        match self.0.below(5) {
            0 => format!("({a}) {e}-{n:04}"),
            1 => format!("{a}-{e}-{n:04}"),
            2 => format!("{a}.{e}.{n:04}"),
            3 => format!("+1 {a} {e} {n:04}"),
            _ => format!("1-{a}-{e}-{n:04}"),
        }
    }
    pub fn phone_bare(&mut self) -> String {
        let (a, e, n) = self.nanp_parts();
        format!("{a}{e}{n:04}")
    }
    pub fn e164(&mut self) -> String {
        match self.0.below(3) {
            0 => format!("+44 20 {} {}", self.0.digits(4), self.0.digits(4)),
            1 => format!("+49 30 {}", self.0.digits(8)),
            _ => format!("+33 1 {} {} {} {}", self.0.digits(2), self.0.digits(2), self.0.digits(2), self.0.digits(2)),
        }
    }
    pub fn email(&mut self) -> String {
        let f = self.0.pick(FIRST).to_lowercase();
        let l = self.0.pick(LAST).to_lowercase().replace('\'', "");
        let d = self.0.pick(&["example.org", "mail.example.com", "clinic.example.net", "health.example.co.uk"]);
        match self.0.below(3) {
            0 => format!("{f}.{l}@{d}"),
            1 => format!("{f}{}@{d}", self.0.below(100)),
            _ => format!("{f}_{l}+portal@{d}"),
        }
    }
    pub fn date(&mut self) -> String {
        let y = self.0.range(1930, 2025);
        let m = self.0.range(1, 12);
        let d = self.0.range(1, 28);
        let month = MONTHS[(m - 1) as usize];
        match self.0.below(7) {
            0 => format!("{m:02}/{d:02}/{y}"),
            1 => format!("{m}/{d}/{y}"),
            2 => format!("{y}-{m:02}-{d:02}"),
            3 => format!("{month} {d}, {y}"),
            4 => format!("{d} {month} {y}"),
            5 => format!("{}. {d}, {y}", &month[..3]),
            _ => format!("{y}-{m:02}-{d:02}T{:02}:{:02}:00Z", self.0.below(24), self.0.below(60)),
        }
    }
    pub fn address(&mut self) -> String {
        let n = self.0.range(1, 9999);
        let s = self.0.pick(STREETS);
        let suf = self.0.pick(SUFFIXES);
        match self.0.below(3) {
            0 => format!("{n} {s} {suf}"),
            1 => format!("{n} {s} {suf}, Apt {}", self.0.range(1, 40)),
            _ => format!("{n} {s} {suf}, {}, {} {}", self.0.pick(CITIES), self.0.pick(STATES), self.0.digits(5)),
        }
    }
    pub fn zip4(&mut self) -> String {
        format!("{}-{}", self.0.digits(5), self.0.digits(4))
    }
    pub fn card(&mut self) -> String {
        let (prefix, len) = match self.0.below(4) {
            0 => ("4".to_owned(), 16),
            1 => (format!("5{}", self.0.range(1, 5)), 16),
            2 => (self.0.pick(&["34", "37"]).to_string(), 15),
            _ => ("6011".to_owned(), 16),
        };
        let mut body = prefix.clone();
        body.push_str(&self.0.digits(len - 1 - prefix.len()));
        let check = luhn_digit(&to_digits(&body));
        let n = format!("{body}{check}");
        let sep = *self.0.pick(&["", " ", "-"]);
        if len == 15 {
            format!("{}{sep}{}{sep}{}", &n[..4], &n[4..10], &n[10..])
        } else {
            format!("{}{sep}{}{sep}{}{sep}{}", &n[..4], &n[4..8], &n[8..12], &n[12..])
        }
    }
    pub fn iban(&mut self) -> String {
        let (country, bban) = if self.0.below(2) == 0 {
            ("DE", self.0.digits(18))
        } else {
            let bank: String = (0..4).map(|_| char::from(b'A' + self.0.below(26) as u8)).collect();
            ("GB", format!("{bank}{}", self.0.digits(14)))
        };
        let rearranged = format!("{bban}{country}00");
        let mut rem = 0u32;
        for c in rearranged.chars() {
            let v = c.to_digit(36).unwrap();
            rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
        }
        let check = 98 - rem;
        let compact = format!("{country}{check:02}{bban}");
        if self.0.below(2) == 0 {
            compact
        } else {
            compact.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
        }
    }
    pub fn ipv4(&mut self) -> String {
        format!("{}.{}.{}.{}", self.0.range(1, 223), self.0.below(256), self.0.below(256), self.0.range(1, 254))
    }
    pub fn ipv6(&mut self) -> String {
        let mut h = || format!("{:x}", self.0.below(0x10000));
        match 0 {
            _ if h().len() % 2 == 0 => format!("2001:db8:{}:{}::{}", h(), h(), h()),
            _ => format!("fe80:0:0:0:{}:{}:{}:{}", h(), h(), h(), h()),
        }
    }
    pub fn url(&mut self) -> String {
        let host = self.0.pick(&["portal.example.org", "www.example-clinic.com", "ehr.example.net"]);
        format!("https://{host}/patients/{}?visit={}", self.0.digits(6), self.0.alnum(8))
    }
    pub fn npi(&mut self) -> String {
        let body = format!("{}{}", self.0.range(1, 2), self.0.digits(8));
        let mut full = vec![8, 0, 8, 4, 0];
        full.extend(to_digits(&body));
        format!("{body}{}", luhn_digit(&full))
    }
    pub fn dea(&mut self) -> String {
        let first = *self.0.pick(b"ABFGMPR");
        let second = b'A' + self.0.below(26) as u8;
        let d = to_digits(&self.0.digits(6));
        let check = (u32::from(d[0] + d[2] + d[4]) + 2 * u32::from(d[1] + d[3] + d[5])) % 10;
        let digits: String = d.iter().map(|x| char::from(b'0' + x)).collect();
        format!("{}{}{digits}{check}", char::from(first), char::from(second))
    }
    pub fn mbi(&mut self) -> String {
        // CMS positions: 1 digit 1-9; letters without S, L, O, I, B, Z; "either" positions letter or digit.
        const A: &[u8] = b"ACDEFGHJKMNPQRTUVWXY";
        const AN: &[u8] = b"ACDEFGHJKMNPQRTUVWXY0123456789";
        const N: &[u8] = b"0123456789";
        let classes: [&[u8]; 11] = [b"123456789", A, AN, N, A, AN, N, A, A, N, N];
        let s: String = classes.iter().map(|set| char::from(*self.0.pick(set))).collect();
        if self.0.below(2) == 0 {
            s
        } else {
            format!("{}-{}-{}", &s[..4], &s[4..7], &s[7..])
        }
    }
    pub fn mrn(&mut self) -> String {
        match self.0.below(3) {
            0 => self.0.digits(8),
            1 => format!("A{}", self.0.digits(7)),
            _ => format!("{}-{}", self.0.digits(3), self.0.digits(5)),
        }
    }
    pub fn member(&mut self) -> String {
        format!("{}{}", self.0.pick(&["XYZ", "BCB", "UHC", "AET"]), self.0.digits(9))
    }
    pub fn serial(&mut self) -> String {
        format!("SN-{}-{}", self.0.digits(5), self.0.upper_digits(2))
    }
    pub fn openai(&mut self) -> String {
        format!("sk-proj-{}", self.0.alnum(48))
    }
    pub fn anthropic(&mut self) -> String {
        format!("sk-ant-api03-{}", self.0.alnum(86))
    }
    pub fn aws(&mut self) -> String {
        format!("AKIA{}", self.0.upper_digits(16))
    }
    pub fn github(&mut self) -> String {
        format!("ghp_{}", self.0.alnum(36))
    }
    pub fn jwt(&mut self) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b.encode(format!(r#"{{"sub":"{}","iat":{}}}"#, self.0.digits(8), self.0.digits(10)));
        let sig = b.encode((0..32).map(|_| self.0.below(256) as u8).collect::<Vec<u8>>());
        format!("{header}.{payload}.{sig}")
    }
    pub fn token(&mut self) -> String {
        self.0.alnum(32)
    }
    pub fn password(&mut self) -> String {
        format!("{}{}!", self.0.alnum(8), self.0.digits(2))
    }
    pub fn first(&mut self) -> &'static str {
        FIRST[self.0.below(FIRST.len() as u64) as usize]
    }
    pub fn last(&mut self) -> &'static str {
        LAST[self.0.below(LAST.len() as u64) as usize]
    }
}

/// The structured kinds the corpus holds (names are measured but not held to the bar).
pub const STRUCTURED: &[Kind] = &[
    Kind::Ssn,
    Kind::Phone,
    Kind::Email,
    Kind::Date,
    Kind::Address,
    Kind::Zip,
    Kind::CreditCard,
    Kind::Iban,
    Kind::Ip,
    Kind::Url,
    Kind::Npi,
    Kind::Dea,
    Kind::Mbi,
    Kind::Mrn,
    Kind::HealthPlan,
    Kind::DeviceSerial,
    Kind::ApiKey,
    Kind::Jwt,
    Kind::BearerToken,
    Kind::Password,
];

/// A clinical-note sentence, a chat message or a JSON-payload leaf holding one to three identifiers.
fn sentence(g: &mut Gen<'_>, t: &mut Text, style: u64) {
    let pick = g.0.below(32);
    match pick {
        0 => t.t("Pt SSN ").id(Kind::Ssn, &g.ssn()).t(" verified at intake."),
        1 => t.t("SSN: ").id(Kind::Ssn, &g.ssn_bare()).t(" (from insurance card)"),
        2 => t.t("Call back at ").id(Kind::Phone, &g.phone()).t(" after 5pm."),
        3 => t.t("Fax: ").id(Kind::Phone, &g.phone_bare()).t(" — records requested."),
        4 => t.t("Daughter lives abroad, reachable on ").id(Kind::Phone, &g.e164()).t("."),
        5 => t.t("Please e-mail results to ").id(Kind::Email, &g.email()).t(" today."),
        6 => t.t("DOB ").id(Kind::Date, &g.date()).t(", admitted ").id(Kind::Date, &g.date()).t(" via ED."),
        7 => t.t("Discharged on ").id(Kind::Date, &g.date()).t(" in stable condition."),
        8 => t.t("Home address: ").id(Kind::Address, &g.address()).t("."),
        9 => t.t("Mail the kit to ZIP ").id(Kind::Zip, &g.zip4()).t(" please."),
        10 => t.t("Copay charged to card ").id(Kind::CreditCard, &g.card()).t(" on file."),
        11 => t.t("Refund to IBAN ").id(Kind::Iban, &g.iban()).t(" requested."),
        12 => t.t("Login from ").id(Kind::Ip, &g.ipv4()).t(" flagged."),
        13 => t.t("Device IPv6 ").id(Kind::Ip, &g.ipv6()).t(" seen on the ward network."),
        14 => t.t("Portal link: ").id(Kind::Url, &g.url()).t(" (expires in 24h)"),
        15 => t.t("Referring NPI ").id(Kind::Npi, &g.npi()).t(", prescriber DEA ").id(Kind::Dea, &g.dea()).t("."),
        16 => t.t("Medicare MBI ").id(Kind::Mbi, &g.mbi()).t(" confirmed."),
        17 => t.t("MRN: ").id(Kind::Mrn, &g.mrn()).t("; chart pulled."),
        18 => t.t("Medical record #").id(Kind::Mrn, &g.mrn()).t(" merged."),
        19 => t.t("Member ID: ").id(Kind::HealthPlan, &g.member()).t(", plan active."),
        20 => t.t("Pacemaker serial number ").id(Kind::DeviceSerial, &g.serial()).t(" interrogated."),
        21 => t.t("my key is ").id(Kind::ApiKey, &g.openai()).t(" can you check it"),
        22 => t.t("ANTHROPIC_API_KEY=").id(Kind::ApiKey, &g.anthropic()),
        23 => t.t("aws key ").id(Kind::ApiKey, &g.aws()).t(" and token ").id(Kind::ApiKey, &g.github()),
        24 => t.t("session token ").id(Kind::Jwt, &g.jwt()).t(" expired"),
        25 => t.t("Authorization: Bearer ").id(Kind::BearerToken, &g.token()),
        26 => {
            let user = g.first().to_lowercase();
            t.t("db url postgres://").t(&user).t(":").id(Kind::Password, &g.password()).t("@db.internal:5432/ehr")
        }
        27 => {
            let (f, l) = (g.first(), g.last());
            t.t("Patient: ").id(Kind::Name, &format!("{f} {l}")).t(", seen by Dr. ").id(Kind::Name, g.last()).t(".")
        }
        28 => t.t("Mrs. ").id(Kind::Name, g.last()).t(" called about her refill."),
        // Names without a label or title: the rules do not catch these (reported, not hidden).
        30 => t.t("Spoke with ").id(Kind::Name, &format!("{} {}", g.first(), g.last())).t(" about the discharge plan."),
        31 => t.t("").id(Kind::Name, &format!("{} {}", g.first(), g.last())).t(" asked to reschedule."),
        _ => t
            .t("Emergency contact: ")
            .id(Kind::Name, &format!("{} {}", g.first(), g.last()))
            .t(", ")
            .id(Kind::Phone, &g.phone()),
    };
    if style == 1 {
        t.t(" thx");
    }
}

/// A clean near-miss: nothing in it may be masked.
fn clean(g: &mut Gen<'_>, t: &mut Text) {
    let r = &mut *g.0;
    match r.below(16) {
        0 => t.t(&format!("Order #{} shipped, total ${}.{:02}", r.digits(8), r.range(1, 9999), r.below(100))),
        1 => t.t(&format!(
            "Dx: {} ({})",
            r.pick(&["E11.9", "I10", "J45.909", "M54.5", "Z79.4", "F32.A"]),
            r.pick(&["ICD-10", "ICD-10-CM"])
        )),
        2 => t.t(&format!(
            "HbA1c {}.{}%, glucose {} mg/dL, creatinine 0.{} mg/dL",
            r.range(5, 12),
            r.below(10),
            r.range(70, 300),
            r.range(5, 9)
        )),
        3 => t.t(&format!(
            "BP {}/{}, HR {}, SpO2 {}%",
            r.range(90, 180),
            r.range(50, 110),
            r.range(50, 120),
            r.range(88, 100)
        )),
        4 => t.t(&format!("Diagnosed in {}, surgery in {}.", r.range(1980, 2024), r.range(1990, 2025))),
        5 => t.t(&format!(
            "Take {} mg twice daily for {} days; dispense {} tablets.",
            r.pick(&["250", "500", "10", "40"]),
            r.range(5, 30),
            r.range(10, 90)
        )),
        6 => {
            // A card number whose Luhn check fails.
            let mut n = format!("4{}", r.digits(14));
            let bad = (luhn_digit(&to_digits(&n)) + 1) % 10;
            n.push(char::from(b'0' + bad));
            t.t(&format!("Ref {} {} {} {}", &n[..4], &n[4..8], &n[8..12], &n[12..]))
        }
        7 => {
            let body = format!("1{}", r.digits(8));
            let mut full = vec![8, 0, 8, 4, 0];
            full.extend(to_digits(&body));
            let bad = (luhn_digit(&full) + 3) % 10;
            t.t(&format!("Claim {body}{bad} pending"))
        }
        8 => t.t(&format!(
            "Invalid SSN {}-{:02}-{:04} rejected",
            r.pick(&["000", "666", "900", "987"]),
            r.range(1, 99),
            r.range(1, 9999)
        )),
        9 => t.t(&format!(
            "Lot {}{}, expires {}/{}",
            r.pick(&["AB", "KX"]),
            r.digits(5),
            r.range(1, 12),
            r.range(26, 30)
        )),
        10 => t.t(&format!(
            "Invoice INV-{}-{} for ${},{:03}.00",
            r.range(2019, 2025),
            r.digits(5),
            r.range(1, 99),
            r.below(1000)
        )),
        11 => t.t(&format!(
            "Model gpt-4o-2024-08-06 answered in {} ms using {} tokens.",
            r.range(100, 5000),
            r.range(10, 4000)
        )),
        12 => t.t(&format!(
            "Room {}, bed {}; visit at {}:{:02}.",
            r.range(100, 999),
            r.range(1, 4),
            r.range(7, 19),
            r.below(60)
        )),
        13 => t.t(&format!(
            "Version {}.{}.{} deployed; {} of {} checks passed.",
            r.below(5),
            r.below(20),
            r.below(50),
            r.range(1, 50),
            r.range(50, 99)
        )),
        14 => t.t(&format!(
            "WBC {}.{} x10^9/L, platelets {} x10^9/L, Q{} {} results",
            r.range(3, 12),
            r.below(10),
            r.range(140, 400),
            r.range(1, 4),
            r.range(2019, 2025)
        )),
        _ => t.t(&format!("Patient denies chest pain; ambulating {} m; pain {}/10.", r.range(10, 200), r.range(0, 10))),
    };
}

/// `n` snippets from `seed`: about 40% clinical notes, 25% chat, 20% JSON payloads, 15% clean near-misses.
pub fn corpus(seed: u64, n: usize) -> Vec<Snippet> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let roll = rng.below(100);
        let mut g = Gen(&mut rng);
        let snippet = if roll < 40 {
            let mut t = Text::default();
            sentence(&mut g, &mut t, 0);
            t.t(" ");
            clean(&mut g, &mut t);
            Snippet { source: "note", leaves: vec![t.leaf("text")] }
        } else if roll < 65 {
            let mut t = Text::default();
            t.t("hi, ");
            sentence(&mut g, &mut t, 1);
            Snippet { source: "chat", leaves: vec![t.leaf("text")] }
        } else if roll < 85 {
            let mut input = Text::default();
            sentence(&mut g, &mut input, 0);
            let mut output = Text::default();
            output.t("Summary: ");
            sentence(&mut g, &mut output, 0);
            let mut meta = Text::default();
            clean(&mut g, &mut meta);
            Snippet { source: "json", leaves: vec![input.leaf("input"), output.leaf("output"), meta.leaf("context")] }
        } else {
            let mut t = Text::default();
            clean(&mut g, &mut t);
            t.t(" ");
            clean(&mut g, &mut t);
            Snippet { source: "clean", leaves: vec![t.leaf("text")] }
        };
        out.push(snippet);
    }
    out
}
