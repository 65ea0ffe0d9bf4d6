#[observer::agent_component(name = "WeatherTool", kind = "tol")]
fn weather(city: &str) -> String {
    city.to_owned()
}

fn main() {
    let _ = weather("Paris");
}
