#[observer::audit(create, Document, id = doc_id, crate = "observer")]
fn create_doc(doc_id: &str) {
    let _ = doc_id;
}

fn main() {
    create_doc("doc-1");
}
