#[observer::audit(execute, Agent, id = name)]
fn serve(name: &str) -> ! {
    let _ = name;
    loop {}
}

fn main() {
    serve("agent");
}
