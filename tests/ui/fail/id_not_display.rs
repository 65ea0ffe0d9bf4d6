struct DocId(u32);

#[observer::audit(read, Document, id = doc_id)]
fn read_doc(doc_id: DocId) -> u32 {
    doc_id.0
}

fn main() {
    read_doc(DocId(1));
}
