#[observer::audit]
fn create_doc(doc_id: &str) {
    let _ = doc_id;
}

fn main() {
    create_doc("doc-1");
}
