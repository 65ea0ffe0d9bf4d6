#[observer::audit(create, Document, id = ret.id)]
fn create_doc(title: &str) {
    let _ = title;
}

fn main() {
    create_doc("Report");
}
