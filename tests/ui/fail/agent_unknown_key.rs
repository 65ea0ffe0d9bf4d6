#[observer::agent_component(nmae = "QueryClassifier")]
fn classify(query: &str) -> String {
    query.to_owned()
}

fn main() {
    let _ = classify("q");
}
