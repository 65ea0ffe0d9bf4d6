#[observer::agent_component(name = "Classifier")]
pub struct Classifier {
    model: String,
}

fn main() {}
