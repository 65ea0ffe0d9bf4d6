#[observer::agent_component(capture = "everything")]
fn classify(query: &str) -> String {
    query.to_owned()
}

fn main() {
    let _ = classify("q");
}
