//! The Trace Explorer's search syntax (PRODUCT-SPEC §2), parsed once into a tree every backend
//! compiles to its own SQL:
//!
//! - bare terms are ANDed: `payment NOT test`;
//! - `a OR b` (OR binds tighter than the implicit AND, as in web search: `a OR b c` is
//!   `(a OR b) AND c`); parentheses group;
//! - `NOT term` negates;
//! - `"exact phrase"` keeps its spaces;
//! - `field:value` / `field:"a phrase"` looks in one field. `model`, `provider`, `gateway`,
//!   `path` and `log_id` match when the field contains the value; `status:success|error`,
//!   `cached:true|false` and `status_code:429` match exactly; `requested_model` and Cloudflare's
//!   extra log fields match: `step`, `feedback`, `score` and `byok` exactly, `event_id`,
//!   `request_type`, `model_type`, `dlp_action`, `user_agent` when the field contains the
//!   value, `dlp_profiles` and `guardrails` when their JSON text does;
//!   `metadata.<key>:value` or any other `<key>:value` matches when that custom-metadata value
//!   contains the value (`agent:ChatBot`, `user_id:42`).
//!
//! Text matches are case-insensitive substring matches. A bare term looks in the model,
//! requested model, provider, gateway, path, log id and metadata values.

use std::fmt;

use crate::{DetailField, TraceStatus};

/// Longest accepted query, in bytes, and most terms in one: a search is typed by a person, and
/// every term costs a pass over the candidate rows.
pub const MAX_QUERY_BYTES: usize = 1_000;
pub const MAX_TERMS: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum SearchExpr {
    Term(Term),
    Not(Box<SearchExpr>),
    And(Vec<SearchExpr>),
    Or(Vec<SearchExpr>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// Contained in any searchable text field.
    Anywhere(String),
    /// Contained in one text column.
    Field(TextField, String),
    /// Contained in one of Cloudflare's extra log fields.
    Detail(DetailField, String),
    /// Contained in the value of one custom-metadata key.
    Metadata {
        key: String,
        text: String,
    },
    Status(TraceStatus),
    Cached(bool),
    StatusCode(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Model,
    RequestedModel,
    Provider,
    Gateway,
    Path,
    LogId,
}

impl TextField {
    pub const ALL: [TextField; 6] = [
        TextField::Model,
        TextField::RequestedModel,
        TextField::Provider,
        TextField::Gateway,
        TextField::Path,
        TextField::LogId,
    ];

    pub fn column(self) -> &'static str {
        match self {
            TextField::Model => "model",
            TextField::RequestedModel => "requested_model",
            TextField::Provider => "provider",
            TextField::Gateway => "gateway",
            TextField::Path => "path",
            TextField::LogId => "log_id",
        }
    }
}

/// Why a search didn't parse, and where (a byte offset into the query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchError {
    pub message: String,
    pub position: usize,
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.position + 1)
    }
}

impl std::error::Error for SearchError {}

/// Metadata keys usable in `key:value`: what people put in Cloudflare's custom metadata, and
/// nothing that would need quoting inside a JSON path.
pub fn is_metadata_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses a search. An empty or all-blank query is `None`: it filters nothing.
pub fn parse(query: &str) -> Result<Option<SearchExpr>, SearchError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(SearchError {
            message: format!("the search is longer than {MAX_QUERY_BYTES} characters"),
            position: MAX_QUERY_BYTES,
        });
    }
    let tokens = tokenize(query)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let terms = tokens
        .iter()
        .filter(|t| matches!(t.kind, TokenKind::Word(_) | TokenKind::Field(..)))
        .count();
    if terms > MAX_TERMS {
        return Err(SearchError {
            message: format!("the search has more than {MAX_TERMS} terms"),
            position: 0,
        });
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        end: query.len(),
    };
    let expr = parser.and_expr()?;
    if let Some(token) = parser.peek() {
        // Only a stray `)` stops `and_expr` early.
        return Err(SearchError {
            message: "unmatched \")\"".into(),
            position: token.position,
        });
    }
    Ok(Some(expr))
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Word(String),
    Field(String, String),
    Or,
    Not,
    Open,
    Close,
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    position: usize,
}

fn tokenize(query: &str) -> Result<Vec<Token>, SearchError> {
    let mut tokens = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '(' || c == ')' {
            chars.next();
            let kind = if c == '(' {
                TokenKind::Open
            } else {
                TokenKind::Close
            };
            tokens.push(Token {
                kind,
                position: start,
            });
            continue;
        }
        if c == '"' {
            chars.next();
            let phrase = quoted(start, &mut chars)?;
            tokens.push(Token {
                kind: TokenKind::Word(phrase),
                position: start,
            });
            continue;
        }
        // A word runs to whitespace or a parenthesis; `field:` may be followed by a phrase.
        let mut word = String::new();
        let mut kind = None;
        while let Some(&(at, c)) = chars.peek() {
            if c.is_whitespace() || c == '(' || c == ')' {
                break;
            }
            if c == ':' && kind.is_none() && !word.is_empty() {
                chars.next();
                let field = std::mem::take(&mut word);
                let value = match chars.peek() {
                    Some(&(_, '"')) => {
                        chars.next();
                        quoted(at + 1, &mut chars)?
                    }
                    _ => {
                        let mut value = String::new();
                        while let Some(&(_, c)) = chars.peek() {
                            if c.is_whitespace() || c == '(' || c == ')' {
                                break;
                            }
                            value.push(c);
                            chars.next();
                        }
                        value
                    }
                };
                if value.is_empty() {
                    return Err(SearchError {
                        message: format!("\"{field}:\" needs a value, e.g. {field}:something"),
                        position: start,
                    });
                }
                kind = Some(TokenKind::Field(field, value));
                break;
            }
            word.push(c);
            chars.next();
        }
        let kind = match (kind, word.as_str()) {
            (Some(field), _) => field,
            (None, "OR") => TokenKind::Or,
            (None, "NOT") => TokenKind::Not,
            (None, _) => TokenKind::Word(word),
        };
        tokens.push(Token {
            kind,
            position: start,
        });
    }
    Ok(tokens)
}

/// The rest of a `"…"` phrase whose opening quote (at `start`) was consumed.
fn quoted(
    start: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, SearchError> {
    let mut phrase = String::new();
    for (_, c) in chars.by_ref() {
        if c == '"' {
            if phrase.trim().is_empty() {
                return Err(SearchError {
                    message: "an empty \"\" phrase matches nothing; put words between the quotes"
                        .into(),
                    position: start,
                });
            }
            return Ok(phrase);
        }
        phrase.push(c);
    }
    Err(SearchError {
        message: "a phrase is missing its closing quote (\")".into(),
        position: start,
    })
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |t| t.position)
    }

    /// and := or+ (up to the end or a `)`)
    fn and_expr(&mut self) -> Result<SearchExpr, SearchError> {
        let mut parts = Vec::new();
        while let Some(token) = self.peek() {
            if token.kind == TokenKind::Close {
                break;
            }
            parts.push(self.or_expr()?);
        }
        match parts.len() {
            0 => Err(SearchError {
                message: "expected a search term".into(),
                position: self.position(),
            }),
            1 => Ok(parts.remove(0)),
            _ => Ok(SearchExpr::And(parts)),
        }
    }

    /// or := unary (OR unary)*
    fn or_expr(&mut self) -> Result<SearchExpr, SearchError> {
        let mut parts = vec![self.unary()?];
        while self.peek().is_some_and(|t| t.kind == TokenKind::Or) {
            self.next += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            SearchExpr::Or(parts)
        })
    }

    /// unary := NOT unary | ( and ) | term
    fn unary(&mut self) -> Result<SearchExpr, SearchError> {
        let position = self.position();
        let Some(token) = self.tokens.get(self.next).cloned() else {
            return Err(SearchError {
                message: "the search ends where a term was expected".into(),
                position,
            });
        };
        self.next += 1;
        match token.kind {
            TokenKind::Not => Ok(SearchExpr::Not(Box::new(self.unary()?))),
            TokenKind::Open => {
                let inner = self.and_expr()?;
                if self.peek().is_some_and(|t| t.kind == TokenKind::Close) {
                    self.next += 1;
                    Ok(inner)
                } else {
                    Err(SearchError {
                        message: "\"(\" is never closed".into(),
                        position: token.position,
                    })
                }
            }
            TokenKind::Close => Err(SearchError {
                message: "\")\" where a term was expected".into(),
                position,
            }),
            TokenKind::Or => Err(SearchError {
                message: "OR needs a term on both sides".into(),
                position,
            }),
            TokenKind::Word(word) => Ok(SearchExpr::Term(Term::Anywhere(word))),
            TokenKind::Field(field, value) => field_term(&field, value, position),
        }
    }
}

fn field_term(field: &str, value: String, position: usize) -> Result<SearchExpr, SearchError> {
    let err = |message: String| SearchError { message, position };
    let name = field.to_ascii_lowercase();
    if let Some(detail) = DetailField::parse(&name) {
        let value = match (detail, value.to_ascii_lowercase().as_str()) {
            (DetailField::Byok, "true" | "yes") => "true".to_owned(),
            (DetailField::Byok, "false" | "no") => "false".to_owned(),
            _ => value,
        };
        return Ok(SearchExpr::Term(Term::Detail(detail, value)));
    }
    let term = match name.as_str() {
        "model" => Term::Field(TextField::Model, value),
        "provider" => Term::Field(TextField::Provider, value),
        "gateway" => Term::Field(TextField::Gateway, value),
        "path" => Term::Field(TextField::Path, value),
        "log_id" | "log" => Term::Field(TextField::LogId, value),
        "requested_model" => Term::Field(TextField::RequestedModel, value),
        "status" => match value.to_ascii_lowercase().as_str() {
            "success" | "ok" => Term::Status(TraceStatus::Success),
            "error" | "failed" => Term::Status(TraceStatus::Error),
            _ => {
                return Err(err(format!(
                    "status:{value} — use status:success or status:error"
                )))
            }
        },
        "cached" => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" => Term::Cached(true),
            "false" | "no" => Term::Cached(false),
            _ => {
                return Err(err(format!(
                    "cached:{value} — use cached:true or cached:false"
                )))
            }
        },
        "status_code" | "code" => match value.parse::<i64>() {
            Ok(code) if (100..=999).contains(&code) => Term::StatusCode(code),
            _ => {
                return Err(err(format!(
                    "status_code:{value} — use an HTTP status code, e.g. status_code:429"
                )))
            }
        },
        other => {
            let key = other.strip_prefix("metadata.").unwrap_or(other);
            // Keys keep the case they were written in: metadata keys are case-sensitive.
            let key = &field[field.len() - key.len()..];
            if !is_metadata_key(key) {
                return Err(err(format!(
                    "\"{field}\" is not a field; use model, provider, gateway, path, log_id, \
                     status, cached, status_code, a log field such as dlp_action, or a \
                     metadata key (letters, digits, _ - .)"
                )));
            }
            Term::Metadata {
                key: key.to_string(),
                text: value,
            }
        }
    };
    Ok(SearchExpr::Term(term))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(s: &str) -> SearchExpr {
        SearchExpr::Term(Term::Anywhere(s.into()))
    }

    #[test]
    fn the_product_syntax_parses_as_documented() {
        let cases: Vec<(&str, SearchExpr)> = vec![
            ("payment", any("payment")),
            (
                "payment NOT test",
                SearchExpr::And(vec![any("payment"), SearchExpr::Not(Box::new(any("test")))]),
            ),
            ("a OR b", SearchExpr::Or(vec![any("a"), any("b")])),
            (
                "a OR b c",
                SearchExpr::And(vec![SearchExpr::Or(vec![any("a"), any("b")]), any("c")]),
            ),
            (
                "a (b OR c)",
                SearchExpr::And(vec![any("a"), SearchExpr::Or(vec![any("b"), any("c")])]),
            ),
            ("\"exact phrase\"", any("exact phrase")),
            (
                "agent:ChatBot status:error",
                SearchExpr::And(vec![
                    SearchExpr::Term(Term::Metadata {
                        key: "agent".into(),
                        text: "ChatBot".into(),
                    }),
                    SearchExpr::Term(Term::Status(TraceStatus::Error)),
                ]),
            ),
            (
                "model:\"gpt 4\"",
                SearchExpr::Term(Term::Field(TextField::Model, "gpt 4".into())),
            ),
            (
                "metadata.user_id:42",
                SearchExpr::Term(Term::Metadata {
                    key: "user_id".into(),
                    text: "42".into(),
                }),
            ),
            ("cached:yes", SearchExpr::Term(Term::Cached(true))),
            ("code:429", SearchExpr::Term(Term::StatusCode(429))),
            (
                "NOT NOT x",
                SearchExpr::Not(Box::new(SearchExpr::Not(Box::new(any("x"))))),
            ),
            // Lowercase `or`/`not` are words, not operators.
            (
                "a or b",
                SearchExpr::And(vec![any("a"), any("or"), any("b")]),
            ),
            // A path is a word; a colon inside a phrase is text.
            ("/v1/chat/completions", any("/v1/chat/completions")),
            ("\"a:b\"", any("a:b")),
        ];
        for (query, expected) in cases {
            assert_eq!(parse(query), Ok(Some(expected)), "{query}");
        }
    }

    #[test]
    fn blank_searches_filter_nothing() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   "), Ok(None));
    }

    #[test]
    fn mistakes_are_explained_with_their_position() {
        let cases = [
            ("\"open", 0, "closing quote"),
            ("a OR", 4, "ends where a term"),
            ("OR a", 0, "OR needs a term"),
            ("(a b", 0, "never closed"),
            ("a )", 2, "unmatched"),
            ("NOT", 3, "ends where a term"),
            ("status:maybe", 0, "status:success"),
            ("cached:perhaps", 0, "cached:true"),
            ("status_code:abc", 0, "HTTP status code"),
            ("model:", 0, "needs a value"),
            ("\"\"", 0, "empty"),
            ("we!rd:x", 0, "not a field"),
            ("()", 1, "expected a search term"),
        ];
        for (query, position, needle) in cases {
            let err = parse(query).expect_err(query);
            assert!(err.message.contains(needle), "{query}: {}", err.message);
            assert_eq!(err.position, position, "{query}: {err}");
        }
    }

    #[test]
    fn oversized_searches_are_refused() {
        assert!(parse(&"a ".repeat(600)).is_err());
        assert!(parse(&"a ".repeat(MAX_TERMS + 1)).is_err());
        assert!(parse(&"a ".repeat(MAX_TERMS)).is_ok());
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, ..Default::default() })]

        /// Whatever people type, the parser answers (an expression, nothing, or an error with
        /// a position inside the query) and never panics.
        #[test]
        fn any_query_parses_or_is_refused_with_a_position(
            query in proptest::prop_oneof![
                ".{0,80}",
                "[a-z:\" ()\\-]{0,60}",
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::prelude::Just("OR"), proptest::prelude::Just("NOT"),
                        proptest::prelude::Just("("), proptest::prelude::Just(")"),
                        proptest::prelude::Just("\""), proptest::prelude::Just("model:"),
                        proptest::prelude::Just("status:error"), proptest::prelude::Just("-"),
                        proptest::prelude::Just("metadata.a:b"), proptest::prelude::Just("x"),
                        proptest::prelude::Just(" "), proptest::prelude::Just("é"),
                    ],
                    0..30,
                ).prop_map(|parts| parts.concat()),
            ]
        ) {
            if let Err(e) = parse(&query) {
                proptest::prop_assert!(e.position <= query.len(), "{:?}: {}", query, e.position);
                proptest::prop_assert!(!e.message.is_empty());
            }
        }
    }
}
