//! Byte ranges of a document's plaintext (RFC 9110 §14), for resuming a download. The sealed
//! object is read from the chunk holding the range's first byte; of that chunk's plaintext, and of
//! the last one's, only the asked bytes are released.

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::DocumentError;

/// One range as a `Range: bytes=…` header asks for it, before the size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// `bytes=a-`
    From(u64),
    /// `bytes=a-b` (inclusive)
    FromTo(u64, u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl RangeRequest {
    /// Parses a `Range` header of one byte range; `None` for anything else (another unit,
    /// several ranges, a malformed one), which the server then ignores and serves the whole
    /// document, as RFC 9110 allows.
    pub fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match (first.trim(), last.trim()) {
            ("", n) => number(n).map(RangeRequest::Suffix),
            (a, "") => number(a).map(RangeRequest::From),
            (a, b) => {
                let (a, b) = (number(a)?, number(b)?);
                (a <= b).then_some(RangeRequest::FromTo(a, b))
            }
        }
    }

    /// The bytes of a document of `size` it names, or `None` when it names none of them (416).
    pub fn resolve(self, size: u64) -> Option<ByteRange> {
        let last = size.checked_sub(1)?;
        let (start, end) = match self {
            RangeRequest::From(a) => (a, last),
            RangeRequest::FromTo(a, b) => (a, b.min(last)),
            RangeRequest::Suffix(0) => return None,
            RangeRequest::Suffix(n) => (size - n.min(size), last),
        };
        (start <= last).then_some(ByteRange { start, end })
    }
}

/// A range asked for, and the `If-Range` it is conditional on: served only if that names the
/// document's current version (its ETag), else the whole document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeAsk {
    pub range: RangeRequest,
    pub if_range: Option<String>,
}

impl RangeAsk {
    /// The bytes to serve of a document of `size` whose ETag is `etag`: `Ok(None)` for the whole
    /// document (an `If-Range` for another version), an error when the range names no byte.
    pub fn resolve(&self, size: u64, etag: &str) -> Result<Option<ByteRange>, DocumentError> {
        if self.if_range.as_deref().is_some_and(|v| v.trim() != etag) {
            return Ok(None);
        }
        self.range
            .resolve(size)
            .map(Some)
            .ok_or(DocumentError::RangeNotSatisfiable { size })
    }
}

/// Bytes `start..=end` of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// `Content-Range` of a 206: `bytes start-end/size`.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.start, self.end)
    }
}

/// The part of `plaintext` in `range`: what comes before is read and dropped; once the range is
/// complete the stream ends and the rest is not read.
pub fn slice(
    plaintext: BoxStream<'static, Result<Bytes, DocumentError>>,
    range: ByteRange,
) -> BoxStream<'static, Result<Bytes, DocumentError>> {
    let state = (plaintext, range.start, range.len());
    stream::unfold(state, |(mut inner, mut skip, mut left)| async move {
        loop {
            if left == 0 {
                return None;
            }
            let piece = match inner.next().await? {
                Ok(piece) => piece,
                Err(e) => return Some((Err(e), (inner, skip, 0))),
            };
            let n = piece.len() as u64;
            if skip >= n {
                skip -= n;
                continue;
            }
            let from = skip as usize;
            let take = (n - skip).min(left);
            skip = 0;
            left -= take;
            let part = piece.slice(from..from + take as usize);
            return Some((Ok(part), (inner, skip, left)));
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_range_in_each_form_and_nothing_else() {
        use RangeRequest::*;
        assert_eq!(RangeRequest::parse("bytes=0-99"), Some(FromTo(0, 99)));
        assert_eq!(RangeRequest::parse("bytes=100-"), Some(From(100)));
        assert_eq!(RangeRequest::parse("bytes=-500"), Some(Suffix(500)));
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,5-9",
            "items=0-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(RangeRequest::parse(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        use RangeRequest::*;
        let r = |start, end| Some(ByteRange { start, end });
        assert_eq!(FromTo(0, 99).resolve(1000), r(0, 99));
        assert_eq!(FromTo(900, 5000).resolve(1000), r(900, 999));
        assert_eq!(From(999).resolve(1000), r(999, 999));
        assert_eq!(Suffix(100).resolve(1000), r(900, 999));
        assert_eq!(Suffix(5000).resolve(1000), r(0, 999));
        for unsatisfiable in [From(1000), FromTo(1000, 2000), Suffix(0)] {
            assert_eq!(unsatisfiable.resolve(1000), None, "{unsatisfiable:?}");
        }
        assert_eq!(From(0).resolve(0), None);
        assert_eq!(ByteRange { start: 5, end: 9 }.len(), 5);
        assert_eq!(
            ByteRange { start: 5, end: 9 }.content_range(10),
            "bytes 5-9/10"
        );
    }

    #[test]
    fn if_range_serves_the_range_only_for_this_version() {
        let etag = "\"abc\"";
        let ask = |if_range: Option<&str>| RangeAsk {
            range: RangeRequest::From(10),
            if_range: if_range.map(str::to_owned),
        };
        let part = Some(ByteRange { start: 10, end: 99 });
        assert_eq!(ask(None).resolve(100, etag).unwrap(), part);
        assert_eq!(ask(Some("\"abc\"")).resolve(100, etag).unwrap(), part);
        assert_eq!(ask(Some("\"old\"")).resolve(100, etag).unwrap(), None);
        assert_eq!(
            ask(Some("Wed, 21 Oct 2026 07:28:00 GMT"))
                .resolve(100, etag)
                .unwrap(),
            None
        );
        assert!(matches!(
            ask(None).resolve(5, etag),
            Err(DocumentError::RangeNotSatisfiable { size: 5 })
        ));
    }

    #[tokio::test]
    async fn a_slice_spans_pieces_and_stops_reading_after_its_end() {
        let data: Vec<u8> = (0..=255).collect();
        // Ten bytes a piece, then an error that a slice ending in time never reaches.
        let pieces = |data: &[u8]| {
            let mut v: Vec<Result<Bytes, DocumentError>> = data
                .chunks(10)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            v.push(Err(DocumentError::Body("past the end".into())));
            stream::iter(v).boxed()
        };
        for (start, end) in [(0, 255), (5, 5), (9, 10), (37, 141), (250, 255)] {
            let got: Vec<u8> = slice(pieces(&data), ByteRange { start, end })
                .map(|p| p.unwrap())
                .collect::<Vec<_>>()
                .await
                .concat();
            assert_eq!(got, &data[start as usize..=end as usize], "{start}-{end}");
        }
    }
}
