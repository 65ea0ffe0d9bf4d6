struct Client;

#[observer::agent_component(name = "Retriever")]
fn retrieve(client: &Client, top_k: u32) -> Vec<String> {
    let _ = client;
    vec![String::new(); top_k as usize]
}

fn main() {
    let _ = retrieve(&Client, 3);
}
