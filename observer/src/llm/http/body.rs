//! [`LlmBody`]: the response body, passed through frame by frame while the instrumentation looks at it.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::record::Recorder;

pin_project! {
    /// A response body that yields exactly the inner body's frames, unbuffered, while the instrumentation reads
    /// usage from them (a bounded copy of a JSON body, an incremental parse of an event stream). The call's span
    /// ends when the body ends, fails or is dropped.
    ///
    /// Bodies of requests that are not LLM calls are passed through without any work.
    #[derive(Debug)]
    pub struct LlmBody<B> {
        #[pin]
        inner: B,
        recorder: Option<Box<Recorder>>,
    }
}

impl<B> LlmBody<B> {
    pub(crate) fn new(inner: B, recorder: Option<Box<Recorder>>) -> Self {
        Self { inner, recorder }
    }

    /// A body that is not observed.
    pub fn passthrough(inner: B) -> Self {
        Self { inner, recorder: None }
    }

    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> Body for LlmBody<B>
where
    B: Body,
    B::Data: AsRef<[u8]>,
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Some(recorder) = this.recorder {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        recorder.on_data(data.as_ref());
                    }
                }
                Poll::Ready(Some(Err(error))) => recorder.on_error("stream_error", &error.to_string()),
                Poll::Ready(None) => recorder.finish(),
                Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
