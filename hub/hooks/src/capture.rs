//! Bounded reading of a hook's output so a runaway hook cannot exhaust the hub's memory.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read from a stream, at most a cap of them.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// The first bytes, up to the cap.
    pub bytes: Vec<u8>,
    /// True when the stream had more than the cap.
    pub overflowed: bool,
}

impl Captured {
    /// The bytes as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Reads until EOF or until more than `cap` bytes arrived, whichever comes first.
///
/// Stops at the overflow so the caller can react (kill the hook) instead of waiting for a
/// hook that prints forever.
pub(crate) async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> std::io::Result<Captured> {
    let mut out = Captured::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        let room = cap - out.bytes.len();
        if n > room {
            out.bytes.extend_from_slice(&buf[..room]);
            out.overflowed = true;
            return Ok(out);
        }
        out.bytes.extend_from_slice(&buf[..n]);
    }
}

/// Keeps the first `keep` bytes and reads (and drops) the rest to EOF, so a chatty hook never
/// blocks on a full stderr pipe.
pub(crate) async fn read_excerpt<R: AsyncRead + Unpin>(mut reader: R, keep: usize) -> std::io::Result<Captured> {
    let mut out = Captured::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        let room = keep.saturating_sub(out.bytes.len());
        out.bytes.extend_from_slice(&buf[..n.min(room)]);
        if n > room {
            out.overflowed = true;
        }
    }
}

/// The largest index `<= at` that is a char boundary of `s` (std's version is unstable).
pub(crate) fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// Lossy text of an excerpt, marking that it was cut.
pub(crate) fn excerpt_text(captured: &Captured) -> String {
    let mut text = captured.text();
    if captured.overflowed {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_capped_stops_after_the_cap() {
        let data = [b'x'; 100];
        let got = read_capped(&data[..], 10).await.unwrap();
        assert_eq!(got.bytes.len(), 10);
        assert!(got.overflowed);
    }

    #[tokio::test]
    async fn read_capped_accepts_exactly_the_cap() {
        let data = [b'x'; 10];
        let got = read_capped(&data[..], 10).await.unwrap();
        assert_eq!(got.bytes.len(), 10);
        assert!(!got.overflowed);
    }

    #[tokio::test]
    async fn read_excerpt_keeps_the_start_and_drains_the_rest() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let got = read_excerpt(&data[..], 8).await.unwrap();
        assert_eq!(got.bytes, data[..8]);
        assert!(got.overflowed);
    }

    #[test]
    fn floor_char_boundary_never_splits_a_character() {
        let s = "aé"; // 'é' is two bytes
        assert_eq!(floor_char_boundary(s, 2), 1);
        assert_eq!(floor_char_boundary(s, 9), 3);
    }
}
