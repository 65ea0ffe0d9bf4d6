//! `observer-trail accounting`: the accounting of disclosures (HIPAA 45 CFR 164.528) for one patient over a date
//! range, from JSON-lines audit trails (the file sink's lines and captured stderr with `observer-audit-fallback: `
//! lines), as a table or JSON. The patient's identifier is hashed with the patient key and never printed.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, Utc};
use clap::Args;
use observer::audit::{Accounting, AccountingEntry, PatientKey, PatientRef, PATIENT_KEY_FILE_ENV};

use crate::{CliError, Outcome};

/// Arguments of `observer-trail accounting`.
#[derive(Args)]
pub struct AccountingArgs {
    /// The patient's identifier (e.g. a medical record number), hashed with the patient key to match the events'
    /// `patient_ref`; it is never printed. Use `--patient-ref` instead if you do not hold the key.
    #[arg(long, required_unless_present = "patient_ref", conflicts_with = "patient_ref")]
    patient: Option<String>,
    /// The patient reference as written in events (`hmac-sha256:` + 64 hex digits), instead of `--patient`.
    #[arg(long)]
    patient_ref: Option<String>,
    /// First day (`YYYY-MM-DD`, from its start, UTC) or instant (RFC 3339) of the range, included.
    #[arg(long)]
    from: String,
    /// Last day (`YYYY-MM-DD`: the whole day is included, UTC) or an instant (RFC 3339: excluded) of the range.
    #[arg(long)]
    to: String,
    /// File holding the patient key (its bytes; one trailing newline ignored). Default: the file named by
    /// `OBSERVER_HMAC_KEY_FILE`.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Print the accounting as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// JSON-lines trails (audit files, captured stderr); `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// Runs `observer-trail accounting`.
pub fn run(args: AccountingArgs) -> Result<Outcome, CliError> {
    let patient = patient_ref(&args)?;
    let from = parse_bound(&args.from, false).ok_or_else(|| bad_date("--from", &args.from))?;
    let to = parse_bound(&args.to, true).ok_or_else(|| bad_date("--to", &args.to))?;
    let mut report = Accounting::new(&patient, from, to)?;
    for path in &args.files {
        let name = path.display().to_string();
        if path == Path::new("-") {
            report.read("stdin", std::io::stdin().lock())?;
        } else {
            let file = std::fs::File::open(path).map_err(|e| CliError(format!("{name}: {e}")))?;
            report.read(&name, BufReader::with_capacity(1 << 20, file))?;
        }
    }
    for m in &report.malformed {
        eprintln!("observer-trail: warning: {}:{}: {}", m.source, m.line, m.reason);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_table(&mut out, &report, &args.from, &args.to)?;
    }
    Ok(Outcome::Verified)
}

/// The patient reference: `--patient-ref` as given, or `--patient` hashed with the key.
fn patient_ref(args: &AccountingArgs) -> Result<PatientRef, CliError> {
    if let Some(written) = &args.patient_ref {
        return PatientRef::parse(written).ok_or_else(|| {
            CliError("--patient-ref must be a patient reference (`hmac-sha256:` + 64 lower-case hex digits)".into())
        });
    }
    let id = args.patient.as_deref().unwrap_or_default();
    if id.trim().is_empty() {
        return Err(CliError("--patient must not be empty".into()));
    }
    let key = match &args.key_file {
        Some(path) => PatientKey::from_file(path)?,
        None => PatientKey::from_env()?
            .ok_or_else(|| CliError(format!("no patient key: give --key-file or set {PATIENT_KEY_FILE_ENV}")))?,
    };
    Ok(key.reference(id))
}

/// A bound: `YYYY-MM-DD` is the start of that day (UTC), or for the end (`end`) the start of the next day, so
/// that the day is included; an RFC 3339 instant is taken as it is.
fn parse_bound(s: &str, end: bool) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = if end { day.checked_add_days(Days::new(1))? } else { day };
        return Some(day.and_hms_opt(0, 0, 0)?.and_utc());
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn bad_date(flag: &str, value: &str) -> CliError {
    CliError(format!("{flag} `{value}` is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp"))
}

/// The human table.
fn write_table(out: &mut impl Write, r: &Accounting, from: &str, to: &str) -> std::io::Result<()> {
    writeln!(out, "Accounting of disclosures")?;
    writeln!(out, "Patient reference: {}", r.patient_ref)?;
    writeln!(
        out,
        "Period: {} to {} (from {} included, to {} excluded)",
        from.trim(),
        to.trim(),
        r.from.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        r.to.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    )?;
    writeln!(out)?;
    let header = ["DATE (UTC)", "RECIPIENT", "PURPOSE", "DATA DISCLOSED", "DESCRIPTION", "EVENT"];
    let rows: Vec<[String; 6]> = r.entries.iter().map(row).collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', width[i] - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &header)?;
    for row in &rows {
        line(out, &row.each_ref().map(String::as_str))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} disclosure(s); {} other event(s) about the patient without a recipient (uses, not listed); {} event(s) \
         read from {} line(s); {} duplicate(s) listed once; {} malformed line(s) (on stderr)",
        r.entries.len(),
        r.uses,
        r.events,
        r.lines,
        r.duplicates,
        r.malformed.len()
    )
}

/// One table row; a long description is cut at 60 characters.
fn row(e: &AccountingEntry) -> [String; 6] {
    let one_line = |s: &str| s.replace(['\n', '\r', '\t'], " ");
    let mut description = one_line(e.description.as_deref().unwrap_or("-"));
    if description.chars().count() > 60 {
        description = description.chars().take(59).collect::<String>() + "…";
    }
    let data = if e.data_categories.is_empty() { "-".to_owned() } else { e.data_categories.join(", ") };
    [
        e.date.format("%Y-%m-%d %H:%M:%S").to_string(),
        one_line(&e.recipient),
        e.purpose_of_use.clone().unwrap_or_else(|| "-".into()),
        one_line(&data),
        description,
        e.event_id.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_bounds() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(parse_bound("2026-03-01", false), Some(t("2026-03-01T00:00:00Z")));
        assert_eq!(parse_bound("2026-03-31", true), Some(t("2026-04-01T00:00:00Z")), "the last day is included");
        assert_eq!(parse_bound("2026-03-31T12:00:00+02:00", true), Some(t("2026-03-31T10:00:00Z")));
        assert_eq!(parse_bound("31/03/2026", false), None);
        assert_eq!(parse_bound("2026-02-30", false), None);
    }
}
