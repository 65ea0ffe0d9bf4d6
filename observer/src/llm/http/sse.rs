//! An incremental, bounded Server-Sent-Events parser: bytes in (in whatever pieces the network delivers), the
//! `data` of each complete event out.

/// Longest line or event `data` kept; anything longer is skipped (the event is lost, parsing goes on).
pub(crate) const MAX_EVENT_BYTES: usize = 1 << 20;

/// Feeds on raw bytes and calls back with each event's `data` (lines joined by `\n`).
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The current, incomplete line.
    line: Vec<u8>,
    /// Whether the current line grew beyond the limit (skipped up to its end).
    line_overflow: bool,
    /// The `data` of the current event so far.
    data: Vec<u8>,
    /// Whether the current event has a `data` field.
    has_data: bool,
    /// Whether the current event's data grew beyond the limit (the event is dropped).
    data_overflow: bool,
    /// A `\r` ended the previous piece: a `\n` starting the next one belongs to it.
    after_cr: bool,
}

impl SseParser {
    /// Parses `bytes`, calling `on_event` with the data of every event completed by them.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], on_event: &mut dyn FnMut(&[u8])) {
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.push_line(bytes);
                    return;
                }
                Some(end) => {
                    self.push_line(&bytes[..end]);
                    let was_cr = bytes[end] == b'\r';
                    let mut next = end + 1;
                    if was_cr {
                        if bytes.get(next) == Some(&b'\n') {
                            next += 1;
                        } else if next == bytes.len() {
                            self.after_cr = true;
                        }
                    }
                    self.end_line(on_event);
                    bytes = &bytes[next..];
                }
            }
        }
    }

    /// The end of the stream: dispatches an event left without its terminating blank line.
    pub(crate) fn finish(&mut self, on_event: &mut dyn FnMut(&[u8])) {
        if !self.line.is_empty() || self.line_overflow {
            self.end_line(on_event);
        }
        self.dispatch(on_event);
    }

    fn push_line(&mut self, piece: &[u8]) {
        if self.line_overflow {
            return;
        }
        if self.line.len() + piece.len() > MAX_EVENT_BYTES {
            self.line.clear();
            self.line_overflow = true;
        } else {
            self.line.extend_from_slice(piece);
        }
    }

    fn end_line(&mut self, on_event: &mut dyn FnMut(&[u8])) {
        let overflow = std::mem::take(&mut self.line_overflow);
        let mut line = std::mem::take(&mut self.line);
        if overflow {
            // A line too long to keep: if it was data, the event is incomplete.
            self.data_overflow = true;
            self.has_data = true;
        } else if line.is_empty() {
            self.dispatch(on_event);
        } else if let Some(rest) = line.strip_prefix(b"data") {
            let value = match rest.first() {
                None => Some(&[][..]),
                Some(b':') => Some(rest[1..].strip_prefix(b" ").unwrap_or(&rest[1..])),
                Some(_) => None, // a field named e.g. `datax`: ignored
            };
            if let Some(value) = value {
                if self.has_data && !self.data_overflow {
                    self.data.push(b'\n');
                }
                self.has_data = true;
                if self.data.len() + value.len() > MAX_EVENT_BYTES {
                    self.data_overflow = true;
                    self.data.clear();
                } else if !self.data_overflow {
                    self.data.extend_from_slice(value);
                }
            }
        }
        // Other fields (`event`, `id`, `retry`) and comments are not needed: the JSON says what it is.
        // The line's allocation is kept for the next one.
        line.clear();
        self.line = line;
    }

    fn dispatch(&mut self, on_event: &mut dyn FnMut(&[u8])) {
        if self.has_data && !self.data_overflow {
            on_event(&self.data);
        }
        self.data.clear();
        self.has_data = false;
        self.data_overflow = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(pieces: &[&[u8]]) -> Vec<String> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut |d| out.push(String::from_utf8_lossy(d).into_owned()));
        }
        parser.finish(&mut |d| out.push(String::from_utf8_lossy(d).into_owned()));
        out
    }

    #[test]
    fn splits_events_across_pieces_and_line_endings() {
        let whole: &[u8] = b"event: a\ndata: {\"x\":1}\n\n: comment\ndata: two\ndata: lines\r\n\r\ndata:[DONE]\r\r";
        let expected = vec!["{\"x\":1}".to_owned(), "two\nlines".to_owned(), "[DONE]".to_owned()];
        assert_eq!(events(&[whole]), expected);
        // Every split point, including between `\r` and `\n`.
        for i in 0..whole.len() {
            assert_eq!(events(&[&whole[..i], &whole[i..]]), expected, "split at {i}");
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events(&bytes), expected);
    }

    #[test]
    fn unterminated_last_event_and_oversized_events() {
        assert_eq!(events(&[b"data: tail"]), vec!["tail".to_owned()]);
        let big = vec![b'x'; MAX_EVENT_BYTES + 10];
        let mut input = b"data: ".to_vec();
        input.extend_from_slice(&big);
        input.extend_from_slice(b"\n\ndata: ok\n\n");
        assert_eq!(events(&[&input]), vec!["ok".to_owned()]);
        assert!(events(&[b"\n\n\n", b"datax: 1\n\n"]).is_empty());
    }
}
