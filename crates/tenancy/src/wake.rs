//! Waking this process's audit sequencer after a commit, instead of a database notification.
//!
//! A `NOTIFY` costs more than its message: PostgreSQL serializes the commits of every notifying
//! transaction in the cluster (a lock held from before the commit record until after it), so
//! audited writes that notify never share a WAL flush. A transaction that appended audit events
//! and carries a [`CommitWake`] whose sequencer is listening tells that sequencer directly once its
//! `COMMIT` has returned; every other transaction (the command line, a process without a
//! sequencer) still notifies through the database. Either way the periodic sweep of every
//! sequencer stays the backstop.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

/// A process's line to its own sequencer: cheap to clone, shared by the requests and the
/// sequencer loop.
#[derive(Clone, Default)]
pub struct CommitWake(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Agencies with committed events since the sequencer last looked (each once).
    agencies: Mutex<HashSet<Uuid>>,
    notify: tokio::sync::Notify,
    listening: AtomicBool,
}

impl std::fmt::Debug for CommitWake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitWake")
            .field("listening", &self.is_listening())
            .finish_non_exhaustive()
    }
}

impl CommitWake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a sequencer takes these wake-ups now; while none does, transactions notify
    /// through the database as before.
    pub fn is_listening(&self) -> bool {
        self.0.listening.load(Ordering::Acquire)
    }

    /// Tells the sequencer that `agency_id` has committed events waiting.
    pub fn wake(&self, agency_id: Uuid) {
        self.0
            .agencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agency_id);
        // A permit is kept when the sequencer is busy, so no wake-up is lost.
        self.0.notify.notify_one();
    }

    /// The sequencer's end: wake-ups go to it from now until it is dropped.
    pub fn listen(&self) -> WakeListener {
        self.0.listening.store(true, Ordering::Release);
        WakeListener(self.clone())
    }
}

/// Held by the sequencer loop; dropping it sends transactions back to database notifications.
pub struct WakeListener(CommitWake);

impl WakeListener {
    /// Waits for a wake-up; returns every agency woken since the last call.
    pub async fn woken(&self) -> Vec<Uuid> {
        loop {
            let taken: Vec<Uuid> = self
                .0
                .0
                .agencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain()
                .collect();
            if !taken.is_empty() {
                return taken;
            }
            self.0.0.notify.notified().await;
        }
    }
}

impl Drop for WakeListener {
    fn drop(&mut self) {
        self.0.0.listening.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wake_ups_reach_the_listener_once_per_agency_and_none_is_lost() {
        let wake = CommitWake::new();
        assert!(!wake.is_listening());
        let listener = wake.listen();
        assert!(wake.is_listening());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        // Woken before the listener waits: kept, and folded per agency.
        wake.wake(a);
        wake.wake(b);
        wake.wake(a);
        let mut got = listener.woken().await;
        got.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(got, want);
        // Woken while the listener waits.
        let waker = wake.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            waker.wake(b);
        });
        assert_eq!(listener.woken().await, vec![b]);
        task.await.ok();
        drop(listener);
        assert!(!wake.is_listening());
    }
}
