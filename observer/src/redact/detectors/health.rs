//! Health identifiers: NPI (Luhn over 80840 + the number), DEA numbers (check digit), Medicare MBIs (position
//! classes), and the numbers known by their label: medical records, health plans, devices, licences.

use super::{labelled, spec, Check, Ctx, Spec, LABELLED, STRUCTURED};
use crate::redact::policy::Kind;
use crate::redact::validators;

/// The value of a labelled identifier: one token of letters, digits and inner dashes.
pub(super) const ID_VALUE: &str = r"[A-Za-z0-9][A-Za-z0-9-]{2,24}[A-Za-z0-9]";

pub(super) fn has_digit(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(c.value().bytes().any(|b| b.is_ascii_digit()))
}

fn npi(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(!c.in_longer_number() && validators::npi(c.value()))
}

fn dea(c: &Ctx<'_>) -> Option<(usize, usize)> {
    // The first letter is the registrant type.
    let first = c.value().as_bytes()[0];
    c.keep(b"ABCDEFGHJKLMPRSTUX".contains(&first) && validators::dea(c.value()))
}

fn mbi(c: &Ctx<'_>) -> Option<(usize, usize)> {
    c.keep(validators::mbi(c.value()))
}

const MRN: &[&str] = &[
    "MRN",
    "medical record number",
    "medical record no",
    "medical record #",
    "medical record",
    "med rec",
    "record number",
    "chart number",
    "chart no",
    "chart #",
    "patient id",
    "patient number",
    "patient #",
    "hospital number",
];

const PLAN: &[&str] = &[
    "member id",
    "member number",
    "member #",
    "member no",
    "subscriber id",
    "subscriber number",
    "subscriber #",
    "policy number",
    "policy no",
    "policy #",
    "health plan id",
    "health plan number",
    "group number",
    "group no",
    "group #",
    "insurance id",
    "beneficiary id",
    "medicaid id",
    "medicaid number",
    "medicaid #",
];

const DEVICE: &[&str] = &[
    "serial number",
    "serial no",
    "serial #",
    "S/N",
    "SN",
    "device id",
    "device serial",
    "UDI",
    "IMEI",
    "pacemaker serial",
];

const LICENSE: &[&str] = &[
    "license number",
    "license no",
    "license #",
    "licence number",
    "driver's license",
    "drivers license",
    "DL #",
    "DL no",
    "passport number",
    "passport no",
    "passport #",
    "certificate number",
];

fn labelled_spec(kind: Kind, labels: &[&str], extra: &[&str]) -> Spec {
    Spec {
        kind,
        pattern: labelled(labels, extra, ID_VALUE),
        check: Check::Builtin(has_digit),
        priority: LABELLED,
        action: None,
        needs_digit: true,
    }
}

pub(super) fn specs(mrn: &[&str], plan: &[&str], device: &[&str], license: &[&str]) -> Vec<Spec> {
    vec![
        labelled_spec(Kind::Mrn, MRN, mrn),
        labelled_spec(Kind::HealthPlan, PLAN, plan),
        labelled_spec(Kind::DeviceSerial, DEVICE, device),
        labelled_spec(Kind::License, LICENSE, license),
        spec(Kind::Npi, STRUCTURED, r"\b[12]\d{9}\b", npi),
        spec(Kind::Dea, STRUCTURED, r"\b[A-Z][A-Z9]\d{7}\b", dea),
        spec(
            Kind::Mbi,
            STRUCTURED,
            r"\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]{2}\d{2}\b",
            mbi,
        ),
    ]
}
