#[observer::audit(share, Document, id = doc_id, recipient = "Acme", purpose = Paymnt)]
fn disclose(doc_id: &str) {
    let _ = doc_id;
}

fn main() {
    disclose("doc-1");
}
