//! Tokeniser for packetdrill scripts.
//!
//! Mirrors the token rules of packetdrill's `lexer.l` (GRAMMAR.md §1):
//! whitespace and newlines only separate tokens, `//` and `/* */` are
//! comments, `--name[=value]` is an option, `` `…` `` a shell command,
//! `%{ … }%` a code block, and `--define`d names are replaced by their value.

use std::collections::BTreeMap;
use std::fmt;

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    /// `--name` or `--name=value`.
    Option {
        /// The name after `--`.
        name: String,
        /// The text after `=`, if any.
        value: Option<String>,
    },
    /// The text between two backticks (may span lines).
    Shell(String),
    /// The text between `%{` and `}%`.
    Code(String),
    /// A decimal (possibly negative) or `0x` hexadecimal integer.
    Int(i64),
    /// A decimal number with a fractional part, kept as written
    /// (`.1`, `0.200`, `-1.5`) so times convert to microseconds exactly.
    Float(String),
    /// A name: `[A-Za-z_][A-Za-z0-9_]*`, or a run of letters and digits that
    /// starts with a digit but is not a number (a hex cookie).
    Word(String),
    /// A double-quoted string, without the quotes.
    Str(String),
    /// `...`.
    Ellipsis,
    /// Any other single character.
    Punct(char),
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Option { name, value: None } => write!(f, "--{name}"),
            TokenKind::Option {
                name,
                value: Some(v),
            } => write!(f, "--{name}={v}"),
            TokenKind::Shell(_) => f.write_str("`shell command`"),
            TokenKind::Code(_) => f.write_str("%{ code block }%"),
            TokenKind::Int(v) => write!(f, "{v}"),
            TokenKind::Float(s) | TokenKind::Word(s) => f.write_str(s),
            TokenKind::Str(s) => write!(f, "\"{s}\""),
            TokenKind::Ellipsis => f.write_str("..."),
            TokenKind::Punct(c) => write!(f, "{c}"),
        }
    }
}

/// One token with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// 1-based line of its first character.
    pub line: u32,
    /// Byte offset of its first character in the source.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

/// A lexical error: an unterminated construct or a malformed number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line where the problem starts.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LexError {}

/// Splits `src` into tokens. Words named in `defines` (`--define=NAME=value`
/// or `-D NAME=value`) are replaced by the tokens of their value.
pub fn tokenize(src: &str, defines: &BTreeMap<String, String>) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
        line: 1,
        out: Vec::new(),
    };
    lx.run(defines, 0)?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    line: u32,
    out: Vec<Token>,
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<u8> {
        self.b.get(self.pos + off).copied()
    }

    fn err(line: u32, message: impl Into<String>) -> LexError {
        LexError {
            line,
            message: message.into(),
        }
    }

    /// Advances to `to`, counting newlines.
    fn advance_to(&mut self, to: usize) {
        let n = self.src[self.pos..to].matches('\n').count();
        self.line += n as u32;
        self.pos = to;
    }

    fn push(&mut self, kind: TokenKind, line: u32, start: usize) {
        self.out.push(Token {
            kind,
            line,
            start,
            end: self.pos,
        });
    }

    fn find(&self, pat: &str) -> Option<usize> {
        self.src[self.pos..].find(pat).map(|i| self.pos + i)
    }

    fn run(&mut self, defines: &BTreeMap<String, String>, depth: u32) -> Result<(), LexError> {
        while let Some(c) = self.peek(0) {
            let start = self.pos;
            let line = self.line;
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                c if c.is_ascii_whitespace() => self.pos += 1,
                b'/' if self.peek(1) == Some(b'/') => {
                    let end = self.find("\n").unwrap_or(self.b.len());
                    self.pos = end;
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    let Some(end) = self.src[self.pos + 2..].find("*/") else {
                        return Err(Self::err(line, "unterminated /* comment"));
                    };
                    self.advance_to(self.pos + 2 + end + 2);
                }
                b'`' => {
                    let Some(end) = self.src[self.pos + 1..].find('`') else {
                        return Err(Self::err(line, "unterminated ` shell command"));
                    };
                    let text = self.src[self.pos + 1..self.pos + 1 + end].to_string();
                    self.advance_to(self.pos + 1 + end + 1);
                    self.push(TokenKind::Shell(text), line, start);
                }
                b'%' if self.peek(1) == Some(b'{') => {
                    let Some(end) = self.src[self.pos + 2..].find("}%") else {
                        return Err(Self::err(line, "unterminated %{ code block (no }%)"));
                    };
                    let text = self.src[self.pos + 2..self.pos + 2 + end].to_string();
                    self.advance_to(self.pos + 2 + end + 2);
                    self.push(TokenKind::Code(text), line, start);
                }
                b'"' => {
                    let Some(end) = self.src[self.pos + 1..].find('"') else {
                        return Err(Self::err(line, "unterminated string"));
                    };
                    let text = self.src[self.pos + 1..self.pos + 1 + end].to_string();
                    self.advance_to(self.pos + 1 + end + 1);
                    self.push(TokenKind::Str(text), line, start);
                }
                b'-' if self.peek(1) == Some(b'-')
                    && self.peek(2).is_some_and(|c| c.is_ascii_alphabetic()) =>
                {
                    self.lex_option(line, start);
                }
                b'.' if self.peek(1) == Some(b'.') && self.peek(2) == Some(b'.') => {
                    self.pos += 3;
                    self.push(TokenKind::Ellipsis, line, start);
                }
                b'.' if self.peek(1).is_some_and(|c| c.is_ascii_digit()) => {
                    self.lex_number(line, start)?;
                }
                b'-' if self.peek(1).is_some_and(|c| c.is_ascii_digit())
                    || (self.peek(1) == Some(b'.')
                        && self.peek(2).is_some_and(|c| c.is_ascii_digit())) =>
                {
                    self.lex_number(line, start)?;
                }
                c if c.is_ascii_digit() => self.lex_number(line, start)?,
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    while self.peek(0).is_some_and(is_word_byte) {
                        self.pos += 1;
                    }
                    let word = &self.src[start..self.pos];
                    if let Some(value) = defines.get(word) {
                        if depth > 8 {
                            return Err(Self::err(line, format!("--define loop at {word}")));
                        }
                        let mut sub = Lexer {
                            src: value,
                            b: value.as_bytes(),
                            pos: 0,
                            line,
                            out: Vec::new(),
                        };
                        sub.run(defines, depth + 1)?;
                        let end = self.pos;
                        self.out.extend(sub.out.into_iter().map(|t| Token {
                            line,
                            start,
                            end,
                            ..t
                        }));
                    } else {
                        let w = word.to_string();
                        self.push(TokenKind::Word(w), line, start);
                    }
                }
                _ => {
                    // One character, which may be multi-byte UTF-8 in a comment-free
                    // position; take the whole char.
                    let ch = self.src[self.pos..].chars().next().unwrap_or('?');
                    self.pos += ch.len_utf8();
                    self.push(TokenKind::Punct(ch), line, start);
                }
            }
        }
        Ok(())
    }

    fn lex_option(&mut self, line: u32, start: usize) {
        self.pos += 2;
        let name_start = self.pos;
        while self.peek(0).is_some_and(|c| is_word_byte(c) || c == b'-') {
            self.pos += 1;
        }
        let name = self.src[name_start..self.pos].to_string();
        let value = if self.peek(0) == Some(b'=') {
            self.pos += 1;
            let v_start = self.pos;
            while self.peek(0).is_some_and(|c| !c.is_ascii_whitespace()) {
                self.pos += 1;
            }
            Some(self.src[v_start..self.pos].to_string())
        } else {
            None
        };
        self.push(TokenKind::Option { name, value }, line, start);
    }

    fn lex_number(&mut self, line: u32, start: usize) -> Result<(), LexError> {
        if self.peek(0) == Some(b'-') {
            self.pos += 1;
        }
        let digits_start = self.pos;
        // Hex, or a run of letters and digits (a cookie).
        while self.peek(0).is_some_and(is_word_byte) {
            self.pos += 1;
        }
        let run = &self.src[digits_start..self.pos];
        let negative = digits_start > start;
        let is_float = self.peek(0) == Some(b'.')
            && self.peek(1).is_some_and(|c| c.is_ascii_digit())
            && run.bytes().all(|c| c.is_ascii_digit());
        if is_float {
            self.pos += 1;
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            let text = self.src[start..self.pos].to_string();
            self.push(TokenKind::Float(text), line, start);
            return Ok(());
        }
        if run.is_empty() {
            return Err(Self::err(line, "malformed number"));
        }
        let value = if let Some(hex) = run.strip_prefix("0x").or_else(|| run.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
        } else if run.bytes().all(|c| c.is_ascii_digit()) {
            run.parse::<i64>().ok()
        } else {
            None
        };
        match value {
            Some(v) => {
                let v = if negative { -v } else { v };
                self.push(TokenKind::Int(v), line, start);
            }
            None if !negative && !run.bytes().all(|c| c.is_ascii_digit()) => {
                self.push(TokenKind::Word(run.to_string()), line, start);
            }
            None => return Err(Self::err(line, format!("number out of range: {run}"))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(src, &BTreeMap::new())
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn blocking_time_splits_into_float_ellipsis_float() {
        use TokenKind::*;
        assert_eq!(
            kinds("+.1...0.200 connect"),
            vec![
                Punct('+'),
                Float(".1".into()),
                Ellipsis,
                Float("0.200".into()),
                Word("connect".into())
            ]
        );
        assert_eq!(
            kinds("+0...30"),
            vec![Punct('+'), Int(0), Ellipsis, Int(30)]
        );
    }

    #[test]
    fn flags_seq_and_numbers() {
        use TokenKind::*;
        assert_eq!(
            kinds("> P. 1:1001(1000) ack -1 0x2 3021b9d8"),
            vec![
                Punct('>'),
                Word("P".into()),
                Punct('.'),
                Int(1),
                Punct(':'),
                Int(1001),
                Punct('('),
                Int(1000),
                Punct(')'),
                Word("ack".into()),
                Int(-1),
                Int(2),
                Word("3021b9d8".into())
            ]
        );
    }

    #[test]
    fn comments_shell_code_and_lines() {
        let src = "// c\n--mss=1000\n`a\nb`\n/* x\n y */ +0 %{ assert 1 }%\n\"s\"";
        let toks = tokenize(src, &BTreeMap::new()).unwrap();
        let lines: Vec<u32> = toks.iter().map(|t| t.line).collect();
        assert_eq!(lines, vec![2, 3, 6, 6, 6, 7]);
        assert_eq!(
            toks[0].kind,
            TokenKind::Option {
                name: "mss".into(),
                value: Some("1000".into())
            }
        );
        assert_eq!(toks[1].kind, TokenKind::Shell("a\nb".into()));
        assert_eq!(toks[4].kind, TokenKind::Code(" assert 1 ".into()));
        assert_eq!(toks[5].kind, TokenKind::Str("s".into()));
    }

    #[test]
    fn defines_replace_words() {
        let mut d = BTreeMap::new();
        d.insert("CODE".to_string(), "host_unreachable".to_string());
        let toks = tokenize("icmp unreachable CODE", &d).unwrap();
        assert_eq!(toks[2].kind, TokenKind::Word("host_unreachable".into()));
    }

    #[test]
    fn unterminated_constructs_are_errors() {
        for src in ["`abc", "%{ assert 1", "\"abc", "/* x"] {
            let e = tokenize(src, &BTreeMap::new()).unwrap_err();
            assert!(e.message.contains("unterminated"), "{src}: {e}");
        }
    }
}
