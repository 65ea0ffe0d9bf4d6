//! Methods: `&self`, `&mut self` returning a borrow of `self`, `self` by value, async methods, trait methods,
//! `Self`, fields from `self`.
use observer::{step, workflow};

struct Pipeline {
    source: String,
    rows: Vec<u32>,
}

impl Pipeline {
    #[workflow(fields(source = source))]
    fn new(source: &str) -> Self {
        Self { source: source.to_owned(), rows: Vec::new() }
    }

    #[workflow(name = "data-pipeline", fields(source = self.source, rows = self.rows.len()))]
    fn run(&mut self) -> &mut Vec<u32> {
        self.extract();
        self.load()
    }

    #[step]
    fn extract(&mut self) {
        self.rows.extend([1, 2, 3]);
    }

    #[step(name = "load")]
    fn load(&mut self) -> &mut Vec<u32> {
        &mut self.rows
    }

    #[step]
    fn first(&self) -> Option<&u32> {
        self.rows.first()
    }

    #[workflow(fields(source = self.source))]
    fn into_rows(self) -> Vec<u32> {
        self.rows
    }

    #[workflow]
    async fn count(&self) -> usize {
        self.count_step().await
    }

    #[step]
    async fn count_step(&self) -> usize {
        self.rows.len()
    }
}

trait Stage {
    fn label(&self) -> String;

    #[step]
    fn describe(&self) -> String {
        format!("stage {}", self.label())
    }
}

impl Stage for Pipeline {
    #[step]
    fn label(&self) -> String {
        self.source.clone()
    }
}

fn main() {
    let mut p = Pipeline::new("s3");
    p.run().push(4);
    assert_eq!(p.first(), Some(&1));
    assert_eq!(p.describe(), "stage s3");
    let n = tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(p.count());
    assert_eq!(n, 4);
    assert_eq!(p.into_rows(), [1, 2, 3, 4]);
}
