struct Client;

#[observer::agent_component(skip(clinet))]
fn retrieve(client: &Client, top_k: u32) -> u32 {
    let _ = client;
    top_k
}

fn main() {
    let _ = retrieve(&Client, 3);
}
