// The guide's Python keyword arguments, written as they are in Python.
#[observer::audit(action = "CREATE", resource_type = "DOCUMENT", resource_id = doc_id)]
fn create_doc(doc_id: &str) {
    let _ = doc_id;
}

fn main() {
    create_doc("doc-1");
}
