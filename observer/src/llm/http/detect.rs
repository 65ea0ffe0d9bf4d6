//! Which requests are LLM calls: the provider and endpoint from the method and the URL path.

use crate::llm::semconv::operation;

/// An LLM provider family recognised by the HTTP instrumentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI and OpenAI-compatible APIs (`/chat/completions`, `/responses`, `/completions`, `/embeddings`).
    OpenAi,
    /// Anthropic's Messages API (`/v1/messages`).
    Anthropic,
}

impl Provider {
    /// The `gen_ai.provider.name` value: `openai` or `anthropic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

/// The API endpoint a request was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// OpenAI `/chat/completions`.
    ChatCompletions,
    /// OpenAI `/responses`.
    Responses,
    /// OpenAI legacy `/completions`.
    Completions,
    /// OpenAI `/embeddings`.
    Embeddings,
    /// Anthropic `/v1/messages`.
    Messages,
}

impl Endpoint {
    pub(crate) fn provider(self) -> Provider {
        match self {
            Self::Messages => Provider::Anthropic,
            _ => Provider::OpenAi,
        }
    }

    pub(crate) fn operation(self) -> &'static str {
        match self {
            Self::ChatCompletions | Self::Responses | Self::Messages => operation::CHAT,
            Self::Completions => operation::TEXT_COMPLETION,
            Self::Embeddings => operation::EMBEDDINGS,
        }
    }
}

/// The endpoint of a `POST` to `path` (without the query), or `None` for anything that is not an LLM call.
///
/// OpenAI-compatible paths match under any base path (`/v1/chat/completions`, `/openai/deployments/x/chat/completions`,
/// `/api/chat/completions`); Anthropic needs `/v1/messages` at the end (a bare `/messages` suffix would also match
/// e.g. OpenAI's `/threads/{id}/messages`).
pub(crate) fn detect(method: &http::Method, path: &str) -> Option<Endpoint> {
    if method != http::Method::POST {
        return None;
    }
    let path = path.trim_end_matches('/');
    if path.ends_with("/v1/messages") {
        Some(Endpoint::Messages)
    } else if path.ends_with("/chat/completions") {
        Some(Endpoint::ChatCompletions)
    } else if path.ends_with("/completions") {
        Some(Endpoint::Completions)
    } else if path.ends_with("/responses") {
        Some(Endpoint::Responses)
    } else if path.ends_with("/embeddings") {
        Some(Endpoint::Embeddings)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let post = http::Method::POST;
        assert_eq!(detect(&post, "/v1/chat/completions"), Some(Endpoint::ChatCompletions));
        assert_eq!(detect(&post, "/chat/completions/"), Some(Endpoint::ChatCompletions));
        assert_eq!(detect(&post, "/openai/deployments/gpt/chat/completions"), Some(Endpoint::ChatCompletions));
        assert_eq!(detect(&post, "/v1/responses"), Some(Endpoint::Responses));
        assert_eq!(detect(&post, "/v1/embeddings"), Some(Endpoint::Embeddings));
        assert_eq!(detect(&post, "/v1/completions"), Some(Endpoint::Completions));
        assert_eq!(detect(&post, "/v1/messages"), Some(Endpoint::Messages));
        assert_eq!(detect(&post, "/proxy/anthropic/v1/messages"), Some(Endpoint::Messages));
        assert_eq!(detect(&post, "/v1/threads/t1/messages"), None);
        assert_eq!(detect(&post, "/v1/messages/count_tokens"), None);
        assert_eq!(detect(&post, "/v1/models"), None);
        assert_eq!(detect(&post, ""), None);
        assert_eq!(detect(&http::Method::GET, "/v1/chat/completions"), None);
    }
}
