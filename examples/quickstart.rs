//! Quickstart: runs with no services. Initialises observer with the JSON-lines file sink, takes the actor
//! from a sample Keycloak claim set, records CRUD, login and LLM events (with cost) and an `#[audit]`-annotated
//! call, then prints where the events went.
//!
//! ```sh
//! cargo run --example quickstart
//! OBSERVER_AUDIT_FILE=/tmp/audit.jsonl cargo run --example quickstart
//! ```

use observer::{audit, ActorContext, ChangeRecord, ObserverConfig, ResourceType};
use serde_json::json;

#[derive(Debug)]
struct Document {
    id: String,
    title: String,
}

/// Every call records a CREATE of a DOCUMENT whose id is only known once the call returns.
#[observer::audit(create, Document, id = ret.id, name = title)]
fn create_document(title: &str) -> Result<Document, std::io::Error> {
    if title.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a document needs a title"));
    }
    Ok(Document { id: format!("doc-{}", title.len()), title: title.to_owned() })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = observer::init(ObserverConfig {
        service_name: "quickstart".into(),
        service_version: "1.0.0".into(),
        environment: "development".into(),
        ..Default::default() // default sink: observer-audit.jsonl (OBSERVER_AUDIT_FILE overrides it)
    })?;

    // The actor, from a Keycloak access token's claims (the guide's example payload).
    let claims = json!({
        "sub": "user-123",
        "email": "user@example.com",
        "name": "John Doe",
        "preferred_username": "johndoe",
        "realm_access": {"roles": ["admin", "user"]},
        "groups": ["/org/engineering"],
    });
    let actor = ActorContext::from_keycloak_token(&claims, None)?;
    observer::set_actor_context(Some(actor));

    // CRUD
    audit::log_create(ResourceType::Document, "doc-123")
        .resource_name("Project Proposal")
        .description("Created new project proposal document")
        .emit()?;
    audit::log_read(ResourceType::Document, "doc-123").description("User viewed document").emit()?;
    audit::log_update(ResourceType::Document, "doc-123")
        .changes([ChangeRecord::new("title", "Draft", "Final"), ChangeRecord::new("status", "pending", "approved")])
        .description("Document approved and finalized")
        .emit()?;
    audit::log_delete(ResourceType::Document, "doc-123").description("Document deleted by user").emit()?;

    // Authentication
    audit::log_login("user-123").success(true).ip_address("192.168.1.100").user_agent("Mozilla/5.0").emit()?;
    audit::log_login("user-123").success(false).reason("Invalid password").ip_address("192.168.1.100").emit()?;

    // An LLM call, priced with genai-prices
    let cost = observer::calculate_cost("openai", "gpt-4o", 150, 75);
    let llm = audit::log_llm_interaction("openai", "gpt-4o")
        .flow_id("customer-support-flow")
        .input_tokens(150)
        .output_tokens(75)
        .cost(cost.total_cost)
        .prompt_summary("Customer inquiry about billing")
        .response_summary("Provided billing information")
        .emit()?;
    println!("LLM call cost: ${:.6} ({} in / {} out)", cost.total_cost, cost.input_tokens, cost.output_tokens);

    // The macro: one success, one failure (recorded with outcome FAILURE, error returned to us)
    let doc = create_document("Quarterly report")?;
    println!("created {} ({})", doc.id, doc.title);
    if let Err(e) = create_document("") {
        println!("create failed as expected: {e}");
    }

    println!("last event:\n{}", serde_json::to_string_pretty(&llm)?);
    let sinks = guard.sink_names().join(", ");
    let emitted = observer::stats().map_or(0, |s| s.accepted);
    drop(guard); // flushes every pending event
    println!("{emitted} audit events written to {sinks}");
    Ok(())
}
