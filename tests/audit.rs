//! The audit helpers produce the guide's JSON, with the reference's event types, actions and severities.

mod common;

use common::{memory_sink, recorded_json};
use observer::{
    audit, get_audit_logger, ActorContext, AuditAction, AuditEventType, AuditSeverity, ChangeRecord, InitStatus,
    ObserverConfig, ResourceType,
};
use serde_json::json;

fn with_actor<R>(f: impl FnOnce() -> R) -> R {
    observer::actor::with_actor_sync(
        ActorContext {
            email: Some("user@example.com".into()),
            roles: vec!["admin".into()],
            ..ActorContext::new("user-123")
        },
        f,
    )
}

fn assert_common(j: &serde_json::Value) {
    let id = j["event_id"].as_str().expect("event_id");
    assert!(id.starts_with("evt_") && id.len() == 40, "{id}");
    let ts = j["timestamp"].as_str().expect("timestamp");
    assert!(ts.ends_with('Z'), "{ts}");
    chrono_free_rfc3339_check(ts);
    assert_eq!(j["service_name"], "test-service");
    assert_eq!(j["service_version"], "9.9.9");
    assert_eq!(j["environment"], "test");
    assert_eq!(j["schema_version"], "1.0");
    assert!(j["metadata"].is_object());
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`
fn chrono_free_rfc3339_check(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 27, "{ts}");
    assert_eq!((b[4], b[7], b[10], b[13], b[16], b[19]), (b'-', b'-', b'T', b':', b':', b'.'), "{ts}");
}

#[test]
fn log_create_matches_the_guide() {
    memory_sink();
    let event = with_actor(|| {
        audit::log_create(ResourceType::Document, "doc-create-1")
            .resource_name("Project Proposal")
            .description("Created new project proposal document")
            .emit()
            .unwrap()
    });
    let j = recorded_json(&event);
    assert_common(&j);
    assert_eq!(j["audit_type"], "DATA_MODIFICATION");
    assert_eq!(j["action"], "CREATE");
    assert_eq!(j["resource_type"], "DOCUMENT");
    assert_eq!(j["resource_id"], "doc-create-1");
    assert_eq!(j["resource_name"], "Project Proposal");
    assert_eq!(j["description"], "Created new project proposal document");
    assert_eq!(
        j["actor"],
        json!({"actor_id": "user-123", "actor_type": "user", "email": "user@example.com", "roles": ["admin"],
               "name": null, "username": null, "groups": [], "session_id": null, "ip_address": null,
               "user_agent": null, "tenant_id": null, "organization_id": null})
    );
    assert_eq!(j["outcome"], "SUCCESS");
    assert_eq!(j["severity"], "INFO");
    assert_eq!(j["metadata"], json!({}));
    assert_eq!(j["changes"], json!([]), "every field is present, empty changes too");
    assert_eq!((&j["trace_id"], &j["span_id"]), (&json!(null), &json!(null)), "unknown is null");
    // the returned event is the recorded one
    assert_eq!(serde_json::to_value(&event).unwrap(), j);
}

#[test]
fn read_update_delete() {
    memory_sink();
    let read = with_actor(|| {
        audit::log_read(ResourceType::Document, "doc-r").description("User viewed document").emit().unwrap()
    });
    let j = recorded_json(&read);
    assert_eq!(
        (j["audit_type"].as_str(), j["action"].as_str(), j["severity"].as_str()),
        (Some("DATA_ACCESS"), Some("READ"), Some("INFO"))
    );

    let update = with_actor(|| {
        audit::log_update(ResourceType::Document, "doc-u")
            .changes([ChangeRecord::new("title", "Draft", "Final"), ChangeRecord::new("status", "pending", "approved")])
            .description("Document approved and finalized")
            .emit()
            .unwrap()
    });
    let j = recorded_json(&update);
    assert_eq!((j["audit_type"].as_str(), j["action"].as_str()), (Some("DATA_MODIFICATION"), Some("UPDATE")));
    assert_eq!(
        j["changes"],
        json!([
            {"field": "title", "old_value": "Draft", "new_value": "Final"},
            {"field": "status", "old_value": "pending", "new_value": "approved"}
        ])
    );

    let delete = audit::log_delete(ResourceType::User, "user-del").emit().unwrap();
    let j = recorded_json(&delete);
    assert_eq!(
        (j["audit_type"].as_str(), j["action"].as_str(), j["severity"].as_str()),
        (Some("DATA_MODIFICATION"), Some("DELETE"), Some("MEDIUM"))
    );
    assert_eq!(j["description"], "Deleted USER user-del", "default description");
}

#[test]
fn login_success_failure_and_logout() {
    memory_sink();
    let ok = audit::log_login("user-login-ok")
        .success(true)
        .ip_address("192.168.1.100")
        .user_agent("Mozilla/5.0...")
        .emit()
        .unwrap();
    let j = recorded_json(&ok);
    assert_eq!(
        (j["audit_type"].as_str(), j["action"].as_str(), j["resource_type"].as_str()),
        (Some("AUTHENTICATION"), Some("LOGIN"), Some("USER"))
    );
    assert_eq!((j["outcome"].as_str(), j["severity"].as_str()), (Some("SUCCESS"), Some("INFO")));
    // IP addresses are identifiers (HIPAA Safe Harbor): masked by the default redaction policy in what is recorded.
    assert_eq!(j["metadata"], json!({"ip_address": "[IP]", "user_agent": "Mozilla/5.0..."}));
    assert_eq!(j["actor"]["actor_id"], "user-login-ok", "without a context actor the user logging in is the actor");

    let failed = audit::log_login("user-login-bad")
        .success(false)
        .reason("Invalid password")
        .ip_address("192.168.1.100")
        .emit()
        .unwrap();
    let j = recorded_json(&failed);
    assert_eq!((j["outcome"].as_str(), j["severity"].as_str()), (Some("FAILURE"), Some("MEDIUM")));
    assert_eq!(j["metadata"]["reason"], "Invalid password");

    let out = with_actor(|| audit::log_logout("user-123").emit().unwrap());
    let j = recorded_json(&out);
    assert_eq!(
        (j["audit_type"].as_str(), j["action"].as_str(), j["resource_id"].as_str()),
        (Some("AUTHENTICATION"), Some("LOGOUT"), Some("user-123"))
    );
    assert_eq!(j["actor"]["email"], "user@example.com", "a context actor wins over the fallback");
}

#[test]
fn llm_interaction_keeps_everything() {
    memory_sink();
    let e = audit::log_llm_interaction("openai", "gpt-4o")
        .flow_id("customer-support-flow")
        .input_tokens(150)
        .output_tokens(75)
        .cost(0.025)
        .prompt_summary("Customer inquiry about billing")
        .response_summary("Provided billing information")
        .emit()
        .unwrap();
    let j = recorded_json(&e);
    assert_eq!(
        (j["audit_type"].as_str(), j["action"].as_str(), j["resource_type"].as_str()),
        (Some("AI_INTERACTION"), Some("EXECUTE"), Some("LLM_MODEL"))
    );
    assert_eq!(j["resource_id"], "gpt-4o");
    assert_eq!(
        j["metadata"],
        json!({
            "model": "gpt-4o", "provider": "openai", "input_tokens": 150, "output_tokens": 75, "total_tokens": 225,
            "cost_usd": 0.025, "flow_id": "customer-support-flow",
            "prompt_summary": "Customer inquiry about billing", "response_summary": "Provided billing information"
        })
    );

    // Without an explicit cost it is computed with the cost module.
    let e = audit::log_llm_interaction("openai", "gpt-4o").input_tokens(1000).output_tokens(500).emit().unwrap();
    let j = recorded_json(&e);
    let expected = observer::calculate_cost("openai", "gpt-4o", 1000, 500).total_cost;
    assert_eq!(j["metadata"]["cost_usd"].as_f64(), Some(expected));
}

#[test]
fn data_export_keeps_everything() {
    memory_sink();
    let e = audit::log_data_export(ResourceType::Database, "customers-table")
        .export_format("CSV")
        .record_count(1500)
        .destination("s3://exports/customers.csv")
        .reason("Monthly analytics report")
        .emit()
        .unwrap();
    let j = recorded_json(&e);
    assert_eq!(
        (j["audit_type"].as_str(), j["action"].as_str(), j["severity"].as_str()),
        (Some("DATA_EXPORT"), Some("EXPORT"), Some("MEDIUM"))
    );
    assert_eq!(
        j["metadata"],
        json!({"export_format": "CSV", "record_count": 1500, "destination": "s3://exports/customers.csv", "reason": "Monthly analytics report"})
    );
}

#[test]
fn custom_event_through_the_logger() {
    memory_sink();
    let e = get_audit_logger()
        .log(AuditEventType::SecurityEvent, AuditAction::Execute, ResourceType::Api, "api/v1/admin/reset")
        .description("Admin password reset executed")
        .severity("HIGH".parse::<AuditSeverity>().unwrap())
        .metadata("target_user", "user-456")
        .metadata("requested_by", "admin-123")
        .emit()
        .unwrap();
    let j = recorded_json(&e);
    assert_eq!(
        (j["audit_type"].as_str(), j["action"].as_str(), j["resource_type"].as_str()),
        (Some("SECURITY_EVENT"), Some("EXECUTE"), Some("API"))
    );
    assert_eq!(j["severity"], "HIGH");
    assert_eq!(j["metadata"], json!({"target_user": "user-456", "requested_by": "admin-123"}));
}

#[test]
fn init_is_idempotent() {
    memory_sink();
    let again = observer::init(ObserverConfig { service_name: "service-2".into(), ..Default::default() }).unwrap();
    assert_eq!(again.status(), InitStatus::AlreadyInitialized);
    drop(again); // an ignored guard shuts nothing down
    assert!(observer::is_initialized());
    let e = audit::log_read(ResourceType::File, "idempotent-check").emit().unwrap();
    assert_eq!(recorded_json(&e)["service_name"], "test-service", "the first init wins");
}

#[test]
fn huge_metadata_is_kept_and_vocabulary_parses() {
    memory_sink();
    let big = "x".repeat(1 << 20);
    let e = audit::log_create(ResourceType::Dataset, "huge-meta").metadata("blob", big.clone()).emit().unwrap();
    assert_eq!(recorded_json(&e)["metadata"]["blob"].as_str().map(str::len), Some(big.len()));
    assert_eq!("VECTOR_STORE".parse::<ResourceType>().unwrap(), ResourceType::VectorStore);
    let err = "Documnet".parse::<ResourceType>().unwrap_err().to_string();
    assert!(err.contains("DOCUMENT"), "{err}");
}

/// The JSON type of a value: `"null"`, `"string"`, `"number"`, `"bool"`, `"array"`, `"object"`.
fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Every event has the same keys (top level and in `actor`), each key one JSON type (or `null` when unknown),
/// and no value is an empty string: a consumer with a fixed schema reads every event the same way.
#[test]
fn every_kind_of_event_has_one_shape_and_no_empty_strings() {
    use std::collections::{BTreeMap, BTreeSet};
    memory_sink();
    let full_actor = ActorContext {
        email: Some("user@example.com".into()),
        roles: vec!["admin".into()],
        ..ActorContext::new("shape-user")
    };
    let events = [
        with_actor(|| {
            audit::log_create(ResourceType::Document, "shape-doc-1")
                .resource_name("Project Proposal")
                .description("Created")
                .changes([ChangeRecord::new("title", "a", "b")])
                .emit()
                .unwrap()
        }),
        audit::log_read(ResourceType::Document, "shape-doc-2").emit().unwrap(),
        // unknown id and an empty name (what a failed `#[audit(create, .., id = ret.id)]` records)
        audit::log_create(ResourceType::Document, "").resource_name("").description("shape-no-id").emit().unwrap(),
        audit::log_login("shape-login").success(false).reason("bad password").emit().unwrap(),
        audit::log_logout("shape-logout").actor(full_actor.clone()).emit().unwrap(),
        audit::log_llm_interaction("openai", "gpt-4o").input_tokens(3).output_tokens(2).emit().unwrap(),
        audit::log_data_export(ResourceType::Database, "shape-db").record_count(1).emit().unwrap(),
        get_audit_logger()
            .log(AuditEventType::SecurityEvent, AuditAction::Execute, ResourceType::Api, "shape-api")
            .actor(ActorContext::new(""))
            .emit()
            .unwrap(),
        get_audit_logger()
            .log_event(observer::AuditEvent::new(
                AuditEventType::DataAccess,
                AuditAction::Read,
                ResourceType::File,
                "shape-raw",
            ))
            .unwrap(),
    ];
    let jsons: Vec<serde_json::Value> = events.iter().map(|e| recorded_json(e)).collect();

    // key -> the non-null types seen; per event the key sets must be equal
    let mut top_types: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut actor_types: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut key_sets = BTreeSet::new();
    let mut actor_key_sets = BTreeSet::new();
    for j in &jsons {
        let o = j.as_object().unwrap();
        key_sets.insert(o.keys().cloned().collect::<Vec<_>>());
        for (k, v) in o {
            assert_ne!(v, &json!(""), "{k} is an empty string in {j}");
            let t = top_types.entry(k.clone()).or_default();
            if !v.is_null() {
                t.insert(json_type(v));
            }
        }
        if let Some(a) = o.get("actor").and_then(|a| a.as_object()) {
            actor_key_sets.insert(a.keys().cloned().collect::<Vec<_>>());
            for (k, v) in a {
                assert_ne!(v, &json!(""), "actor.{k} is an empty string in {j}");
                let t = actor_types.entry(k.clone()).or_default();
                if !v.is_null() {
                    t.insert(json_type(v));
                }
            }
        }
    }
    assert_eq!(key_sets.len(), 1, "events of different kinds have different keys: {key_sets:#?}");
    assert_eq!(actor_key_sets.len(), 1, "actors have different keys: {actor_key_sets:#?}");
    for (k, t) in top_types.iter().chain(actor_types.iter()) {
        assert!(t.len() <= 1, "{k} has several types: {t:?}");
    }
    // The guide's fields are all there, and the actor's.
    let keys = key_sets.into_iter().next().unwrap();
    for k in [
        "event_id",
        "timestamp",
        "service_name",
        "audit_type",
        "action",
        "resource_type",
        "resource_id",
        "resource_name",
        "actor",
        "outcome",
        "severity",
        "metadata",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
    }
    let actor_keys = actor_key_sets.into_iter().next().unwrap();
    for k in ["actor_id", "email", "roles"] {
        assert!(actor_keys.iter().any(|x| x == k), "actor.{k} missing from {actor_keys:?}");
    }
    // unknown is null, not left out and not ""
    let no_id = jsons.iter().find(|j| j["description"] == "shape-no-id").unwrap();
    assert_eq!((&no_id["resource_id"], &no_id["resource_name"]), (&json!(null), &json!(null)));
    // the event returned by emit serialises like the recorded one
    assert_eq!(serde_json::to_value(&*events[2]).unwrap(), *no_id);
}

#[test]
fn llm_interaction_takes_provider_then_model_like_calculate_cost() {
    memory_sink();
    // The order of `calculate_cost(provider, model, ..)`.
    let e = audit::log_llm_interaction("openai", "gpt-4o").input_tokens(1000).output_tokens(500).emit().unwrap();
    let j = recorded_json(&e);
    assert_eq!(j["metadata"]["provider"], "openai");
    assert_eq!(j["metadata"]["model"], "gpt-4o");
    assert_eq!(j["resource_id"], "gpt-4o");
    let expected = observer::calculate_cost("openai", "gpt-4o", 1000, 500);
    assert!(expected.price_found && expected.total_cost > 0.0);
    assert_eq!(j["metadata"]["cost_usd"].as_f64(), Some(expected.total_cost));
}

#[test]
fn llm_interaction_cost_is_written_without_float_noise() {
    memory_sink();
    // 0.1 + 0.2 is 0.30000000000000004 in binary floating point: money is written rounded to 1e-10 USD.
    let given = 0.1 + 0.2;
    assert_ne!(given.to_string(), "0.3");
    let e = audit::log_llm_interaction("openai", "gpt-4o").cost(given).emit().unwrap();
    let j = recorded_json(&e);
    assert_eq!(j["metadata"]["cost_usd"].to_string(), "0.3");
    // Computed costs too: at most 10 decimals whatever the token counts.
    for (input, output) in [(1500, 1500), (333, 777), (1, 3), (12_345, 6_789)] {
        let e = audit::log_llm_interaction("openai", "gpt-4o-mini")
            .input_tokens(input)
            .output_tokens(output)
            .emit()
            .unwrap();
        let cost = recorded_json(&e)["metadata"]["cost_usd"].as_f64().expect("cost_usd");
        assert!(cost > 0.0);
        assert_eq!(format!("{cost:.10}").parse::<f64>().unwrap(), cost, "{input}/{output}: more than 10 decimals");
    }
}
