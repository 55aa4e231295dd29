//! Splitting a command's output into lines as it arrives in arbitrary chunks.

/// Lines longer than this are cut, so binary output cannot grow the buffer without bound.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Turns chunks of bytes into lines: a line may span chunks, `\r\n` counts as one break, and
/// invalid UTF-8 is replaced rather than fatal (tool output is for people).
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk and returns the lines it completed.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&rest[..end]);
            lines.push(self.take_line());
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() > MAX_LINE_BYTES {
            let tail = self.pending.split_off(MAX_LINE_BYTES);
            lines.push(self.take_line());
            self.pending = tail;
        }
        lines
    }

    /// The last line when the output did not end with a newline.
    pub(super) fn finish(mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.take_line())
    }

    fn take_line(&mut self) -> String {
        if self.pending.last() == Some(&b'\r') {
            self.pending.pop();
        }
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_span_chunks() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"Export sta"), Vec::<String>::new());
        assert_eq!(s.push(b"rted\nrow"), vec!["Export started"]);
        assert_eq!(s.push(b"s: 12\r\n\nExport finished"), vec!["rows: 12", ""]);
        assert_eq!(s.finish(), Some("Export finished".to_string()));
    }

    #[test]
    fn output_ending_in_newline_has_no_extra_line() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"a\nb\n"), vec!["a", "b"]);
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn multibyte_characters_split_across_chunks_survive() {
        let bytes = "größe ✓\n".as_bytes();
        let mut s = LineSplitter::default();
        let mut lines = s.push(&bytes[..3]);
        lines.extend(s.push(&bytes[3..]));
        assert_eq!(lines, vec!["größe ✓"]);
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"bad \xff byte\n"), vec!["bad \u{fffd} byte"]);
    }

    #[test]
    fn overlong_lines_are_cut() {
        let mut s = LineSplitter::default();
        let lines = s.push(&vec![b'x'; MAX_LINE_BYTES + 10]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(s.finish().map(|l| l.len()), Some(10));
    }
}
