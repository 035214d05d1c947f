//! Uploads that stall. A document upload holds a database transaction (and the agency's key
//! lock, shared) while its body streams in, so a client that trickles bytes would hold a pooled
//! connection for as long as it liked. [`Paced`] ends a body that delivers less than
//! [`MIN_BYTES_PER_WINDOW`] in any window of the configured length; [`UploadSlots`] bounds how
//! many uploads stream at once, so uploads can never take the whole pool from other requests.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Bytes a body must deliver within each window: about 4 kbit/s, far below any working mobile
/// link, far above a trickle meant to hold the connection.
pub const MIN_BYTES_PER_WINDOW: u64 = 16 * 1024;

/// A body stream that fails (`io::ErrorKind::TimedOut`) once a window of `window` passes with
/// fewer than [`MIN_BYTES_PER_WINDOW`] received in it. A window starts when the previous one
/// got its bytes.
pub struct Paced<S> {
    inner: S,
    window: Duration,
    received: u64,
    window_ends: Pin<Box<Sleep>>,
    /// When the last piece was handed on: the time until the next poll is the server's (a pool
    /// or lock wait, a slow store), not the client's, and does not count against it.
    handed_at: Option<Instant>,
}

impl<S> Paced<S> {
    pub fn new(inner: S, window: Duration) -> Self {
        Self {
            inner,
            window,
            received: 0,
            window_ends: Box::pin(tokio::time::sleep(window)),
            handed_at: None,
        }
    }

    fn push_window_back(&mut self, by: Duration) {
        let later = self.window_ends.deadline().checked_add(by);
        if let Some(later) = later {
            self.window_ends.as_mut().reset(later);
        }
    }

    fn restart_window(&mut self) {
        if let Some(next) = Instant::now().checked_add(self.window) {
            self.window_ends.as_mut().reset(next);
        }
    }

    fn stalled(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the upload sent less than {MIN_BYTES_PER_WINDOW} bytes in {} s",
                self.window.as_secs()
            ),
        )
    }
}

impl<S> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin,
{
    type Item = Result<Bytes, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(handed_at) = this.handed_at.take() {
            this.push_window_back(handed_at.elapsed());
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.received += bytes.len() as u64;
                if this.received >= MIN_BYTES_PER_WINDOW {
                    this.received = 0;
                    this.restart_window();
                } else if this.window_ends.is_elapsed() {
                    // Many tiny pieces in a row must not escape the check either.
                    return Poll::Ready(Some(Err(this.stalled())));
                }
                this.handed_at = Some(Instant::now());
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Pending => match this.window_ends.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(this.stalled()))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

/// At most this many uploads stream at once in a process: a quarter of the pool, at least one.
#[derive(Clone)]
pub struct UploadSlots {
    slots: Arc<Semaphore>,
    limit: usize,
}

impl UploadSlots {
    pub fn for_pool(max_connections: u32) -> Self {
        let limit = (max_connections as usize / 4).max(1);
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A slot, waiting at most `wait`; `None` when every slot stayed busy.
    pub async fn take(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use futures_util::stream;

    use super::*;

    fn piece(n: usize) -> Result<Bytes, io::Error> {
        Ok(Bytes::from(vec![b'x'; n]))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_pace_passes_whole() {
        let pieces =
            stream::iter((0..10).map(|_| piece(MIN_BYTES_PER_WINDOW as usize))).then(|p| async {
                tokio::time::sleep(Duration::from_secs(20)).await;
                p
            });
        let mut paced = Paced::new(Box::pin(pieces), Duration::from_secs(30));
        let mut total = 0;
        while let Some(p) = paced.next().await {
            total += p.unwrap().len();
        }
        assert_eq!(total, 10 * MIN_BYTES_PER_WINDOW as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_when_its_window_ends() {
        let pieces = stream::iter([piece(100)]).chain(stream::pending());
        let mut paced = Paced::new(Box::pin(pieces), Duration::from_secs(30));
        assert_eq!(paced.next().await.unwrap().unwrap().len(), 100);
        let started = Instant::now();
        let err = paced.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() <= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_of_tiny_pieces_fails_too() {
        // One byte a second: always ready in time, never enough in a window.
        let pieces = stream::iter((0..100).map(|_| piece(1))).then(|p| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            p
        });
        let mut paced = Paced::new(Box::pin(pieces), Duration::from_secs(30));
        let mut ok = 0;
        let err = loop {
            match paced.next().await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!((29..=31).contains(&ok), "{ok}");
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_server_spends_elsewhere_is_not_the_clients() {
        // Small pieces, and the server waits 45 s (a lock, a pool) before reading on: the next
        // piece, ready all along, is taken.
        let pieces = stream::iter([piece(100), piece(100), piece(MIN_BYTES_PER_WINDOW as usize)]);
        let mut paced = Paced::new(Box::pin(pieces), Duration::from_secs(30));
        assert!(paced.next().await.unwrap().is_ok());
        tokio::time::sleep(Duration::from_secs(45)).await;
        assert!(paced.next().await.unwrap().is_ok());
        assert!(paced.next().await.unwrap().is_ok());
        assert!(paced.next().await.is_none());
    }

    #[tokio::test]
    async fn slots_are_a_quarter_of_the_pool_and_refuse_when_busy() {
        assert_eq!(UploadSlots::for_pool(2).limit(), 1);
        let slots = UploadSlots::for_pool(20);
        assert_eq!(slots.limit(), 5);
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(slots.take(Duration::ZERO).await.unwrap());
        }
        assert!(slots.take(Duration::from_millis(10)).await.is_none());
        held.pop();
        assert!(slots.take(Duration::ZERO).await.is_some());
    }
}
