//! The vocabulary tables: the single source of truth for resource types, audit actions and agent component
//! kinds.
//!
//! The runtime crate generates its `ResourceType`, `AuditAction` and `ComponentKind` enums from these tables
//! (through the hidden `__vocabulary!` macro, [`crate::expand::vocabulary`]), and `#[audit]` and
//! `#[agent_component]` check names against the same tables, so the macros and the runtime can never disagree.

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

/// Agent component kinds: the reference Python SDK's `component_type` values, written in
/// `#[agent_component(kind = "..")]` and sent as `component_type`. `Component` is the kind of a component that
/// matches no other.
pub(crate) const COMPONENT_KINDS: &[Entry] = entries! {
    "Llm", "llm", "llm", "A call to a language model.";
    "Tool", "tool", "tool", "A tool or function call.";
    "Agent", "agent", "agent", "An agent, executor or orchestrator.";
    "Retrieval", "retrieval", "retrieval", "Retrieval: a vector store, search, RAG.";
    "Memory", "memory", "memory", "Memory: history, conversation context.";
    "Input", "input", "input", "The flow's input: a prompt, question or query.";
    "Output", "output", "output", "The flow's output: a response, result or answer.";
    "Processing", "processing", "processing", "Processing: transforming, parsing, formatting.";
    "Component", "component", "component", "Any other component.";
};

/// Purposes of use of a disclosure (the event field `purpose_of_use`, written `purpose = ..` in `#[audit]`): the
/// HIPAA purposes an accounting of disclosures distinguishes. The runtime maps each to its HL7 v3 `PurposeOfUse`
/// code where the general value set has one.
pub(crate) const PURPOSES: &[Entry] = entries! {
    "Treatment", "TREATMENT", "Treatment", "Treatment of the patient.";
    "EmergencyTreatment", "EMERGENCY_TREATMENT", "EmergencyTreatment", "Emergency treatment of the patient.";
    "Payment", "PAYMENT", "Payment", "Payment for health care.";
    "HealthcareOperations", "HEALTHCARE_OPERATIONS", "HealthcareOperations", "Health-care operations.";
    "Coverage", "COVERAGE", "Coverage", "Coverage under a policy or programme.";
    "PatientRequest", "PATIENT_REQUEST", "PatientRequest", "At the request of the patient.";
    "PublicHealth", "PUBLIC_HEALTH", "PublicHealth", "Public-health activities.";
    "HealthOversight", "HEALTH_OVERSIGHT", "HealthOversight", "Health oversight (audits, inspections, licensure).";
    "Research", "RESEARCH", "Research", "Research.";
    "JudicialProceeding", "JUDICIAL_PROCEEDING", "JudicialProceeding", "A judicial or administrative proceeding.";
    "LawEnforcement", "LAW_ENFORCEMENT", "LawEnforcement", "Law enforcement.";
    "RequiredByLaw", "REQUIRED_BY_LAW", "RequiredByLaw", "Required by law.";
    "Marketing", "MARKETING", "Marketing", "Marketing.";
};

/// The tables of the generated enums, by enum name.
pub(crate) const GENERATED: &[(&str, &[Entry])] = &[
    ("ResourceType", RESOURCES),
    ("AuditAction", ACTIONS),
    ("ComponentKind", COMPONENT_KINDS),
    ("PurposeOfUse", PURPOSES),
];

/// The table for a generated enum name.
pub(crate) fn table(enum_name: &str) -> Option<&'static [Entry]> {
    GENERATED.iter().find(|(name, _)| *name == enum_name).map(|(_, table)| *table)
}

/// The macro names of a table.
pub(crate) fn macro_names(table: &'static [Entry]) -> Vec<&'static str> {
    table.iter().map(|e| e.macro_name).collect()
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
