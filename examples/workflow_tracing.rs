//! The guide's "Workflow Tracing" cases: order processing (with a failing payment), a data pipeline, an async
//! API request pipeline with `#[workflow]`/`#[step]`, and batch processing. Each prints its summary.
//!
//! ```sh
//! cargo run --example workflow_tracing
//! ```
//! With the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, `observer::init` also exports the workflow and
//! step spans over OTLP (HTTP/protobuf), flushed when its guard drops at the end of `main`:
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 cargo run --example workflow_tracing --features otel
//! ```

use std::time::Duration;

use observer::trace::{trace_workflow, WorkflowTracer};

#[derive(Debug)]
struct PaymentError(String);

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PaymentError {}

/// Order processing: validate → payment → fulfillment, with step attributes.
fn process_order(order_id: &str, decline: bool) -> Result<serde_json::Value, PaymentError> {
    let wf = WorkflowTracer::new("process-order").attr("order_id", order_id);
    {
        let mut step = wf.step("validate");
        std::thread::sleep(Duration::from_millis(5));
        step.set("items_count", 5).set("valid", true);
        step.finish(); // a guarded step ends as a success only when finished
    }
    let charged = wf.run_step_sync("payment", |step| {
        std::thread::sleep(Duration::from_millis(15));
        if decline {
            return Err(PaymentError("Card declined".into()));
        }
        step.set("amount", 99.99).set("provider", "stripe");
        Ok(99.99)
    });
    if let Err(e) = charged {
        wf.set("status", "failed");
        for step in wf.steps().iter().filter(|s| s.error.is_some()) {
            println!("  step {} failed: {}", step.name, step.error.as_deref().unwrap_or_default());
        }
        wf.finish();
        return Err(e);
    }
    wf.run_step_sync("fulfillment", |_| {
        std::thread::sleep(Duration::from_millis(5));
        Ok::<_, PaymentError>(())
    })?;
    wf.set("status", "completed").set("priority", "high");
    wf.finish();
    Ok(wf.get_summary())
}

/// Data pipeline: extract → transform → load with row counts.
fn data_pipeline() -> serde_json::Value {
    let wf = trace_workflow("data-pipeline");
    let data: Vec<i64> = {
        let mut step = wf.step("extract");
        let data: Vec<i64> = (0..1_000).collect();
        step.set("rows_extracted", data.len());
        step.finish();
        data
    };
    let transformed: Vec<i64> = {
        let mut step = wf.step("transform");
        let t: Vec<i64> = data.iter().filter(|x| *x % 3 != 0).map(|x| x * 2).collect();
        step.set("rows_transformed", t.len()).set("rows_filtered", data.len() - t.len());
        step.finish();
        t
    };
    let mut step = wf.step("load");
    step.set("rows_loaded", transformed.len()).log("loaded into the warehouse");
    step.finish();
    for step in wf.steps() {
        println!("  {}: {:.2}ms", step.name, step.duration_ms);
    }
    wf.get_summary()
}

// API request pipeline with the attribute macros: the workflow's steps are found through the task-local
// current workflow, also in nested async calls.
struct Request {
    method: &'static str,
    path: &'static str,
}

#[observer::step]
async fn auth(_req: &Request) -> Result<String, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(3)).await;
    Ok("user-123".into())
}

#[observer::step(name = "validate")]
async fn validate_input(_req: &Request) -> Result<Vec<u32>, std::io::Error> {
    Ok(vec![1, 2, 3])
}

#[observer::step]
async fn process(data: Vec<u32>) -> Result<Vec<u32>, std::io::Error> {
    tokio::time::sleep(Duration::from_millis(8)).await;
    Ok(data.into_iter().map(|x| x * 10).collect())
}

#[observer::step]
fn serialize(result: &[u32]) -> String {
    serde_json::to_string(result).unwrap_or_default()
}

#[observer::workflow(name = "api-request", fields(method = req.method, path = req.path))]
async fn handle_request(req: Request) -> Result<(String, serde_json::Value), std::io::Error> {
    let user = auth(&req).await?;
    let data = validate_input(&req).await?;
    let result = process(data).await?;
    let body = serialize(&result);
    let wf = observer::trace::current_workflow().expect("inside #[workflow]");
    wf.set("status_code", 200).set("user_id", user);
    Ok((body, wf.get_summary()))
}

/// Batch processing with a success rate.
fn process_batch(items: &[i32]) -> serde_json::Value {
    let wf = WorkflowTracer::new("batch-process").attr("batch_size", items.len());
    let valid: Vec<i32> = {
        let mut step = wf.step("validate");
        let v: Vec<i32> = items.iter().copied().filter(|i| *i >= 0).collect();
        step.set("valid_count", v.len()).set("invalid_count", items.len() - v.len());
        step.finish();
        v
    };
    let transformed: Vec<i32> = {
        let mut step = wf.step("transform");
        let t: Vec<i32> = valid.iter().map(|i| i * 2).collect();
        step.set("transformed_count", t.len());
        step.finish();
        t
    };
    let saved = {
        let mut step = wf.step("persist");
        step.set("saved_count", transformed.len());
        step.finish();
        transformed.len()
    };
    wf.set("success_rate", saved as f64 / items.len() as f64 * 100.0);
    wf.finish();
    wf.get_summary()
}

// `pub`: the OTLP test (tests/otel.rs) runs this `main` to check the export claim above.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Sets up span export when an OTLP endpoint is configured; the guard exports what is pending when it drops.
    let _guard = observer::init(observer::ObserverConfig {
        service_name: "workflow-tracing-example".into(),
        ..Default::default()
    })?;
    println!("order processing:");
    let summary = process_order("123", false)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    println!("order processing, declined card:");
    if let Err(e) = process_order("124", true) {
        println!("  the caller still gets the error: {e}");
    }

    println!("data pipeline:");
    let summary = data_pipeline();
    println!("  total {:.2}ms over {} steps", summary["duration_ms"].as_f64().unwrap_or(0.0), summary["step_count"]);

    println!("API request pipeline (#[workflow] / #[step], async):");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (body, summary) = rt.block_on(handle_request(Request { method: "POST", path: "/orders" }))?;
    println!("  response {body}");
    println!("{}", serde_json::to_string_pretty(&summary)?);

    println!("batch processing:");
    let summary = process_batch(&[1, -2, 3, 4, -5, 6]);
    println!("  success rate {}%", summary["attributes"]["success_rate"]);
    Ok(())
}
