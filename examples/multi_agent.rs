//! The guide's "Multi-Agent Workflow": a research agent and an analysis agent as timed workflow steps, each
//! recording its model, output size and the LLM call's cost (from the token counts, priced with genai-prices),
//! plus an audit record of each LLM call for compliance. The LLM calls are simulated here (no network); the
//! HTTP instrumentation of real OpenAI/Anthropic clients is a separate feature.
//!
//! ```sh
//! cargo run --example multi_agent
//! ```

use observer::trace::WorkflowTracer;
use observer::{audit, AuditSink, ObserverConfig};

/// A stand-in for an LLM client: returns text and token usage.
fn llm(model: &str, prompt: &str) -> (String, u64, u64) {
    let text = format!("[{model}] {} ...", prompt.chars().take(40).collect::<String>());
    (text, prompt.len() as u64 / 4 + 20, 150)
}

fn multi_agent_pipeline(topic: &str) -> Result<String, Box<dyn std::error::Error>> {
    let wf = WorkflowTracer::new("multi-agent-pipeline").attr("topic", topic);

    let research = wf.run_step_sync("research-agent", |step| {
        let (text, input, output) = llm("gpt-4o", &format!("Research: {topic}"));
        let cost = observer::calculate_cost("openai", "gpt-4o", input, output);
        audit::log_llm_interaction("openai", "gpt-4o")
            .flow_id("multi-agent-pipeline")
            .input_tokens(input)
            .output_tokens(output)
            .cost(cost.total_cost)
            .prompt_summary("research request")
            .emit()?;
        step.set("model", "gpt-4o").set("research_length", text.len()).set("cost_usd", cost.total_cost);
        Ok::<_, Box<dyn std::error::Error>>(text)
    })?;

    let analysis = wf.run_step_sync("analysis-agent", |step| {
        let (text, input, output) = llm("claude-3-5-sonnet-20241022", &format!("Analyze: {research}"));
        let cost = observer::calculate_cost("anthropic", "claude-3-5-sonnet-20241022", input, output);
        audit::log_llm_interaction("anthropic", "claude-3-5-sonnet-20241022")
            .flow_id("multi-agent-pipeline")
            .input_tokens(input)
            .output_tokens(output)
            .cost(cost.total_cost)
            .emit()?;
        step.set("model", "claude-3-5-sonnet").set("analysis_length", text.len()).set("cost_usd", cost.total_cost);
        Ok::<_, Box<dyn std::error::Error>>(text)
    })?;

    wf.set("status", "completed");
    wf.finish();
    let summary = wf.summary();
    println!("Total: {:.2}ms", summary.duration_ms);
    for step in &summary.steps {
        println!("  {}: {:.2}ms, ${}", step.name, step.duration_ms, step.attributes["cost_usd"]);
    }
    Ok(analysis)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = observer::init(ObserverConfig {
        service_name: "multi-agent".into(),
        audit_sink: AuditSink::Stdout,
        ..Default::default()
    })?;
    let analysis = multi_agent_pipeline("vector databases")?;
    println!("analysis: {analysis}");
    Ok(())
}
