//! Uploads that stall. A document upload holds a database transaction (and the agency's key
//! lock, shared) while its body streams in, so a client that trickles bytes would hold a pooled
//! connection for as long as it liked. [`Paced`] ends a body that delivers less than
//! [`MIN_BYTES_PER_WINDOW`] in any window of the configured length; [`UploadSlots`] bounds how
//! many uploads stream at once, so uploads can never take the whole pool from other requests.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use uuid::Uuid;

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

/// Uploads one user may stream at once: a client sending several files side by side goes on, one
/// holding the slots (a slow link, or on purpose) leaves the rest to everybody else.
pub const UPLOADS_PER_USER: usize = 2;

/// At most this many uploads stream at once in a process: a quarter of the pool, at least one,
/// and [`UPLOADS_PER_USER`] of them for any one user.
#[derive(Clone)]
pub struct UploadSlots {
    slots: Arc<Semaphore>,
    limit: usize,
    /// Slots held (or waited for) per user.
    by_user: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// A slot held: given back, and counted off its user, when dropped.
pub struct UploadSlot {
    _permit: OwnedSemaphorePermit,
    _user: UserShare,
}

struct UserShare {
    by_user: Arc<Mutex<HashMap<Uuid, usize>>>,
    user: Uuid,
}

impl Drop for UserShare {
    fn drop(&mut self) {
        let mut by_user = lock(&self.by_user);
        if let Some(n) = by_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                by_user.remove(&self.user);
            }
        }
    }
}

/// Why no slot was given.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSlot {
    /// The user streams [`UPLOADS_PER_USER`] uploads already.
    UserBusy,
    /// Every slot of the process stayed busy for the whole wait.
    AllBusy,
}

fn lock(m: &Mutex<HashMap<Uuid, usize>>) -> std::sync::MutexGuard<'_, HashMap<Uuid, usize>> {
    // The map holds plain counts: one left by a panicking holder is still right.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl UploadSlots {
    pub fn for_pool(max_connections: u32) -> Self {
        let limit = (max_connections as usize / 4).max(1);
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            by_user: Arc::default(),
        }
    }

    /// A slot for `user`, waiting at most `wait` for one of the process's.
    pub async fn take(&self, user: Uuid, wait: Duration) -> Result<UploadSlot, NoSlot> {
        let share = {
            let mut by_user = lock(&self.by_user);
            let held = by_user.entry(user).or_default();
            if *held >= UPLOADS_PER_USER {
                return Err(NoSlot::UserBusy);
            }
            *held += 1;
            UserShare {
                by_user: self.by_user.clone(),
                user,
            }
        };
        let permit = tokio::time::timeout(wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| NoSlot::AllBusy)?
            .map_err(|_| NoSlot::AllBusy)?;
        Ok(UploadSlot {
            _permit: permit,
            _user: share,
        })
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
            held.push(slots.take(Uuid::new_v4(), Duration::ZERO).await.unwrap());
        }
        let late = slots.take(Uuid::new_v4(), Duration::from_millis(10)).await;
        assert_eq!(late.err(), Some(NoSlot::AllBusy));
        held.pop();
        assert!(slots.take(Uuid::new_v4(), Duration::ZERO).await.is_ok());
    }

    #[tokio::test]
    async fn one_user_holds_at_most_two_slots() {
        let slots = UploadSlots::for_pool(20);
        let (one, other) = (Uuid::new_v4(), Uuid::new_v4());
        let first = slots.take(one, Duration::ZERO).await.unwrap();
        let _second = slots.take(one, Duration::ZERO).await.unwrap();
        assert_eq!(
            slots.take(one, Duration::ZERO).await.err(),
            Some(NoSlot::UserBusy)
        );
        assert!(slots.take(other, Duration::ZERO).await.is_ok());
        drop(first);
        assert!(slots.take(one, Duration::ZERO).await.is_ok());
        // A refused wait gives its share back.
        let full = UploadSlots::for_pool(4);
        let _held = full.take(other, Duration::ZERO).await.unwrap();
        for _ in 0..3 {
            assert_eq!(
                full.take(one, Duration::ZERO).await.err(),
                Some(NoSlot::AllBusy)
            );
        }
    }
}
