//! Request bodies as pushers send them: gzip or not, never larger than a limit once inflated
//! (a small gzip body can inflate to gigabytes).

use std::borrow::Cow;
use std::io::Read;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not valid gzip ({0}); send it uncompressed or as gzip with Content-Encoding: gzip")]
    Gzip(String),
    #[error("the body is larger than {limit} bytes once decompressed; send smaller batches")]
    TooLarge { limit: usize },
}

/// Whether `body` starts like a gzip stream (Logpush files are gzip whatever the headers say).
pub fn looks_gzipped(body: &[u8]) -> bool {
    body.starts_with(&[0x1f, 0x8b])
}

/// `body` inflated when `gzip` (or when it looks gzipped), at most `limit` bytes.
pub fn inflate(body: &[u8], gzip: bool, limit: usize) -> Result<Cow<'_, [u8]>, BodyError> {
    if !gzip && !looks_gzipped(body) {
        if body.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        return Ok(Cow::Borrowed(body));
    }
    // Concatenated gzip members (what `cat a.gz b.gz` makes) are one body.
    let mut decoder = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    decoder
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn gzip_is_inflated_within_the_limit_and_refused_beyond_it() {
        let data = vec![b'a'; 10_000];
        assert_eq!(
            inflate(&gz(&data), true, 10_000).expect("fits").len(),
            10_000
        );
        // Sniffed even without the header.
        assert_eq!(
            inflate(&gz(&data), false, 10_000).expect("fits").len(),
            10_000
        );
        assert_eq!(
            inflate(&gz(&data), true, 9_999),
            Err(BodyError::TooLarge { limit: 9_999 })
        );
        assert!(matches!(
            inflate(b"\x1f\x8bnot gzip", true, 100),
            Err(BodyError::Gzip(_))
        ));
        assert_eq!(&*inflate(b"plain", false, 5).expect("plain"), b"plain");
        assert!(inflate(b"plain!", false, 5).is_err());
    }

    #[test]
    fn concatenated_members_are_one_body() {
        let mut both = gz(b"one\n");
        both.extend(gz(b"two\n"));
        assert_eq!(
            &*inflate(&both, true, 100).expect("inflates"),
            b"one\ntwo\n"
        );
    }
}
