//! Bounding text the host keeps or logs but did not write itself (a plugin's log line,
//! its error, a failed job's cause): cut at a character boundary, saying how much went.

/// `text` whole when it fits in `max` bytes, else its start (at a character boundary)
/// and how many bytes were cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let end = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}… [{} bytes cut]", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_saying_how_much() {
        assert_eq!(cut("HTTP 500", 8), "HTTP 500");
        assert_eq!(cut("ééé", 3), "é… [4 bytes cut]");
        let long = "ж".repeat(700);
        assert_eq!(cut(&long, 1000), format!("{}… [400 bytes cut]", "ж".repeat(500)));
    }
}
