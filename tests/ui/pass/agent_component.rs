//! `#[agent_component]` on the shapes of fn it supports.

use serde::Serialize;

struct Client;

#[derive(Serialize)]
struct Answer {
    text: String,
}

/// A component that is a method, with a skipped non-serialisable argument.
struct Agent {
    client: Client,
}

impl Agent {
    #[observer::agent_component(name = "Generator", kind = "llm", capture = "request", skip(client))]
    async fn generate(&self, prompt: &str, client: &Client) -> Result<Answer, std::io::Error> {
        let _ = (client, &self.client);
        Ok(Answer { text: prompt.to_owned() })
    }
}

/// Generic, `impl Trait` argument, a return type without `Serialize` (recorded as null).
#[observer::agent_component]
fn pipeline<T: Serialize>(items: Vec<T>, extra: impl Serialize) -> std::sync::Mutex<usize> {
    let _ = extra;
    std::sync::Mutex::new(items.len())
}

#[observer::agent_component(kind = "tool")]
fn early_return(x: u32) -> Result<u32, String> {
    if x == 0 {
        return Err("zero".into());
    }
    let y = x.checked_mul(2).ok_or("overflow")?;
    Ok(y)
}

fn main() {
    let agent = Agent { client: Client };
    let _ = agent.generate("hi", &Client);
    let _ = pipeline(vec![1, 2], "x");
    let _ = early_return(2);
}
