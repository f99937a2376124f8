//! Running futures without a task hop: poll once on the current thread, and catch
//! panics of handler code.
//!
//! Polling with a no-op waker is sound for a future that is then either finished
//! or polled again by a real task: a future only promises to wake the waker of
//! its most recent poll, and the task's first poll re-registers its own.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The result of one poll that may have panicked.
pub(crate) enum Polled<T> {
    Ready(T),
    Pending,
    Panicked(String),
}

/// Polls `fut` once with a waker that does nothing, catching a panic.
pub(crate) fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Polled<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
        Ok(Poll::Ready(value)) => Polled::Ready(value),
        Ok(Poll::Pending) => Polled::Pending,
        Err(payload) => Polled::Panicked(panic_message(payload.as_ref())),
    }
}

/// The text of a panic payload (`panic!` with a message gives `&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// A boxed future whose panics become `Err(message)` instead of unwinding into
/// the task that polls it.
pub(crate) struct CatchUnwind<F: ?Sized>(pub(crate) Pin<Box<F>>);

impl<F: Future + ?Sized> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.get_mut().0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}
