//! The audit vocabulary: the single source of truth for resource and action names.
//!
//! The runtime crate generates its `ResourceType` and `AuditAction` enums from these tables (through the
//! hidden `__vocabulary!` macro), and `#[audit]` checks names against the same tables, so the two can
//! never disagree.

/// One vocabulary entry.
pub(crate) struct Entry {
    /// The Rust variant name, also the name written in `#[audit(.., Resource, ..)]`.
    pub variant: &'static str,
    /// The JSON spelling.
    pub wire: &'static str,
    /// The name written in `#[audit(action, ..)]`.
    pub macro_name: &'static str,
    /// Doc comment of the variant.
    pub doc: &'static str,
}

macro_rules! entries {
    ($( $variant:literal, $wire:literal, $macro_name:literal, $doc:literal; )*) => {
        &[ $( Entry { variant: $variant, wire: $wire, macro_name: $macro_name, doc: $doc }, )* ]
    };
}

/// Resource types: the guide's, then the reference implementation's additions.
pub(crate) const RESOURCES: &[Entry] = entries! {
    "User", "USER", "User", "A user account.";
    "Document", "DOCUMENT", "Document", "A document.";
    "File", "FILE", "File", "A file.";
    "Api", "API", "Api", "An API endpoint.";
    "Database", "DATABASE", "Database", "A database or table.";
    "Model", "MODEL", "Model", "A machine-learning model.";
    "Flow", "FLOW", "Flow", "A flow (e.g. a Langflow flow).";
    "Component", "COMPONENT", "Component", "A component of a flow.";
    "Session", "SESSION", "Session", "A session.";
    "Conversation", "CONVERSATION", "Conversation", "A conversation.";
    "Message", "MESSAGE", "Message", "A message.";
    "Agent", "AGENT", "Agent", "An agent.";
    "LlmModel", "LLM_MODEL", "LlmModel", "A large language model.";
    "Folder", "FOLDER", "Folder", "A folder.";
    "Template", "TEMPLATE", "Template", "A template.";
    "ApiKey", "API_KEY", "ApiKey", "An API key.";
    "Token", "TOKEN", "Token", "A token.";
    "Project", "PROJECT", "Project", "A project.";
    "Workspace", "WORKSPACE", "Workspace", "A workspace.";
    "Organization", "ORGANIZATION", "Organization", "An organisation.";
    "Dataset", "DATASET", "Dataset", "A dataset.";
    "VectorStore", "VECTOR_STORE", "VectorStore", "A vector store.";
    "McpServer", "MCP_SERVER", "McpServer", "An MCP server.";
    "Integration", "INTEGRATION", "Integration", "An integration.";
    "Webhook", "WEBHOOK", "Webhook", "A webhook.";
    "Connection", "CONNECTION", "Connection", "A connection.";
    "ModelConfig", "MODEL_CONFIG", "ModelConfig", "A model configuration.";
    "PromptTemplate", "PROMPT_TEMPLATE", "PromptTemplate", "A prompt template.";
    "Configuration", "CONFIGURATION", "Configuration", "A configuration.";
    "Secret", "SECRET", "Secret", "A secret.";
    "Permission", "PERMISSION", "Permission", "A permission.";
    "Role", "ROLE", "Role", "A role.";
};

/// Audit actions.
pub(crate) const ACTIONS: &[Entry] = entries! {
    "Create", "CREATE", "create", "Something was created.";
    "Read", "READ", "read", "Something was read.";
    "Update", "UPDATE", "update", "Something was changed.";
    "Delete", "DELETE", "delete", "Something was deleted.";
    "Execute", "EXECUTE", "execute", "Something was executed (an LLM call, an admin operation, …).";
    "Share", "SHARE", "share", "Something was shared.";
    "Export", "EXPORT", "export", "Data was exported.";
    "Import", "IMPORT", "import", "Data was imported.";
    "Login", "LOGIN", "login", "An actor logged in.";
    "Logout", "LOGOUT", "logout", "An actor logged out.";
};

/// The table for a generated enum name.
pub(crate) fn table(enum_name: &str) -> Option<&'static [Entry]> {
    match enum_name {
        "ResourceType" => Some(RESOURCES),
        "AuditAction" => Some(ACTIONS),
        _ => None,
    }
}

/// The entry whose macro name is `name`.
pub(crate) fn lookup(table: &'static [Entry], name: &str) -> Option<&'static Entry> {
    table.iter().find(|e| e.macro_name == name)
}

/// The closest macro name to `name`, if it is close enough to be a likely misspelling.
pub(crate) fn suggest(table: &'static [Entry], name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase().replace('_', "");
    table
        .iter()
        .map(|e| {
            let cand = e.macro_name.to_ascii_lowercase();
            (strsim::damerau_levenshtein(&lower, &cand), e.macro_name)
        })
        .filter(|(d, cand)| *d <= 2.max(cand.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// All macro names of a table, for "expected one of …" messages.
pub(crate) fn names(table: &'static [Entry]) -> String {
    table.iter().map(|e| format!("`{}`", e.macro_name)).collect::<Vec<_>>().join(", ")
}

/// The closest of `candidates` to `name` (ignoring case and `_`), if it is close enough to be a likely misspelling.
/// Used for the keys of the attribute macros, which are not vocabulary tables.
pub(crate) fn closest(candidates: &[&'static str], name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase().replace('_', "");
    candidates
        .iter()
        .map(|cand| (strsim::damerau_levenshtein(&lower, &cand.to_ascii_lowercase()), *cand))
        .filter(|(d, cand)| *d <= 1.max(cand.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `candidates` as "`a`, `b`, `c`", for "expected one of …" messages.
pub(crate) fn list(candidates: &[&str]) -> String {
    candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
}
