// Python's enum members (`ResourceType.DOCUMENT`) and a description, as keyword arguments.
#[observer::audit(resource_type = ResourceType.DOCUMENT, action = AuditAction.READ, description = "viewed")]
fn read_doc(doc_id: &str) {
    let _ = doc_id;
}

fn main() {
    read_doc("doc-1");
}
