#[observer::audit(
    share,
    Document,
    id = doc_id,
    recipient = recipient,
    purpose = HealthcareOperations,
    patient = mrn,
    data_categories = ["diagnoses", "lab_results"],
    retention_days = 2190,
    compliance_frameworks = ["HIPAA"],
    immutable = false
)]
fn disclose(doc_id: &str, recipient: &str, mrn: u64) -> Result<(), std::io::Error> {
    let _ = (doc_id, recipient, mrn);
    Ok(())
}

fn main() {
    // Compiled, not run: running it would record an event.
    let _f: fn(&str, &str, u64) -> Result<(), std::io::Error> = disclose;
}
