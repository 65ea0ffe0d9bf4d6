//! The GenAI conventions' content format (semantic conventions v1.37.0, see [`semconv`](super::semconv)): the
//! messages of a provider's request or response turned into `gen_ai.input.messages` /
//! `gen_ai.output.messages` / `gen_ai.system_instructions` values.
//!
//! A message is `{"role": .., "parts": [..]}`; a part is `{"type": "text", "content": ..}`,
//! `{"type": "tool_call", "id", "name", "arguments"}`, `{"type": "tool_call_response", "id", "response"}`, or, for
//! anything else (images, audio, files), `{"type": <the provider's part type>}` without its data: binary content
//! is never captured. Text is cut at [`MAX_PART_CHARS`] characters (marked with `…`).
//!
//! Nothing here fails: an unexpected shape yields fewer messages.

use serde_json::{json, Map, Value};

/// The most characters of one text part (or of a tool call's arguments or result) kept.
pub(crate) const MAX_PART_CHARS: usize = 32 * 1024;
/// The most messages kept from one request (the last ones: the newest turns).
pub(crate) const MAX_MESSAGES: usize = 256;

/// The request's messages and system instructions in the conventions' format.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct InputContent {
    pub(crate) messages: Option<Value>,
    pub(crate) system_instructions: Option<Value>,
}

/// What kind of request body this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestShape {
    /// OpenAI chat completions: `messages` (system messages stay in the history).
    Chat,
    /// Anthropic messages: `system` (instructions) and `messages` of content blocks.
    Anthropic,
    /// OpenAI Responses: `instructions` and `input` (a string or items).
    Responses,
    /// Embeddings (`input`) and legacy completions (`prompt`): the inputs as user messages.
    Inputs,
}

/// The input content of a request body (already parsed).
pub(crate) fn input_content(shape: RequestShape, body: &Value) -> InputContent {
    match shape {
        RequestShape::Chat => InputContent { messages: messages(body.get("messages")), system_instructions: None },
        RequestShape::Anthropic => InputContent {
            messages: messages(body.get("messages")),
            system_instructions: body.get("system").and_then(|s| non_empty(parts(s))),
        },
        RequestShape::Responses => {
            let messages = match body.get("input") {
                Some(Value::String(s)) => Some(Value::Array(vec![message("user", vec![text_part(s)])])),
                other => messages(other),
            };
            InputContent { messages, system_instructions: body.get("instructions").and_then(|s| non_empty(parts(s))) }
        }
        RequestShape::Inputs => {
            let input = body.get("input").or_else(|| body.get("prompt"));
            let messages = match input {
                Some(Value::String(s)) => vec![message("user", vec![text_part(s)])],
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .take(MAX_MESSAGES)
                    .map(|s| message("user", vec![text_part(s)]))
                    .collect(),
                _ => Vec::new(),
            };
            InputContent {
                messages: (!messages.is_empty()).then_some(Value::Array(messages)),
                system_instructions: None,
            }
        }
    }
}

/// One assistant message with `text` and `finish_reason` (the output of a call), or `None` without text.
pub(crate) fn output_message(text: &str, finish_reason: Option<&str>) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    let mut m = message("assistant", vec![text_part(text)]);
    m["finish_reason"] = Value::from(finish_reason.filter(|r| !r.is_empty()).unwrap_or("stop"));
    Some(Value::Array(vec![m]))
}

/// A JSON value of any shape (an agent component's inputs or outputs) as one message of `role`: its text when it
/// is a string, its JSON text otherwise; a `messages` array inside it is converted as a chat history.
pub(crate) fn value_as_messages(value: &Value, role: &str) -> Option<Value> {
    if value.is_null() {
        return None;
    }
    if let Some(m) = messages(value.get("messages")) {
        return Some(m);
    }
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut m = message(role, vec![text_part(&text)]);
    if role == "assistant" {
        m["finish_reason"] = "stop".into();
    }
    Some(Value::Array(vec![m]))
}

/// Serialises a content value as the attribute's JSON string.
pub(crate) fn to_attribute(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn non_empty(parts: Vec<Value>) -> Option<Value> {
    (!parts.is_empty()).then_some(Value::Array(parts))
}

/// A list of `{role, content}` messages (OpenAI chat, Anthropic, Responses items).
fn messages(list: Option<&Value>) -> Option<Value> {
    let items = list?.as_array()?;
    let skip = items.len().saturating_sub(MAX_MESSAGES);
    let out: Vec<Value> = items.iter().skip(skip).filter_map(one_message).collect();
    (!out.is_empty()).then_some(Value::Array(out))
}

fn one_message(m: &Value) -> Option<Value> {
    let obj = m.as_object()?;
    // Responses API items without a role: function calls and their outputs.
    let role = match obj.get("role").and_then(Value::as_str) {
        Some(r) => r,
        None => match obj.get("type").and_then(Value::as_str) {
            Some("function_call") => "assistant",
            Some("function_call_output") => "tool",
            _ => return None,
        },
    };
    let mut parts = obj.get("content").map(parts).unwrap_or_default();
    // OpenAI chat: assistant tool calls beside the content; a tool message answers one.
    for call in obj.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let function = call.get("function");
        parts.push(tool_call(
            call.get("id"),
            function.and_then(|f| f.get("name")),
            function.and_then(|f| f.get("arguments")),
        ));
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("function_call") => parts.push(tool_call(obj.get("call_id"), obj.get("name"), obj.get("arguments"))),
        Some("function_call_output") => parts.push(tool_response(obj.get("call_id"), obj.get("output"))),
        _ => {}
    }
    if role == "tool" {
        if let Some(id) = obj.get("tool_call_id") {
            let text = parts.iter().filter_map(|p| p.get("content").and_then(Value::as_str)).collect::<Vec<_>>();
            let response = Value::String(text.join(" "));
            parts = vec![tool_response(Some(id), Some(&response))];
        }
    }
    Some(message(role, parts))
}

/// The parts of a content value: a string, or an array of strings / typed parts.
fn parts(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) => vec![text_part(s)],
        Value::Array(items) => items.iter().filter_map(part).collect(),
        Value::Object(_) => part(content).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn part(p: &Value) -> Option<Value> {
    if let Value::String(s) = p {
        return Some(text_part(s));
    }
    let obj = p.as_object()?;
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("text");
    Some(match kind {
        "text" | "input_text" | "output_text" => text_part(obj.get("text").and_then(Value::as_str).unwrap_or("")),
        "tool_use" => tool_call(obj.get("id"), obj.get("name"), obj.get("input")),
        "tool_result" => tool_response(obj.get("tool_use_id"), obj.get("content")),
        // Images, audio, files: the kind only, never the data.
        other => json!({ "type": other }),
    })
}

fn message(role: &str, parts: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), role.into());
    m.insert("parts".into(), Value::Array(parts));
    Value::Object(m)
}

fn text_part(text: &str) -> Value {
    json!({ "type": "text", "content": cut(text) })
}

fn tool_call(id: Option<&Value>, name: Option<&Value>, arguments: Option<&Value>) -> Value {
    let mut p = json!({ "type": "tool_call", "name": name.and_then(Value::as_str).unwrap_or("") });
    if let Some(id) = id.and_then(Value::as_str) {
        p["id"] = id.into();
    }
    if let Some(a) = arguments {
        p["arguments"] = bounded(a);
    }
    p
}

fn tool_response(id: Option<&Value>, response: Option<&Value>) -> Value {
    let mut p = json!({ "type": "tool_call_response" });
    if let Some(id) = id.and_then(Value::as_str) {
        p["id"] = id.into();
    }
    if let Some(r) = response {
        p["response"] = bounded(r);
    }
    p
}

/// A string cut to [`MAX_PART_CHARS`]; any other value kept when its JSON is that short, else its cut JSON text.
fn bounded(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(cut(s)),
        other => {
            let text = other.to_string();
            if text.len() <= MAX_PART_CHARS {
                other.clone()
            } else {
                Value::String(cut(&text))
            }
        }
    }
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_PART_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_messages_keep_roles_text_and_tool_calls() {
        let body = json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "data:xyz"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}
        ]});
        let c = input_content(RequestShape::Chat, &body);
        assert_eq!(
            c.messages.unwrap(),
            json!([
                {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                {"role": "user", "parts": [{"type": "text", "content": "Hi"}, {"type": "image_url"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "lookup", "arguments": "{\"q\":1}"}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]}
            ])
        );
        assert!(c.system_instructions.is_none());
    }

    #[test]
    fn anthropic_system_is_instructions_and_blocks_are_parts() {
        let body = json!({"system": "You are a nurse.", "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "chart", "input": {"id": 7}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}
        ]});
        let c = input_content(RequestShape::Anthropic, &body);
        assert_eq!(c.system_instructions.unwrap(), json!([{"type": "text", "content": "You are a nurse."}]));
        let m = c.messages.unwrap();
        assert_eq!(m[1]["parts"][0], json!({"type": "tool_call", "id": "t1", "name": "chart", "arguments": {"id": 7}}));
        assert_eq!(m[2]["parts"][0], json!({"type": "tool_call_response", "id": "t1", "response": "ok"}));
    }

    #[test]
    fn responses_and_embeddings_inputs_become_user_messages() {
        let c = input_content(RequestShape::Responses, &json!({"instructions": "Terse.", "input": "Hey"}));
        assert_eq!(c.messages.unwrap(), json!([{"role": "user", "parts": [{"type": "text", "content": "Hey"}]}]));
        assert_eq!(c.system_instructions.unwrap(), json!([{"type": "text", "content": "Terse."}]));
        let c = input_content(RequestShape::Inputs, &json!({"input": ["a", "b"]}));
        assert_eq!(c.messages.unwrap().as_array().unwrap().len(), 2);
        assert_eq!(input_content(RequestShape::Chat, &json!({"messages": 5})), InputContent::default());
    }

    #[test]
    fn outputs_long_text_and_values() {
        assert_eq!(
            output_message("Done", Some("length")).unwrap(),
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "Done"}], "finish_reason": "length"}])
        );
        assert!(output_message("", None).is_none());
        let long = "x".repeat(MAX_PART_CHARS + 10);
        let m = output_message(&long, None).unwrap();
        let content = m[0]["parts"][0]["content"].as_str().unwrap();
        assert_eq!(content.chars().count(), MAX_PART_CHARS + 1);
        assert!(content.ends_with('…'));
        let v = value_as_messages(&json!({"query": "q"}), "user").unwrap();
        assert_eq!(v[0]["parts"][0]["content"], "{\"query\":\"q\"}");
        assert!(value_as_messages(&Value::Null, "user").is_none());
    }
}
