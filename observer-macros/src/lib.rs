//! Attribute macros for the [`observer`](https://docs.rs/observer) SDK.
//!
//! Use them through the `observer` crate (`#[observer::audit(..)]`), which re-exports them; this crate's
//! generated code calls `::observer::__private`, which is not public API.

mod attr;
mod expand;
mod valid;
mod vocabulary;

use proc_macro::TokenStream;

/// Generates the runtime's vocabulary enums from the shared tables. Not public API.
#[doc(hidden)]
#[proc_macro]
pub fn __vocabulary(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as expand::vocabulary::VocabularyInput);
    expand::vocabulary::expand(input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Records one audit event for every call of the annotated function.
///
/// ```text
/// #[audit(ACTION, RESOURCE [, id = EXPR] [, name = EXPR] [, description = EXPR] [, crate = PATH] [,])]
/// ```
///
/// The action and the resource type come first, in that order; the keys follow in any order, each at most once.
/// Names are checked at compile time against the audit vocabulary (the same tables the runtime's
/// `AuditAction` and `ResourceType` are generated from): a misspelling is an error on that token that lists the
/// valid names and suggests the nearest one.
///
/// The function keeps its signature, visibility, generics, where-clause, attributes and docs, and returns what
/// its body returns. It may be sync or `async`, a free function or a method (`&self`, `&mut self`, `self`),
/// generic, with `impl Trait` arguments. The event is recorded after the body finishes — through the same
/// non-blocking pipeline as `observer::audit::log_*` — with the actor of the current actor context (for an
/// `async fn`, the actor scope the future runs in, e.g. `observer::with_actor(actor, fut)`), event type and
/// severity derived from the action (read → `DATA_ACCESS`; create, update, delete, import →
/// `DATA_MODIFICATION`; export → `DATA_EXPORT`; share → `AUTHORIZATION`; login, logout → `AUTHENTICATION`;
/// execute → `SYSTEM_EVENT`; severity `MEDIUM` for delete and export, else `INFO`) and metadata
/// `function` = `module_path!()::fn_name`. Recording never fails the call: an event that cannot be queued is
/// reported and written to stderr.
///
/// # Arguments
///
/// - **action** (required, first): `create`, `read`, `update`, `delete`, `execute`, `share`, `export`, `import`,
///   `login` or `logout` — the lowercase names of `observer::AuditAction`'s variants.
/// - **resource type** (required, second): a variant of `observer::ResourceType` as written in Rust, e.g.
///   `Document`, `LlmModel`, `VectorStore`.
/// - `id = expr`: the resource id (`resource_id`). Default: none (left out of the event JSON).
/// - `name = expr`: the resource's human-readable name (`resource_name`). Default: none.
/// - `description = expr`: what happened. Default: generated, e.g. `"Created DOCUMENT doc-123"`.
/// - `crate = path`: where the `observer` crate is, for a renamed dependency. Default: `::observer`.
///
/// The disclosure keys (fields for the accounting of disclosures; each left out of the event when not given):
///
/// - `recipient = expr`: who received the information (`recipient`).
/// - `purpose = Name`: why (`purpose_of_use`), a variant of `observer::audit::PurposeOfUse` as written in Rust,
///   e.g. `Treatment`, `Payment`, `PublicHealth`; checked at compile time.
/// - `patient = expr`: the patient's identifier, recorded only as its keyed hash (`patient_ref`) with the
///   process-wide patient key; without a usable key the event goes to the stderr fallback without it.
/// - `data_categories = ["..", ..]`, `compliance_frameworks = ["..", ..]`: lists of non-empty string literals.
/// - `retention_days = N`: a whole number of days from 1 (`retention_days`).
/// - `immutable = true|false` (`immutable`).
///
/// Each `expr` may use the function's arguments (and `self`) and must implement `Display`; it is formatted
/// with `Display` into a `String`.
///
/// - An expression that does **not** mention the identifier `ret` is evaluated **before** the body runs, so it
///   may use arguments that the body moves.
/// - An expression that mentions `ret` (as an identifier, or `{ret}` in a format string) is evaluated **after**
///   the body, with `ret` bound to a reference to the returned value. Other arguments it uses must still be
///   available then: the body runs in a `move` closure (`async move` block), so a non-`Copy` argument it uses
///   has been moved. An argument that is itself named `ret` is shadowed by the returned value in these keys.
///   `id = ret.id` on a fn returning `()` is a type error, reported by rustc on `ret.id`.
///
/// **`Result` functions.** When the return type's path ends in `Result` — `Result<T, E>`, `io::Result<T>`,
/// `anyhow::Result<T>`, `my_mod::Result<T>` — the function is treated as fallible. This check is syntactic:
/// such a type must be `core::result::Result` or an alias of it, and an alias with another name
/// (`type AppResult<T> = ..`) is not recognised (the call is then recorded as a success, with `ret` bound to
/// the whole `Result`). For a fallible function:
///
/// - on `Ok(v)`, `ret` is `&v` and the outcome is `SUCCESS`;
/// - on `Err(e)`, the outcome is `FAILURE`, metadata `error` holds `e`'s `Display` message (its `Debug` form
///   when `E` has no `Display`), and the keys that mention `ret` are left unset. The `Err` is returned to the
///   caller unchanged.
///
/// Other limits: a panic in the body records nothing; a non-`async` fn that returns a future (`-> impl
/// Future`) is recorded when the future is created, not when it completes; `const fn` and `-> !` are
/// rejected. When the return type contains `impl Trait`, the generated code cannot name it, so `?` in the
/// body of such a function cannot use it to infer its error type.
///
/// # Examples
///
/// ```ignore
/// use observer::audit;
///
/// struct Doc { id: String, title: String }
///
/// // `id` from the result: evaluated after the body, on the `Ok` value.
/// #[audit(create, Document, id = ret.id, name = ret.title)]
/// fn create_doc(title: String) -> Result<Doc, std::io::Error> {
///     Ok(Doc { id: "doc-123".into(), title })
/// }
///
/// // `id` from an argument: evaluated before the body; async works the same way.
/// #[audit(read, Document, id = doc_id)]
/// async fn read_doc(doc_id: &str) -> Result<Doc, std::io::Error> {
///     load(doc_id).await
/// }
///
/// impl Store {
///     #[audit(delete, VectorStore, id = self.id, description = format!("dropped {} vectors", self.len()))]
///     fn drop_all(&mut self) { /* .. */ }
/// }
///
/// // A renamed dependency: `obs = { package = "observer", .. }` in Cargo.toml.
/// #[obs::audit(login, User, id = user_id, crate = ::obs)]
/// fn login(user_id: &str) -> bool { true }
/// ```
///
/// # Expands roughly to
///
/// `#[audit(create, Document, id = ret.id, name = title)]` on `fn create_doc(title: String) -> Result<Doc, E>`:
///
/// ```ignore
/// fn create_doc(title: String) -> Result<Doc, E> {
///     // keys without `ret`: before the body
///     let __observer_name = Some(::observer::__private::display(&(title)));
///     let __observer_description = None;
///     // the body, with `return` and `?` typed by the fn's return type
///     // (async fn: `::observer::__private::typed_future::<Result<Doc, E>, _>(async move { .. }).await`)
///     let __observer_ret = ::observer::__private::call::<Result<Doc, E>, _>(move || { /* original body */ });
///     // keys with `ret`: after the body
///     let __observer_id = match &__observer_ret {
///         Ok(ret) => Some(::observer::__private::display(&(ret.id))),
///         Err(_) => None,
///     };
///     let __observer_error = match &__observer_ret {
///         Ok(_) => None,
///         Err(e) => Some(/* e's Display (or Debug) message */),
///     };
///     ::observer::__private::record_audit(::observer::__private::AuditCall {
///         action: ::observer::AuditAction::Create,
///         resource: ::observer::ResourceType::Document,
///         id: __observer_id,
///         name: __observer_name,
///         description: __observer_description,
///         error: __observer_error,
///         function: concat!(module_path!(), "::", "create_doc"),
///     });
///     __observer_ret
/// }
/// ```
#[proc_macro_attribute]
pub fn audit(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    expand::audit::expand(args.into(), item.clone()).unwrap_or_else(|e| expand::with_error(item, e)).into()
}

/// Runs every call of the annotated function as a traced workflow (`observer::trace::WorkflowTracer`).
///
/// ```text
/// #[workflow]
/// #[workflow([name = "LITERAL"] [, fields(KEY = EXPR, ..)] [, crate = PATH] [,])]
/// ```
///
/// Keys in any order, each at most once. Each call starts a `WorkflowTracer` named after the function, adds the
/// `fields(..)` as workflow attributes, runs the body with that workflow as the **current workflow**
/// (`observer::trace::current_workflow()`) — for an `async fn` task-scoped across its `.await`s
/// (`WorkflowTracer::scope`), for a sync fn thread-scoped (`WorkflowTracer::scope_sync`) — and inside the
/// workflow's span (so other `tracing` spans created in the body are its children), and finishes it when the
/// body returns. `#[step]` functions called from the body, directly or through nested (sync or async)
/// calls, become steps of the workflow; tasks spawned from it do not inherit it.
///
/// The function keeps its signature, visibility, generics, where-clause, attributes and docs, and returns what
/// its body returns. It may be sync or `async`, a free function or a method, generic.
///
/// # Arguments
///
/// - `name = "literal"`: the workflow name (OTEL span `workflow:{name}`). Default: the function's name.
/// - `fields(key = expr, ..)`: workflow attributes (`WorkflowTracer::attr`). A key is an identifier, a dotted
///   name (`order.id`) or a string literal (`"order-id"`); each at most once. Default: none. Each `expr` may use
///   the function's arguments (and `self`); it is evaluated by reference **before** the body runs, so the body
///   may still move those arguments. Its value becomes JSON through `serde::Serialize` when its type has it
///   (numbers stay numbers, `Option` is `null` or its value; `null` if serialisation fails), else its
///   `Display` string; a type with neither is a compile error on the expression.
/// - `crate = path`: where the `observer` crate is, for a renamed dependency. Default: `::observer`.
///
/// **`Result` functions.** When the return type's path ends in `Result` (`Result<T, E>`, `io::Result<T>`,
/// `anyhow::Result<T>`; an alias with another name is not recognised), an `Err` is recorded as the workflow's
/// error (`WorkflowTracer::record_error`) with `E`'s `Display` message (its `Debug` form when `E` has no
/// `Display`) and returned unchanged.
///
/// Limits: a panic in the body, or an `async fn` future dropped before completion, does not call `finish()`
/// (the workflow ends when the tracer is dropped); `const fn` and `-> !` are rejected; when the return type
/// contains `impl Trait`, `?` in the body cannot use it to infer its error type.
///
/// # Examples
///
/// ```ignore
/// use observer::{step, workflow};
///
/// #[workflow(name = "process-order", fields(order_id = order.id, items = order.items.len()))]
/// async fn process(order: Order) -> Result<Receipt, OrderError> {
///     validate(&order)?;                 // a step "validate"
///     let paid = charge(&order).await?;  // a step "payment"
///     Ok(ship(order, paid))              // not a step: plain code inside the workflow
/// }
///
/// #[step]
/// fn validate(order: &Order) -> Result<(), OrderError> { /* .. */ }
///
/// #[step(name = "payment")]
/// async fn charge(order: &Order) -> Result<Payment, OrderError> { /* .. */ }
///
/// // Sync works the same way, and so do methods and renamed dependencies.
/// impl Pipeline {
///     #[obs::workflow(name = "data-pipeline", fields(source = self.source), crate = ::obs)]
///     fn run(&mut self) -> usize { /* .. */ }
/// }
/// ```
///
/// # Expands roughly to
///
/// `#[workflow(name = "process-order", fields(order_id = order.id))]` on
/// `async fn process(order: Order) -> Result<Receipt, OrderError>`:
///
/// ```ignore
/// async fn process(order: Order) -> Result<Receipt, OrderError> {
///     // fields: before the body, by reference; `Serialize`, else `Display`
///     let __observer_workflow = ::observer::__private::workflow("process-order")
///         .attr("order_id", ::serde_json::to_value(&(order.id)).unwrap_or_default());
///     // the body, with `return` and `?` typed by the fn's return type, as the current workflow and in its span:
///     // `wf.scope(body.instrument(wf.span()))`
///     // (sync fn: `workflow_sync(&wf, typed_closure::<R, _>(move || { .. }))`: `in_scope` + `scope_sync`)
///     let __observer_ret = ::observer::__private::workflow_async(
///         &__observer_workflow,
///         ::observer::__private::typed_future::<Result<Receipt, OrderError>, _>(async move {
///             /* original body */
///         }),
///     )
///     .await;
///     // record the `Err` (Display, else Debug), then `finish()`
///     ::observer::__private::finish_workflow(&__observer_workflow, match &__observer_ret {
///         Ok(_) => None,
///         Err(e) => Some(e.to_string()),
///     });
///     __observer_ret
/// }
/// ```
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    expand::workflow::expand(args.into(), item.clone()).unwrap_or_else(|e| expand::with_error(item, e)).into()
}

/// Runs every call of the annotated function as a step of the current workflow (see [`macro@workflow`]), or, when
/// no workflow is current, inside a plain `tracing` span.
///
/// ```text
/// #[step]
/// #[step([name = "LITERAL"] [, crate = PATH] [,])]
/// ```
///
/// - **Inside a workflow** (`observer::trace::current_workflow()` is `Some` — the body of a `#[workflow]` fn,
///   a `WorkflowTracer::scope`/`scope_sync`, including nested sync and async calls): the call runs as
///   `WorkflowTracer::run_step_sync(name, ..)` (`run_step` for an `async fn`, timed across its `.await`s; the
///   workflow is looked up when the future is first polled). It appears in the workflow's `steps()`/summary in
///   start order, as an OTEL span `step:{name}` under the workflow's span.
/// - **Outside any workflow**: the body runs inside `tracing::info_span!("step", otel.name = "step:{name}",
///   step.name = name)` (the span name and fields of a workflow's steps, without a workflow parent). When no
///   subscriber wants that span, the cost over a plain call is a thread-local check and `tracing`'s disabled-span
///   fast path — a few nanoseconds.
///
/// The function keeps its signature, visibility, generics, where-clause, attributes and docs, and returns what
/// its body returns. It may be sync or `async`, a free function or a method, generic.
///
/// # Arguments
///
/// - `name = "literal"`: the step name. Default: the function's name.
/// - `crate = path`: where the `observer` crate is, for a renamed dependency. Default: `::observer`.
///
/// **`Result` functions.** When the return type's path ends in `Result` (as for [`macro@workflow`]), an `Err` is
/// recorded as the step's error (`Step::record_error`) with `E`'s `Display` message (its `Debug` form when `E`
/// has no `Display`) and returned unchanged, so the caller's `?` still sees it. Other return values are passed
/// through untouched.
///
/// Limits: a sync fn that returns a future (`-> impl Future`) is a step only while it creates the future;
/// `const fn` and `-> !` are rejected; when the return type contains `impl Trait`, `?` in the body cannot use
/// it to infer its error type.
///
/// # Examples
///
/// ```ignore
/// use observer::step;
///
/// #[step]
/// fn validate(order: &Order) -> Result<(), OrderError> {
///     if order.items.is_empty() {
///         return Err(OrderError::Empty); // recorded on the step "validate", then returned
///     }
///     Ok(())
/// }
///
/// #[step(name = "payment")]
/// async fn charge(order: &Order) -> Result<Payment, OrderError> {
///     gateway().charge(order.total).await
/// }
///
/// impl Warehouse {
///     #[step(name = "fulfillment")]
///     fn ship(&self, order: &Order) -> TrackingId { /* .. */ }
/// }
/// ```
///
/// # Expands roughly to
///
/// `#[step]` on `fn validate(order: &Order) -> Result<(), OrderError>`:
///
/// ```ignore
/// fn validate(order: &Order) -> Result<(), OrderError> {
///     ::observer::__private::step_sync_result(
///         "validate",
///         // the span outside a workflow, built only then
///         || ::observer::__private::tracing::info_span!("step", otel.name = "step:validate", step.name = "validate"),
///         // the body, with `return` and `?` typed by the fn's return type
///         ::observer::__private::typed_closure::<Result<(), OrderError>, _>(move || { /* original body */ }),
///         // the `Err`'s message (Display, else Debug)
///         |e| e.to_string(),
///     )
///     // async fn: `step_async_result(.., typed_future::<R, _>(async move { .. }), ..).await`;
///     // a fn not returning `Result`: `step_sync(name, span, body)` / `step_async(..).await`
/// }
/// // where, in `observer::__private`:
/// fn step_sync_result<T, E>(name, span, body, message) -> Result<T, E> {
///     match current_workflow() {
///         None => { let span = span(); let _entered = span.enter(); body() }
///         Some(wf) => /* wf.run_step_sync(name, |step| { let r = body(); record_error(message(&e)) on Err; r }) */,
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    expand::step::expand(args.into(), item.clone()).unwrap_or_else(|e| expand::with_error(item, e)).into()
}

/// Runs every call of the annotated function as a component of the current agent trace
/// (`observer::trace::AgentTracer`, made current with `tracer.scope(fut)` / `tracer.scope_sync(f)`), or inside a
/// plain `tracing` span when no agent trace is current.
///
/// ```text
/// #[agent_component]
/// #[agent_component([name = "LITERAL"] [, kind = "KIND"] [, capture = "LEVEL"] [, skip(ARG, ..)] [, crate = PATH] [,])]
/// ```
///
/// - `name`: the component name (default: the fn's name).
/// - `kind`: the component type, one of `llm`, `tool`, `agent`, `retrieval`, `memory`, `input`, `output`,
///   `processing`, `component` — the variants of `observer::trace::ComponentKind`, generated from the same table
///   (checked at compile time); inferred from the name and the outputs when left out.
/// - `capture`: the component's capture level, one of `none`, `metadata`, `request`, `request_response`
///   (`observer::CaptureLevel`, checked at compile time); default: the tracer's. Below `request` no input is
///   sent, below `request_response` no output; at `none` the component sends no event and no span.
/// - `skip(arg, ..)`: arguments left out of the inputs. Every other named argument is serialised into
///   `input_data` (its type must implement `serde::Serialize`; otherwise the error points at the argument — skip
///   it). Arguments are serialised only when an agent trace is current.
///
/// The return value becomes `output_data` (through `Serialize` when its type has it, else `null`), so the tokens,
/// model and cost of an LLM response returned by the fn are extracted. For `-> Result<T, E>`, `Ok(T)` is the
/// output and an `Err` ends the component with the error's message (`Display`, else `Debug`). Components started
/// inside the body (nested `#[agent_component]` calls) become its children; concurrent calls are siblings. A
/// panic or a future dropped before completion ends the component with an error. The function keeps its
/// signature and may be sync or `async`, a free function or a method. A task spawned from a component joins the
/// trace when wrapped: `tokio::spawn(fut.in_current_scope())` (`observer::ScopeExt`).
///
/// ```ignore
/// #[observer::agent_component(name = "QueryClassifier", kind = "llm")]
/// async fn classify(query: &str) -> Result<serde_json::Value, MyError> { .. }
/// ```
#[proc_macro_attribute]
pub fn agent_component(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    expand::agent::expand(args.into(), item.clone()).unwrap_or_else(|e| expand::with_error(item, e)).into()
}
