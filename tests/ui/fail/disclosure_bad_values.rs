#[observer::audit(
    share,
    Document,
    id = doc_id,
    retention_days = "six years",
    data_categories = "diagnoses",
    immutable = 1
)]
fn disclose(doc_id: &str) {
    let _ = doc_id;
}

fn main() {
    disclose("doc-1");
}
