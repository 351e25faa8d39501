//! What the web UI adds to the shared formatters: health colours and HTML escaping.

pub use langguard_ops::format::{clock, count, duration, moment, percent, usd};

/// The success-rate colour of PRODUCT-SPEC §3: green from 95 %, yellow from 85 %, red below.
pub fn health_class(success_rate: Option<f64>) -> &'static str {
    match success_rate {
        None => "none",
        Some(r) if r >= 0.95 => "good",
        Some(r) if r >= 0.85 => "fair",
        Some(_) => "poor",
    }
}

/// A message as the page shows it: a sentence, its first letter capital.
pub fn sentence(text: String) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or(text)
}

/// Text made safe to put in HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_success_rate() {
        assert_eq!(health_class(Some(0.96)), "good");
        assert_eq!(health_class(Some(0.90)), "fair");
        assert_eq!(health_class(Some(0.50)), "poor");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
