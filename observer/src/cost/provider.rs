//! Provider names as callers write them ("Azure OpenAI", "x.ai", "together_ai") mapped to the provider ids of the
//! `genai-prices` data, for the price lookup and the price overrides alike.

/// The provider aliases, in compact form (lowercase, no separators), with their `genai-prices` ids.
const PROVIDER_ALIASES: &[(&str, &str)] = &[
    ("azureopenai", "azure"),
    ("azureai", "azure"),
    ("claude", "anthropic"),
    ("xai", "x-ai"),
    ("grok", "x-ai"),
    ("togetherai", "together"),
    ("fireworksai", "fireworks"),
    ("deepseekai", "deepseek"),
    ("zhipu", "zhipuai"),
    ("zhipuai", "zhipuai"),
    ("bigmodel", "zhipuai"),
    ("zai", "zai"),
    ("kimi", "moonshotai"),
    ("openrouter", "openrouter"),
    ("pplx", "perplexity"),
    ("perplexityai", "perplexity"),
    ("groqcloud", "groq"),
    ("minimaxai", "minimax"),
    ("ovh", "ovhcloud"),
    ("workersai", "cloudflare"),
    ("cloudflareworkersai", "cloudflare"),
];

/// The provider id to ask `genai-prices` for: `None` for an empty provider, an alias's target, or the trimmed
/// provider itself. Does not allocate.
pub(crate) fn provider_id(provider: &str) -> Option<&str> {
    let provider = provider.trim();
    if provider.is_empty() {
        return None;
    }
    let alias = PROVIDER_ALIASES.iter().find(|(alias, _)| compact_eq(provider, alias)).map(|(_, id)| *id);
    Some(alias.unwrap_or(provider))
}

/// Whether `text`, lowercased (ASCII) and without `-`, `_`, `.`, `/` and spaces, equals `compact`.
fn compact_eq(text: &str, compact: &str) -> bool {
    text.bytes()
        .filter(|b| !matches!(b, b'-' | b'_' | b'.' | b'/' | b' '))
        .map(|b| b.to_ascii_lowercase())
        .eq(compact.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::price::CALCULATOR;

    #[test]
    fn provider_aliases() {
        assert_eq!(provider_id(""), None);
        assert_eq!(provider_id("  "), None);
        assert_eq!(provider_id(" openai "), Some("openai"));
        assert_eq!(provider_id("Azure OpenAI"), Some("azure"));
        assert_eq!(provider_id("azure_openai"), Some("azure"));
        assert_eq!(provider_id("x.ai"), Some("x-ai"));
        assert_eq!(provider_id("X_AI"), Some("x-ai"));
        assert_eq!(provider_id("Together AI"), Some("together"));
        assert_eq!(provider_id("fireworks-ai"), Some("fireworks"));
        // Passed through unchanged: genai-prices matches these itself.
        assert_eq!(provider_id("Gemini"), Some("Gemini"));
        assert_eq!(provider_id("huggingface_groq"), Some("huggingface_groq"));
        // Every alias target is a provider of the bundled data.
        let calculator = (*CALCULATOR).expect("bundled data decodes");
        for (alias, id) in PROVIDER_ALIASES {
            let found = calculator.find_provider(Some(id), None).expect("no regex error").map(|p| p.id());
            assert_eq!(found, Some(*id), "alias {alias}");
        }
    }
}
