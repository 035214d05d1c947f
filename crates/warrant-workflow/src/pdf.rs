//! A small PDF writer for the documents Writ hands to people: Letter pages of Helvetica text
//! (WinAnsi), wrapped lines, a footer on every page, and optionally one embedded file — the
//! machine-readable original the printed text is made from, so whoever holds the PDF can check
//! it. Deterministic: the same lines give the same bytes. No fonts are embedded and nothing
//! outside WinAnsi is drawn (it becomes `?`); the embedded file keeps the exact text.

use std::fmt::Write;

/// Characters per line of body text (Helvetica 10 on a Letter page with 1" margins).
pub const WIDTH: usize = 95;

/// One line of a page: body text (10 pt), a heading (12 pt bold) or a title (16 pt bold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    size: u8,
    text: String,
}

impl Line {
    pub fn text(text: String) -> Self {
        Self { size: 10, text }
    }
    pub fn title(text: &str) -> Self {
        Self {
            size: 16,
            text: text.to_owned(),
        }
    }
    pub fn heading(text: &str) -> Self {
        Self {
            size: 12,
            text: text.to_owned(),
        }
    }
    pub fn blank() -> Self {
        Self::text(String::new())
    }
}

/// Lines being written, with wrapping of body text at [`WIDTH`].
#[derive(Clone, Debug, Default)]
pub struct Text {
    lines: Vec<Line>,
}

impl Text {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn title(&mut self, text: &str) {
        self.lines.push(Line::title(text));
    }
    pub fn heading(&mut self, text: &str) {
        self.lines.push(Line::heading(text));
    }
    pub fn blank(&mut self) {
        self.lines.push(Line::blank());
    }
    /// Body text, wrapped; each `\n` starts a new line, and a line's leading spaces indent it
    /// and its continuation lines.
    pub fn paragraph(&mut self, text: &str) {
        for part in text.split('\n') {
            let body = part.trim_start_matches(' ');
            let indent = &part[..part.len() - body.len()];
            let width = WIDTH.saturating_sub(indent.len()).max(WIDTH / 2);
            self.lines.extend(
                wrap(body, width)
                    .into_iter()
                    .map(|l| Line::text(format!("{indent}{l}"))),
            );
        }
    }
    /// `label: value`, wrapped.
    pub fn fact(&mut self, label: &str, value: &str) {
        self.paragraph(&format!("{label}: {value}"));
    }
    pub fn push(&mut self, line: Line) {
        self.lines.push(line);
    }
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
}

/// A file embedded in the PDF (shown by readers as an attachment).
#[derive(Clone, Copy, Debug)]
pub struct Attachment<'a> {
    /// The file name, e.g. `issued-warrant.json`.
    pub name: &'a str,
    /// The MIME type, e.g. `application/json`.
    pub mime_type: &'a str,
    pub bytes: &'a [u8],
}

/// Splits `text` into lines of at most `width` characters, at spaces where possible.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            out.push(head);
        }
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    out.push(line);
    out
}

/// A PDF string literal in WinAnsiEncoding: Latin-1 as is, the common typographic marks mapped,
/// anything else `?` (an embedded original keeps the exact text).
pub fn pdf_string(text: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for ch in text.chars() {
        let byte = match ch {
            '(' | ')' | '\\' => {
                out.push(b'\\');
                ch as u8
            }
            ' '..='~' => ch as u8,
            '\u{a0}'..='\u{ff}' => ch as u32 as u8,
            '…' => 0x85,
            '–' => 0x96,
            '—' => 0x97,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '€' => 0x80,
            '\t' => b' ',
            _ => b'?',
        };
        out.push(byte);
    }
    out.push(b')');
    out
}

/// A PDF name for `text` (`application/json` → `/application#2Fjson`): regular printable
/// characters as they are, everything else `#xx`.
fn pdf_name(text: &str) -> String {
    let mut out = String::from("/");
    for b in text.bytes() {
        let delimiter = matches!(
            b,
            b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%' | b'#'
        );
        if (b'!'..=b'~').contains(&b) && !delimiter {
            out.push(b as char);
        } else {
            let _ = write!(out, "#{b:02X}");
        }
    }
    out
}

/// Lowest baseline of a text line: clear of the footer at 40 pt.
const FIT_BOTTOM: f32 = 56.0;
/// Baseline of a page's first line is this minus the line's size and 4 pt.
const TOP: f32 = 742.0;

fn height(line: &Line) -> f32 {
    f32::from(line.size) + 4.0
}

/// As many lines to a page as fit above the footer; a heading never ends a page.
fn paginate(lines: &[Line]) -> Vec<&[Line]> {
    let mut pages = Vec::new();
    let mut start = 0;
    let mut y = TOP;
    for (i, line) in lines.iter().enumerate() {
        let mut needed = height(line);
        if line.size > 10 {
            // Keep a heading with at least two lines of what it heads.
            needed += 2.0 * 14.0;
        }
        if i > start && y - needed < FIT_BOTTOM {
            pages.push(&lines[start..i]);
            start = i;
            y = TOP;
        }
        y -= height(line);
    }
    pages.push(&lines[start..]);
    pages.retain(|p| !p.is_empty());
    if pages.is_empty() {
        // A PDF needs a page; an empty document is one empty page with its footer.
        pages.push(&[]);
    }
    pages
}

/// The PDF of `lines`, as many to a page as fit above the footer, `footer(page, pages)`
/// (1-based) at the foot of each, and `attachment` embedded.
pub fn render(
    lines: &[Line],
    footer: impl Fn(usize, usize) -> String,
    attachment: Option<Attachment<'_>>,
) -> Vec<u8> {
    let pages = paginate(lines);
    let n = pages.len();
    // Objects: 1 catalog, 2 pages, 3 font, 4 bold font, with an attachment 5 embedded file and
    // 6 filespec, then a page and its content stream for each page.
    let first_page = if attachment.is_some() { 7 } else { 5 };
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let page_ids: Vec<usize> = (0..n).map(|i| first_page + 2 * i).collect();
    let mut catalog = b"<< /Type /Catalog /Pages 2 0 R".to_vec();
    if let Some(a) = &attachment {
        catalog.extend(b" /Names << /EmbeddedFiles << /Names [");
        catalog.extend(pdf_string(a.name));
        catalog.extend(b" 6 0 R] >> >>");
    }
    catalog.extend(b" >>");
    objects.push(catalog);
    let kids: String = page_ids.iter().map(|id| format!("{id} 0 R ")).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.trim_end()).into_bytes());
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    if let Some(a) = &attachment {
        let mut file = format!(
            "<< /Type /EmbeddedFile /Subtype {} /Length {} >>\nstream\n",
            pdf_name(a.mime_type),
            a.bytes.len()
        )
        .into_bytes();
        file.extend_from_slice(a.bytes);
        file.extend_from_slice(b"\nendstream");
        objects.push(file);
        let mut spec = b"<< /Type /Filespec /F ".to_vec();
        spec.extend(pdf_string(a.name));
        spec.extend(b" /UF ");
        spec.extend(pdf_string(a.name));
        spec.extend(b" /AFRelationship /Source /EF << /F 5 0 R >> >>");
        objects.push(spec);
    }
    for (i, page) in pages.iter().enumerate() {
        let mut content: Vec<u8> = Vec::new();
        let mut y = TOP;
        for line in page.iter() {
            let font = if line.size > 10 { "F2" } else { "F1" };
            y -= height(line);
            if !line.text.is_empty() {
                content.extend(format!("BT /{font} {} Tf 72 {y:.1} Td ", line.size).into_bytes());
                content.extend(pdf_string(&line.text));
                content.extend(b" Tj ET\n");
            }
        }
        content.extend(b"BT /F1 7 Tf 72 40 Td ");
        content.extend(pdf_string(&footer(i + 1, n)));
        content.extend(b" Tj ET\n");
        let content_id = page_ids[i] + 1;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>"
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend(content);
        stream.extend(b"\nendstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
        out.extend(body);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        let _ = writeln!(table, "{o:010} 00000 n ");
    }
    let _ = write!(
        table,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend(table.into_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn names_and_strings_are_escaped() {
        assert_eq!(pdf_name("application/json"), "/application#2Fjson");
        assert_eq!(pdf_name("a b#"), "/a#20b#23");
        assert_eq!(pdf_string("(a\\b) é 小"), b"(\\(a\\\\b\\) \xe9 ?)".to_vec());
    }

    #[test]
    fn without_an_attachment_the_objects_are_numbered_from_the_fonts_on() {
        let mut text = Text::new();
        text.title("Title");
        text.fact("Label", &"long value ".repeat(30));
        let pdf = render(text.lines(), |p, n| format!("page {p} of {n}"), None);
        assert!(find(&pdf, b"/EmbeddedFiles").is_none());
        assert!(find(&pdf, b"/Kids [5 0 R]").is_some());
        assert!(find(&pdf, b"(page 1 of 1)").is_some());
        let empty = render(&[], |p, n| format!("page {p} of {n}"), None);
        assert!(find(&empty, b"/Count 1").is_some());
    }

    #[test]
    fn indented_paragraphs_keep_their_indent_when_wrapped() {
        let mut text = Text::new();
        text.paragraph(&format!("    {}", "word ".repeat(40)));
        let lines = text.lines();
        assert!(lines.len() > 1);
        for line in lines {
            assert!(line.text.starts_with("    w"), "{:?}", line.text);
            assert!(line.text.chars().count() <= WIDTH);
        }
    }

    #[test]
    fn fitted_pages_stay_above_the_footer_and_keep_headings_with_their_text() {
        let mut lines = vec![Line::text("x".into()); 48];
        lines.push(Line::heading("Next"));
        lines.extend(vec![Line::text("y".into()); 60]);
        let pages = paginate(&lines);
        for page in &pages {
            let bottom = TOP - page.iter().map(height).sum::<f32>();
            assert!(bottom >= FIT_BOTTOM, "{bottom}");
        }
        assert_eq!(pages[0].len(), 48, "the heading moved to the next page");
        assert_eq!(pages[1][0], Line::heading("Next"));
        assert_eq!(pages.iter().map(|p| p.len()).sum::<usize>(), lines.len());
    }
}
