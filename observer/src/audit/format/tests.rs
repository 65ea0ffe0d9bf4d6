use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::{ActorContext, AuditAction, AuditEventType, AuditOutcome, ResourceType};

fn ev(action: AuditAction) -> AuditEvent {
    let mut e = AuditEvent::new(action.default_event_type(), action, ResourceType::Document, "doc-1");
    e.service_name = "svc".into();
    e
}

fn render_value(format: AuditFormat, e: &AuditEvent, extras: &Extras<'_>) -> Value {
    let mut out = Vec::new();
    render(format, e, extras, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn ocsf_class_activity_and_type_uid_follow_the_action() {
    for (action, class, activity) in [
        (AuditAction::Create, 6003, 1),
        (AuditAction::Read, 6003, 2),
        (AuditAction::Update, 6003, 3),
        (AuditAction::Delete, 6003, 4),
        (AuditAction::Export, 6003, 99),
        (AuditAction::Execute, 6003, 99),
        (AuditAction::Login, 3002, 1),
        (AuditAction::Logout, 3002, 2),
    ] {
        let v = render_value(AuditFormat::Ocsf, &ev(action), &Extras::default());
        assert_eq!(v["class_uid"], class, "{action}");
        assert_eq!(v["activity_id"], activity, "{action}");
        assert_eq!(v["type_uid"], class * 100 + activity, "{action}");
        assert_eq!(v["category_uid"], class / 1000, "{action}");
    }
    let v = render_value(AuditFormat::Ocsf, &ev(AuditAction::Export), &Extras::default());
    assert_eq!((v["activity_name"].as_str(), v["type_name"].as_str()), (Some("Export"), Some("API Activity: Other")));
}

#[test]
fn outcome_severity_actor_and_chain_are_carried() {
    let mut e = ev(AuditAction::Delete);
    e.outcome = AuditOutcome::Denied;
    e.severity = crate::AuditSeverity::Medium;
    e.metadata.insert("reason".into(), "not the owner".into());
    e.actor = Some(Arc::new(ActorContext::new("u-1").email("not-an-email").roles(["admin"])));
    e.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
    let chain = ChainFields { chain_id: "c1", seq: 7, hash: "ab" };
    let extras = Extras { chain: Some(chain) };
    let o = render_value(AuditFormat::Ocsf, &e, &extras);
    assert_eq!((o["status_id"].as_u64(), o["status_detail"].as_str()), (Some(2), Some("Denied: not the owner")));
    assert_eq!(o["severity_id"], 3);
    assert_eq!(o["actor"]["user"]["uid"], "u-1");
    assert_eq!(o["actor"]["user"]["groups"][0], serde_json::json!({"name": "admin", "type": "role"}));
    assert!(o["actor"]["user"].get("email_addr").is_none(), "an invalid e-mail is not an email_t");
    assert_eq!(o["unmapped"]["actor_email"], "not-an-email");
    assert_eq!(o["trace"]["uid"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(o["metadata"]["sequence"], 7);
    assert_eq!(o["unmapped"]["integrity"]["chain_id"], "c1");

    let f = render_value(AuditFormat::Fhir, &e, &extras);
    assert_eq!((f["action"].as_str(), f["outcome"].as_str()), (Some("D"), Some("4")));
    assert_eq!(f["outcomeDesc"], "DENIED: not the owner");
    assert_eq!(f["agent"][0]["who"]["identifier"]["value"], "u-1");
    assert_eq!(f["agent"][0]["requestor"], true);
    let subs = f["extension"][0]["extension"].as_array().unwrap();
    let sub = |u: &str| subs.iter().find(|s| s["url"] == u).cloned();
    assert_eq!(sub("chainSeq").unwrap()["valueString"], "7");
    assert_eq!(sub("eventId").unwrap()["valueString"], e.event_id.as_str());
    assert_eq!(f["id"].as_str(), e.event_id.strip_prefix("evt_"));
}

#[test]
fn no_actor_means_the_recording_service_acted() {
    let e = ev(AuditAction::Read);
    let o = render_value(AuditFormat::Ocsf, &e, &Extras::default());
    assert_eq!(o["actor"], serde_json::json!({"app_name": "svc"}));
    let f = render_value(AuditFormat::Fhir, &e, &Extras::default());
    assert_eq!(f["agent"][0]["who"]["display"], "svc");
    let login = AuditEvent::new(AuditEventType::Authentication, AuditAction::Login, ResourceType::User, "alice");
    let o = render_value(AuditFormat::Ocsf, &login, &Extras::default());
    assert_eq!(o["user"]["uid"], "alice");
}

#[test]
fn format_names_parse_and_bad_ones_are_refused() {
    for f in AuditFormat::ALL {
        assert_eq!(f.as_str().parse::<AuditFormat>().unwrap(), *f);
    }
    let err = "xml".parse::<AuditFormat>().unwrap_err();
    assert!(err.message.contains("json, ocsf, fhir"), "{err}");
}

#[test]
fn a_client_ip_goes_to_the_endpoint_and_the_network_only_when_it_is_an_ip() {
    let mut e = ev(AuditAction::Read);
    e.actor = Some(Arc::new(ActorContext::new("u").ip_address("10.1.2.3").user_agent("curl/8")));
    let o = render_value(AuditFormat::Ocsf, &e, &Extras::default());
    assert_eq!(o["src_endpoint"], serde_json::json!({"ip": "10.1.2.3"}));
    assert_eq!(o["http_request"]["user_agent"], "curl/8");
    let f = render_value(AuditFormat::Fhir, &e, &Extras::default());
    assert_eq!(f["agent"][0]["network"], serde_json::json!({"address": "10.1.2.3", "type": "2"}));
    e.actor = Some(Arc::new(ActorContext::new("u").ip_address("[IP]")));
    let o = render_value(AuditFormat::Ocsf, &e, &Extras::default());
    assert_eq!(o["src_endpoint"], serde_json::json!({"svc_name": "svc"}), "a masked address is no ip_t");
    let f = render_value(AuditFormat::Fhir, &e, &Extras::default());
    assert!(f["agent"][0].get("network").is_none());
}
