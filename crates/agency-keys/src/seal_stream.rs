//! Stream adapters over [`Sealer`] and [`Opener`] for what HTTP payloads and object stores give and
//! take: `Stream<Item = Result<Bytes, E>>`. Each poll turns at most one chunk, and input is read
//! only when the current chunk needs more, so an object of any size passes through with one chunk
//! buffered (plus the unread rest of the caller's current input item, never copied whole).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use sha2::{Digest, Sha256};

use crate::seal::{OpenSummary, Opener, SealError, SealSummary, Sealer};

/// An item of a sealing or opening stream that failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    /// The input stream's own error; the output ends there, without a final chunk.
    #[error("reading the input stream")]
    Input(#[source] E),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// The summary of a stream, set once the stream has ended without error.
#[derive(Debug)]
pub struct Completion<T>(Arc<OnceLock<T>>);

impl<T> Clone for Completion<T> {
    fn clone(&self) -> Self {
        Completion(self.0.clone())
    }
}

impl<T: Copy> Completion<T> {
    fn new() -> Self {
        Completion(Arc::new(OnceLock::new()))
    }

    /// `None` until the stream has yielded its last item successfully.
    pub fn get(&self) -> Option<T> {
        self.0.get().copied()
    }

    fn set(&self, value: T) {
        // Set once, by the stream's last poll.
        let _ = self.0.set(value);
    }
}

/// Items in flight to the hashing thread at most (input items as the caller's stream gives them:
/// an HTTP body's are tens of KiB), so memory stays flat whatever the object's size.
const HASH_QUEUE: usize = 64;

/// The plaintext's SHA-256, computed on the blocking pool beside the stream: SHA-256 and
/// AES-GCM cost about the same per byte here, so sealing a large object this way keeps two cores
/// busy instead of one. Pieces (the caller's own, shared, not copied) queue up while a job hashes
/// the previous batch; each job hands the hash state back to the stream, so no thread waits on a
/// slow client between batches.
struct HashAside {
    /// The hash so far, while no job holds it.
    idle: Option<Sha256>,
    /// The job hashing a batch; it returns the state.
    job: Option<tokio::task::JoinHandle<Sha256>>,
    queued: Vec<Bytes>,
}

impl HashAside {
    fn spawn() -> Self {
        Self {
            idle: Some(Sha256::new()),
            job: None,
            queued: Vec::new(),
        }
    }

    /// Takes the state back from a finished job (waiting for a running one), then starts a job
    /// on what queued meanwhile.
    fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SealError>> {
        if let Some(job) = self.job.as_mut() {
            let hasher = ready!(Pin::new(job).poll(cx)).map_err(|_| SealError::HashingStopped)?;
            self.job = None;
            self.idle = Some(hasher);
        }
        self.start();
        Poll::Ready(Ok(()))
    }

    fn start(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        if let Some(mut hasher) = self.idle.take() {
            let batch = std::mem::take(&mut self.queued);
            self.job = Some(tokio::task::spawn_blocking(move || {
                for piece in &batch {
                    hasher.update(piece);
                }
                hasher
            }));
        }
    }

    /// Ready when another piece may queue: at once below the bound, else once the running job
    /// has finished and taken the queue.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SealError>> {
        let finished = self.job.as_ref().is_some_and(|j| j.is_finished());
        if finished || self.queued.len() >= HASH_QUEUE {
            ready!(self.poll_job(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn push(&mut self, piece: Bytes) {
        self.queued.push(piece);
        if self.job.is_none() {
            self.start();
        }
    }

    /// The SHA-256 of everything pushed, once every batch is hashed.
    fn poll_digest(&mut self, cx: &mut Context<'_>) -> Poll<Result<[u8; 32], SealError>> {
        loop {
            ready!(self.poll_job(cx))?;
            if self.job.is_none() {
                let hasher = self.idle.take().ok_or(SealError::Failed)?;
                return Poll::Ready(Ok(hasher.finalize().into()));
            }
        }
    }
}

impl Sealer {
    /// Like [`Sealer::into_stream`], with the plaintext hashed on a blocking thread of the Tokio
    /// runtime while this stream encrypts it. For large objects (an upload); the summary is the
    /// same.
    pub fn into_parallel_stream<S>(mut self, plaintext: S) -> SealStream<S> {
        self.hash_elsewhere();
        let mut stream = self.into_stream(plaintext);
        stream.aside = Some(HashAside::spawn());
        stream
    }

    /// Seals `plaintext` as a stream of the sealed object's pieces: the header, one item per
    /// record, then the final record. The summary is in [`SealStream::completion`] once the
    /// stream has ended; an input error ends it without a final record, so what was written is
    /// a truncated object that never opens. A stream that is not `Unpin` goes in `Box::pin`.
    pub fn into_stream<S>(self, plaintext: S) -> SealStream<S> {
        SealStream {
            input: plaintext,
            sealer: Some(self),
            pending: Bytes::new(),
            completion: Completion::new(),
            peak_buffered: 0,
            aside: None,
            input_done: false,
        }
    }
}

impl Opener {
    /// Opens a stream of the sealed object's bytes (split anywhere) as a stream of plaintext
    /// chunks. The first chunk that fails authentication is the stream's last item, an error; the
    /// plaintext is complete only when the stream ends without one. The summary is in
    /// [`OpenStream::completion`] after that.
    pub fn into_stream<S>(self, sealed: S) -> OpenStream<S> {
        OpenStream {
            input: sealed,
            opener: Some(self),
            pending: Bytes::new(),
            completion: Completion::new(),
            peak_buffered: 0,
            aside: None,
            expected: None,
            last: None,
            held: None,
            verified: std::collections::VecDeque::new(),
        }
    }

    /// Like [`Opener::into_stream`], with the plaintext hashed on a blocking thread of the Tokio
    /// runtime and checked against `sha256`, the hash recorded when the object was sealed: when
    /// it differs, the final chunk and the one before it (the final one can be empty) are
    /// withheld and the stream ends with [`SealError::DigestMismatch`]. Authenticated chunks cannot differ from what was sealed; the recorded hash can
    /// have been changed since, and a reader is then told rather than handed a file whose hash is
    /// not the one shown to them.
    pub fn into_verified_stream<S>(mut self, sealed: S, sha256: [u8; 32]) -> OpenStream<S> {
        self.hash_elsewhere();
        let mut stream = self.into_stream(sealed);
        stream.aside = Some(HashAside::spawn());
        stream.expected = Some(sha256);
        stream
    }
}

pub struct SealStream<S> {
    input: S,
    /// `None` once the stream has ended.
    sealer: Option<Sealer>,
    /// The unread rest of the current input item.
    pending: Bytes,
    completion: Completion<SealSummary>,
    peak_buffered: usize,
    aside: Option<HashAside>,
    /// The input has ended: it is never polled again.
    input_done: bool,
}

impl<S> SealStream<S> {
    /// The summary, available once the stream has ended successfully; clone it before handing the
    /// stream to its consumer.
    pub fn completion(&self) -> Completion<SealSummary> {
        self.completion.clone()
    }

    /// The most this stream has held at once: its chunk buffer plus the unread rest of an input
    /// item.
    pub fn peak_buffered(&self) -> usize {
        self.peak_buffered
    }
}

impl<S, E> Stream for SealStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(sealer) = this.sealer.as_mut() else {
                return Poll::Ready(None);
            };
            if let Some(header) = sealer.take_header() {
                return Poll::Ready(Some(Ok(header)));
            }
            if this.input_done {
                return this.poll_finish(cx);
            }
            this.peak_buffered = this
                .peak_buffered
                .max(sealer.buffered() + this.pending.len());
            if !this.pending.is_empty() {
                match sealer.absorb(&this.pending) {
                    Ok((used, record)) => {
                        this.pending.advance(used);
                        if let Some(record) = record {
                            return Poll::Ready(Some(Ok(record)));
                        }
                        continue;
                    }
                    Err(e) => {
                        this.end();
                        return Poll::Ready(Some(Err(e.into())));
                    }
                }
            }
            // Room for the next item in the hashing queue before the item is taken.
            if let Some(aside) = this.aside.as_mut()
                && let Err(e) = ready!(aside.poll_room(cx))
            {
                this.end();
                return Poll::Ready(Some(Err(e.into())));
            }
            match ready!(Pin::new(&mut this.input).poll_next(cx)) {
                Some(Ok(bytes)) => {
                    if let Some(aside) = this.aside.as_mut() {
                        aside.push(bytes.clone());
                    }
                    this.pending = bytes;
                }
                Some(Err(e)) => {
                    this.end();
                    return Poll::Ready(Some(Err(StreamError::Input(e))));
                }
                None => {
                    this.input_done = true;
                    return this.poll_finish(cx);
                }
            }
        }
    }
}

impl<S> SealStream<S> {
    fn end(&mut self) {
        self.sealer = None;
        self.pending = Bytes::new();
        // Dropping the queue ends the hashing thread.
        self.aside = None;
    }

    /// After the input ended (never polled again): the final record, once the hash beside the
    /// stream, if any, is known.
    fn poll_finish<E>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, StreamError<E>>>> {
        let mut sha256 = None;
        if let Some(aside) = self.aside.as_mut() {
            match ready!(aside.poll_digest(cx)) {
                Ok(digest) => sha256 = Some(digest),
                Err(e) => {
                    self.end();
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
        let Some(sealer) = self.sealer.take() else {
            return Poll::Ready(None);
        };
        Poll::Ready(Some(match sealer.finish() {
            Ok((tail, mut summary)) => {
                if let Some(sha256) = sha256 {
                    summary.sha256 = sha256;
                }
                self.completion.set(summary);
                Ok(tail)
            }
            Err(e) => Err(e.into()),
        }))
    }
}

pub struct OpenStream<S> {
    input: S,
    /// `None` once the stream has ended.
    opener: Option<Opener>,
    pending: Bytes,
    completion: Completion<OpenSummary>,
    peak_buffered: usize,
    aside: Option<HashAside>,
    expected: Option<[u8; 32]>,
    /// The final chunk and summary, held while the hashing thread finishes.
    last: Option<(Bytes, OpenSummary)>,
    /// With a hash to check: the latest authenticated chunk, withheld until the next one exists
    /// or the hash matched, so that a mismatch always leaves the body short (the final record
    /// alone can be empty).
    held: Option<Bytes>,
    /// What is left to release once the hash matched: the withheld chunk, the final one.
    verified: std::collections::VecDeque<Bytes>,
}

impl<S> OpenStream<S> {
    /// The summary, available once the stream has ended successfully.
    pub fn completion(&self) -> Completion<OpenSummary> {
        self.completion.clone()
    }

    /// The most this stream has held at once: its record buffer plus the unread rest of an input
    /// item.
    pub fn peak_buffered(&self) -> usize {
        self.peak_buffered
    }

    fn end(&mut self) {
        self.opener = None;
        self.pending = Bytes::new();
        self.aside = None;
        self.last = None;
        self.held = None;
        self.verified.clear();
    }

    /// The final chunk once the hash beside the stream is known and matches; the summary is set
    /// then.
    fn poll_last(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, SealError>> {
        let Some(aside) = self.aside.as_mut() else {
            return Poll::Ready(Err(SealError::Failed));
        };
        let digest = ready!(aside.poll_digest(cx))?;
        let Some((tail, mut summary)) = self.last.take() else {
            return Poll::Ready(Err(SealError::Failed));
        };
        if self.expected.is_some_and(|expected| expected != digest) {
            return Poll::Ready(Err(SealError::DigestMismatch));
        }
        summary.sha256 = digest;
        self.completion.set(summary);
        Poll::Ready(Ok(tail))
    }
}

impl<S, E> Stream for OpenStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(chunk) = this.verified.pop_front() {
                if chunk.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(chunk)));
            }
            if this.last.is_some() {
                match ready!(this.poll_last(cx)) {
                    Ok(tail) => {
                        this.verified.extend(this.held.take());
                        this.verified.push_back(tail);
                        this.opener = None;
                        continue;
                    }
                    Err(e) => {
                        this.end();
                        return Poll::Ready(Some(Err(e.into())));
                    }
                }
            }
            let Some(opener) = this.opener.as_mut() else {
                return Poll::Ready(None);
            };
            this.peak_buffered = this
                .peak_buffered
                .max(opener.buffered() + this.pending.len());
            // Room in the hashing queue before a chunk can come out.
            if let Some(aside) = this.aside.as_mut()
                && let Err(e) = ready!(aside.poll_room(cx))
            {
                this.end();
                return Poll::Ready(Some(Err(e.into())));
            }
            if !this.pending.is_empty() {
                match opener.absorb(&this.pending) {
                    Ok((used, plain)) => {
                        this.pending.advance(used);
                        if let Some(plain) = plain {
                            if let Some(aside) = this.aside.as_mut() {
                                aside.push(plain.clone());
                                if let Some(previous) = this.held.replace(plain) {
                                    return Poll::Ready(Some(Ok(previous)));
                                }
                                continue;
                            }
                            return Poll::Ready(Some(Ok(plain)));
                        }
                        continue;
                    }
                    Err(e) => {
                        this.end();
                        return Poll::Ready(Some(Err(e.into())));
                    }
                }
            }
            match ready!(Pin::new(&mut this.input).poll_next(cx)) {
                Some(Ok(bytes)) => this.pending = bytes,
                Some(Err(e)) => {
                    this.end();
                    return Poll::Ready(Some(Err(StreamError::Input(e))));
                }
                None => {
                    let Some(opener) = this.opener.take() else {
                        return Poll::Ready(None);
                    };
                    return match opener.finish() {
                        Ok(last) if this.aside.is_some() => {
                            // The final chunk is hashed too.
                            if let Some(aside) = this.aside.as_mut() {
                                aside.push(last.0.clone());
                            }
                            this.last = Some(last);
                            continue;
                        }
                        Ok((tail, summary)) => {
                            this.completion.set(summary);
                            if tail.is_empty() {
                                Poll::Ready(None)
                            } else {
                                Poll::Ready(Some(Ok(tail)))
                            }
                        }
                        Err(e) => Poll::Ready(Some(Err(e.into()))),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::{StreamExt, stream};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::seal::tests::{AGENCY, OBJECT, data, opener_for, sealer_for};
    use crate::seal::{CHUNK_SIZE, RECORD_SIZE};

    /// Irregular pieces of `plain`, as a network hands them out.
    fn pieces(plain: &[u8]) -> Vec<Result<Bytes, Infallible>> {
        let sizes = [1, 100_003, 7, 65_536, 3_000, 131_072, 40_000];
        let mut out = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= plain.len() {
                break;
            }
            let end = (at + size).min(plain.len());
            out.push(Ok(Bytes::copy_from_slice(&plain[at..end])));
            out.push(Ok(Bytes::new()));
            at = end;
        }
        out
    }

    async fn collect<S, E>(mut s: S) -> (Vec<u8>, Option<StreamError<E>>)
    where
        S: Stream<Item = Result<Bytes, StreamError<E>>> + Unpin,
    {
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => {
                    assert!(s.next().await.is_none(), "nothing after an error");
                    return (out, Some(e));
                }
            }
        }
        (out, None)
    }

    #[test]
    fn the_adapters_can_move_between_threads() {
        fn send<T: Send + 'static>() {}
        type Input = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;
        send::<SealStream<Input>>();
        send::<OpenStream<Input>>();
        send::<Completion<SealSummary>>();
    }

    #[tokio::test]
    async fn streams_round_trip_with_summaries() {
        for len in [0, 1, CHUNK_SIZE, 700_001] {
            let plain = data(len);
            let sealing =
                sealer_for(AGENCY, OBJECT, "document").into_stream(stream::iter(pieces(&plain)));
            let sealed_summary = sealing.completion();
            assert!(sealed_summary.get().is_none());
            let (sealed, err) = collect(sealing).await;
            assert!(err.is_none());
            let sealed_summary = sealed_summary.get().unwrap();
            assert_eq!(sealed_summary.sealed_bytes, sealed.len() as u64);
            assert_eq!(
                sealed_summary.sha256,
                <[u8; 32]>::from(Sha256::digest(&plain))
            );

            let opening =
                opener_for(AGENCY, OBJECT, "document").into_stream(stream::iter(pieces(&sealed)));
            let opened_summary = opening.completion();
            let (opened, err) = collect(opening).await;
            assert!(err.is_none());
            assert!(opened == plain, "len {len}");
            let opened_summary = opened_summary.get().unwrap();
            assert_eq!(opened_summary.sha256, sealed_summary.sha256);
            assert_eq!(opened_summary.chunks, sealed_summary.chunks);
        }
    }

    #[tokio::test]
    async fn hashing_beside_the_stream_gives_the_same_object_and_summary() {
        for len in [0, 1, CHUNK_SIZE, 700_001, 3 * CHUNK_SIZE + 5] {
            let plain = data(len);
            let inline =
                sealer_for(AGENCY, OBJECT, "document").into_stream(stream::iter(pieces(&plain)));
            let inline_summary = inline.completion();
            let (inline_sealed, err) = collect(inline).await;
            assert!(err.is_none());
            let aside = sealer_for(AGENCY, OBJECT, "document")
                .into_parallel_stream(stream::iter(pieces(&plain)));
            let aside_summary = aside.completion();
            let (aside_sealed, err) = collect(aside).await;
            assert!(err.is_none());
            assert_eq!(aside_sealed.len(), inline_sealed.len());
            assert_eq!(aside_summary.get(), inline_summary.get());
            let (opened, err) = collect(
                opener_for(AGENCY, OBJECT, "document")
                    .into_stream(stream::iter(pieces(&aside_sealed))),
            )
            .await;
            assert!(err.is_none());
            assert!(opened == plain, "len {len}");
            assert_eq!(
                aside_summary.get().unwrap().sha256,
                <[u8; 32]>::from(Sha256::digest(&plain))
            );
        }
    }

    #[tokio::test]
    async fn a_verified_stream_releases_the_final_chunk_only_with_the_recorded_hash() {
        for len in [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE, 700_001] {
            let plain = data(len);
            let sha256 = <[u8; 32]>::from(Sha256::digest(&plain));
            let sealing =
                sealer_for(AGENCY, OBJECT, "document").into_stream(stream::iter(pieces(&plain)));
            let (sealed, _) = collect(sealing).await;

            let opening = opener_for(AGENCY, OBJECT, "document")
                .into_verified_stream(stream::iter(pieces(&sealed)), sha256);
            let summary = opening.completion();
            let (opened, err) = collect(opening).await;
            assert!(err.is_none(), "len {len}");
            assert!(opened == plain, "len {len}");
            assert_eq!(summary.get().unwrap().sha256, sha256);

            // A changed record of the hash: the error, with the final chunk and the one before it
            // withheld (the final record alone may be empty, as it is at a multiple of 64 KiB).
            let mut other = sha256;
            other[0] ^= 1;
            let opening = opener_for(AGENCY, OBJECT, "document")
                .into_verified_stream(stream::iter(pieces(&sealed)), other);
            let summary = opening.completion();
            let (opened, err) = collect(opening).await;
            assert!(
                matches!(err, Some(StreamError::Seal(SealError::DigestMismatch))),
                "len {len}"
            );
            let released = (len / CHUNK_SIZE).saturating_sub(1) * CHUNK_SIZE;
            assert_eq!(opened.len(), released, "len {len}");
            assert!(opened.len() < len || len == 0, "len {len}");
            assert!(opened[..] == plain[..opened.len()]);
            assert!(summary.get().is_none());
        }
    }

    #[tokio::test]
    async fn a_verified_stream_still_stops_at_a_tampered_chunk() {
        let plain = data(3 * CHUNK_SIZE + 100);
        let sha256 = <[u8; 32]>::from(Sha256::digest(&plain));
        let sealing =
            sealer_for(AGENCY, OBJECT, "document").into_stream(stream::iter(pieces(&plain)));
        let (mut sealed, _) = collect(sealing).await;
        let at = sealed.len() / 2;
        sealed[at] ^= 0x40;
        let opening = opener_for(AGENCY, OBJECT, "document")
            .into_verified_stream(stream::iter(pieces(&sealed)), sha256);
        let (opened, err) = collect(opening).await;
        assert!(matches!(
            err,
            Some(StreamError::Seal(SealError::Corrupt { .. }))
        ));
        assert!(opened.len() < plain.len());
        assert!(opened[..] == plain[..opened.len()]);
    }

    #[tokio::test]
    async fn hashing_beside_a_failing_input_ends_without_a_summary() {
        let plain = data(3 * CHUNK_SIZE);
        let mut items: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::copy_from_slice(&plain[..CHUNK_SIZE + 10])),
            Ok(Bytes::copy_from_slice(&plain[CHUNK_SIZE + 10..])),
        ];
        items.insert(1, Err(std::io::Error::other("connection reset")));
        let sealing =
            sealer_for(AGENCY, OBJECT, "document").into_parallel_stream(stream::iter(items));
        let summary = sealing.completion();
        let (_, err) = collect(sealing).await;
        assert!(matches!(err, Some(StreamError::Input(_))));
        assert!(summary.get().is_none());
    }

    #[tokio::test]
    async fn sixty_four_mib_stream_through_one_chunk_of_buffer() {
        const TOTAL: usize = 64 << 20;
        const PIECE_MAX: usize = 200_000;
        // Made on demand, so the test itself never holds the object either; `pulled` counts what
        // the adapter has read so far.
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = pulled.clone();
        let input = stream::iter(std::iter::from_fn(move || {
            let produced = counter.load(std::sync::atomic::Ordering::SeqCst);
            if produced >= TOTAL {
                return None;
            }
            let size = (produced % (PIECE_MAX - 4_099) + 4_099).min(TOTAL - produced);
            counter.fetch_add(size, std::sync::atomic::Ordering::SeqCst);
            Some(Ok::<_, Infallible>(Bytes::from(data(size))))
        }));
        let mut sealing = sealer_for(AGENCY, OBJECT, "document").into_stream(input);
        let completion = sealing.completion();
        // Each record is opened as it comes out, so neither side of the test keeps the object.
        let mut opener = opener_for(AGENCY, OBJECT, "document");
        let mut hasher = Sha256::new();
        let mut opened = 0usize;
        let mut records = 0usize;
        while let Some(item) = sealing.next().await {
            let record = item.unwrap();
            assert!(record.len() <= RECORD_SIZE);
            for plain in opener.update(&record).unwrap() {
                hasher.update(&plain);
                opened += plain.len();
                records += 1;
            }
            // Read ahead of what it has sealed by at most one chunk and one input piece.
            let ahead = pulled.load(std::sync::atomic::Ordering::SeqCst) - records * CHUNK_SIZE;
            assert!(ahead <= CHUNK_SIZE + PIECE_MAX, "{ahead} bytes read ahead");
            assert!(sealing.peak_buffered() <= RECORD_SIZE + PIECE_MAX);
        }
        let (tail, opened_summary) = opener.finish().unwrap();
        hasher.update(&tail);
        opened += tail.len();
        assert_eq!(opened, TOTAL);
        let summary = completion.get().unwrap();
        assert_eq!(summary.bytes, TOTAL as u64);
        assert_eq!(summary.chunks, (TOTAL / CHUNK_SIZE + 1) as u64);
        assert_eq!(summary.sha256, <[u8; 32]>::from(hasher.finalize()));
        assert_eq!(opened_summary.sha256, summary.sha256);
        assert!(sealing.peak_buffered() >= RECORD_SIZE);
    }

    #[tokio::test]
    async fn opening_holds_one_record_whatever_the_object_size() {
        let plain = data(40 * CHUNK_SIZE + 3);
        let mut sealer = sealer_for(AGENCY, OBJECT, "document");
        let mut records = sealer.update(&plain).unwrap();
        records.push(sealer.finish().unwrap().0);
        let n = records.len();
        let input = stream::iter(records.into_iter().map(Ok::<_, Infallible>));
        let mut opening = opener_for(AGENCY, OBJECT, "document").into_stream(input);
        let mut items = 0;
        while let Some(item) = opening.next().await {
            item.unwrap();
            items += 1;
            assert!(opening.peak_buffered() <= 2 * RECORD_SIZE);
        }
        assert_eq!(
            items,
            n - 1,
            "one plaintext item per record after the header"
        );
    }

    #[tokio::test]
    async fn a_tampered_chunk_ends_the_stream_with_an_error() {
        let plain = data(5 * CHUNK_SIZE);
        let mut sealer = sealer_for(AGENCY, OBJECT, "document");
        let mut sealed = Vec::new();
        for r in sealer.update(&plain).unwrap() {
            sealed.extend_from_slice(&r);
        }
        sealed.extend_from_slice(&sealer.finish().unwrap().0);
        sealed[25 + 2 * RECORD_SIZE + 1] ^= 4;
        let opening =
            opener_for(AGENCY, OBJECT, "document").into_stream(stream::iter(pieces(&sealed)));
        let completion = opening.completion();
        let (released, err) = collect(opening).await;
        assert!(matches!(
            err,
            Some(StreamError::Seal(SealError::Corrupt { chunk: 2 }))
        ));
        assert!(released[..] == plain[..2 * CHUNK_SIZE]);
        assert!(completion.get().is_none());
    }

    #[tokio::test]
    async fn an_input_error_leaves_a_sealed_object_that_never_opens() {
        let plain = data(3 * CHUNK_SIZE);
        let input = stream::iter(vec![
            Ok(Bytes::copy_from_slice(&plain[..2 * CHUNK_SIZE])),
            Err("connection reset"),
            Ok(Bytes::copy_from_slice(&plain[2 * CHUNK_SIZE..])),
        ]);
        let sealing = sealer_for(AGENCY, OBJECT, "document").into_stream(input);
        let completion = sealing.completion();
        let (sealed, err) = collect(sealing).await;
        assert!(matches!(err, Some(StreamError::Input("connection reset"))));
        assert!(completion.get().is_none());
        let opening = opener_for(AGENCY, OBJECT, "document").into_stream(stream::iter(vec![Ok::<
            _,
            Infallible,
        >(
            Bytes::from(sealed),
        )]));
        let (released, err) = collect(opening).await;
        assert!(matches!(
            err,
            Some(StreamError::Seal(SealError::Truncated { chunks: 2 }))
        ));
        assert_eq!(released.len(), 2 * CHUNK_SIZE);
    }
}
