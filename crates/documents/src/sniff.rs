//! What a document is, judged by its first bytes: the store takes PDF, PNG, JPEG, MP4 (ISO base
//! media), DOCX and plain text, and nothing else. A client's `Content-Type` is checked against the
//! bytes, never believed on its own.

/// Bytes of the body looked at before anything is stored: enough for every magic number and for
/// the first entries of a DOCX (ZIP) archive, where `word/` appears.
pub const SNIFF_LEN: usize = 64 * 1024;

/// The types the store accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    Pdf,
    Png,
    Jpeg,
    Mp4,
    Docx,
    Text,
}

impl DocumentType {
    pub const ALL: [DocumentType; 6] = [
        DocumentType::Pdf,
        DocumentType::Png,
        DocumentType::Jpeg,
        DocumentType::Mp4,
        DocumentType::Docx,
        DocumentType::Text,
    ];

    pub fn mime(self) -> &'static str {
        match self {
            DocumentType::Pdf => "application/pdf",
            DocumentType::Png => "image/png",
            DocumentType::Jpeg => "image/jpeg",
            DocumentType::Mp4 => "video/mp4",
            DocumentType::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            DocumentType::Text => "text/plain",
        }
    }
}

/// The type of a body that starts with `prefix`. `complete` says the prefix is the whole body
/// (so a UTF-8 sequence cut at its end is an error, not a cut).
pub fn sniff(prefix: &[u8], complete: bool) -> Option<DocumentType> {
    if prefix.starts_with(b"%PDF-") {
        return Some(DocumentType::Pdf);
    }
    if prefix.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(DocumentType::Png);
    }
    if prefix.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(DocumentType::Jpeg);
    }
    // ISO base media: a first box of type `ftyp` (size, then the type at offset 4).
    if prefix.len() >= 12 && &prefix[4..8] == b"ftyp" {
        return Some(DocumentType::Mp4);
    }
    if prefix.starts_with(b"PK\x03\x04") {
        return is_docx(prefix).then_some(DocumentType::Docx);
    }
    is_text(prefix, complete).then_some(DocumentType::Text)
}

/// A ZIP whose local file headers (read in order from the start) name an entry under `word/`:
/// an Office Open XML word-processing document. Other ZIPs (XLSX, archives) are refused.
fn is_docx(prefix: &[u8]) -> bool {
    let mut at = 0usize;
    while let Some(header) = prefix.get(at..at + 30) {
        if header[..4] != *b"PK\x03\x04" {
            return false;
        }
        let le16 = |i: usize| usize::from(u16::from_le_bytes([header[i], header[i + 1]]));
        let flags = le16(6);
        let compressed =
            u32::from_le_bytes([header[18], header[19], header[20], header[21]]) as usize;
        let name_len = le16(26);
        let extra_len = le16(28);
        let Some(name) = prefix.get(at + 30..at + 30 + name_len) else {
            return false;
        };
        if name.starts_with(b"word/") {
            return true;
        }
        // With a data descriptor (bit 3) the size follows the data: the next header cannot be
        // found without inflating, so fall back to looking for the name.
        if flags & 0x08 != 0 {
            return contains(prefix, b"word/document.xml");
        }
        at += 30 + name_len + extra_len + compressed;
    }
    false
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Valid UTF-8 without NUL (a cut multi-byte sequence at the end of an incomplete prefix is
/// allowed).
fn is_text(prefix: &[u8], complete: bool) -> bool {
    if prefix.contains(&0) {
        return false;
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none(),
    }
}

/// The essence of a `Content-Type` value (`text/plain; charset=utf-8` → `text/plain`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_entry(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = b"PK\x03\x04".to_vec();
        h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(data);
        h
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(b"%PDF-1.7\n...", false), Some(DocumentType::Pdf));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", false),
            Some(DocumentType::Png)
        );
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16], false),
            Some(DocumentType::Jpeg)
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmp42\0\0\0\0", false),
            Some(DocumentType::Mp4)
        );
        assert_eq!(sniff(b"hello\nworld", true), Some(DocumentType::Text));
        assert_eq!(sniff(b"", true), Some(DocumentType::Text));
        assert_eq!(
            sniff(b"MZ\x90\0\x03\0\0\0", false),
            None,
            "a Windows executable"
        );
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\0", false), None);
    }

    #[test]
    fn docx_is_a_zip_with_word_entries_and_other_zips_are_refused() {
        let mut docx = zip_entry("[Content_Types].xml", b"<Types/>");
        docx.extend(zip_entry("_rels/.rels", b"<Relationships/>"));
        docx.extend(zip_entry("word/document.xml", b"<w:document/>"));
        assert_eq!(sniff(&docx, true), Some(DocumentType::Docx));
        let mut xlsx = zip_entry("[Content_Types].xml", b"<Types/>");
        xlsx.extend(zip_entry("xl/workbook.xml", b"<workbook/>"));
        assert_eq!(sniff(&xlsx, true), None);
    }

    #[test]
    fn text_is_utf8_without_nul() {
        assert_eq!(
            sniff("Durchsuchungsbefehl – Zeuge".as_bytes(), true),
            Some(DocumentType::Text)
        );
        assert_eq!(sniff(b"abc\0def", true), None);
        assert_eq!(sniff(b"\xff\xfe\x00a", true), None);
        // A multi-byte character cut by the end of the sniffed prefix.
        let cut = &"é".as_bytes()[..1];
        assert_eq!(sniff(cut, false), Some(DocumentType::Text));
        assert_eq!(sniff(cut, true), None);
        assert_eq!(essence("Text/Plain; charset=utf-8"), "text/plain");
    }
}
