//! A workflow step guard dropped at once times nothing: the compiler says so.
#![deny(unused_must_use)]

fn main() {
    let wf = observer::trace::WorkflowTracer::new("order");
    wf.step("validate");
    wf.finish();
}
