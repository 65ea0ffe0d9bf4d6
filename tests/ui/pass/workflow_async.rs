//! Async workflows and steps: awaited bodies, steps in nested async helpers, sync steps inside async code,
//! `?` and early `return`, futures that stay `Send`.
use observer::{step, workflow};

#[derive(Debug)]
struct Failed(&'static str);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failed: {}", self.0)
    }
}

#[workflow(name = "async-flow", fields(id = id))]
async fn flow(id: String) -> Result<usize, Failed> {
    tokio::task::yield_now().await;
    let n = fetch(&id).await?;
    if n == 0 {
        return Err(Failed("empty"));
    }
    let m = nested(n).await?;
    Ok(check(m)?)
}

async fn nested(n: usize) -> Result<usize, Failed> {
    double(n).await
}

#[step]
async fn fetch(id: &str) -> Result<usize, Failed> {
    tokio::task::yield_now().await;
    let n: usize = id.len().to_string().parse().map_err(|_| Failed("parse"))?;
    Ok(n)
}

#[step(name = "double")]
async fn double(n: usize) -> Result<usize, Failed> {
    if n > 100 {
        return Err(Failed("too big"));
    }
    Ok(n * 2)
}

#[step]
fn check(n: usize) -> Result<usize, Failed> {
    Ok(n)
}

#[step]
async fn plain(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n + 1
}

#[workflow]
async fn unit_flow() {
    plain(1).await;
}

#[workflow]
async fn opaque_flow() -> impl std::fmt::Display {
    plain(2).await
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let n = tokio::spawn(assert_send(flow("abc".into()))).await.expect("task").expect("ok");
        assert_eq!(n, 6);
        assert!(flow(String::new()).await.is_err());
        tokio::spawn(assert_send(unit_flow())).await.expect("task");
        assert_eq!(opaque_flow().await.to_string(), "3");
        assert_eq!(tokio::spawn(assert_send(plain(9))).await.expect("task"), 10);
        assert_eq!(tokio::spawn(assert_send(double(1))).await.expect("task").expect("ok"), 2);
    });
}
