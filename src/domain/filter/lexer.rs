//! Lexer: turns filter source text into tokens tagged with 0-based char positions.

use super::FilterError;

/// One lexical token. Keywords get their own variants so the parser never
/// has to compare identifier strings for them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    /// Integer literals are lexed unsigned so that `-9223372036854775808`
    /// (whose magnitude does not fit `i64`) can still be folded by the parser.
    Int(u64),
    Float(f64),
    True,
    False,
    Null,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    Minus,
    Eof,
}

/// A token plus the char offset where it starts (used for error positions).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

impl Tok {
    /// Human-readable description used in "expected X but found Y" messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier '{s}'"),
            Tok::Str(_) => "string literal".to_string(),
            Tok::Int(_) | Tok::Float(_) => "number".to_string(),
            Tok::Eof => "end of input".to_string(),
            other => format!("'{}'", other.symbol()),
        }
    }

    /// Source spelling of punctuation and keyword tokens.
    pub(super) fn symbol(&self) -> &'static str {
        match self {
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::In => "in",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Not => "!",
            Tok::Minus => "-",
            Tok::Ident(_) | Tok::Str(_) | Tok::Int(_) | Tok::Float(_) | Tok::Eof => "",
        }
    }

    /// Keywords are still valid field names after a dot (`data.in`, `data.null`),
    /// because JSON payloads routinely use such keys.
    pub(super) fn keyword_text(&self) -> Option<&'static str> {
        match self {
            Tok::True | Tok::False | Tok::Null | Tok::In => Some(self.symbol()),
            _ => None,
        }
    }
}

fn err(position: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        position,
        message: message.into(),
    }
}

/// Splits `src` into tokens; the result always ends with a `Tok::Eof` token.
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, FilterError> {
    // A char vector makes every index a char offset, which is exactly what
    // error positions report; compile time is allowed to allocate.
    let mut lx = Lexer {
        chars: src.chars().collect(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        while lx.peek(0).is_some_and(char::is_whitespace) {
            lx.i += 1;
        }
        let pos = lx.i;
        let Some(c) = lx.peek(0) else {
            out.push(Token { tok: Tok::Eof, pos });
            return Ok(out);
        };
        let next = lx.peek(1);
        let (tok, width) = match (c, next) {
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('.', _) => (Tok::Dot, 1),
            ('-', _) => (Tok::Minus, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('!', _) => (Tok::Not, 1),
            ('<', Some('=')) => (Tok::Le, 2),
            ('<', _) => (Tok::Lt, 1),
            ('>', Some('=')) => (Tok::Ge, 2),
            ('>', _) => (Tok::Gt, 1),
            ('&', Some('&')) => (Tok::And, 2),
            ('|', Some('|')) => (Tok::Or, 2),
            ('=', _) => return Err(err(pos, "unexpected '='; use '==' to compare")),
            ('&', _) => return Err(err(pos, "unexpected '&'; use '&&'")),
            ('|', _) => return Err(err(pos, "unexpected '|'; use '||'")),
            ('"' | '\'', _) => (lx.string(c)?, 0),
            ('0'..='9', _) => (lx.number()?, 0),
            (c, _) if c.is_ascii_alphabetic() || c == '_' => (lx.ident(), 0),
            (c, _) => return Err(err(pos, format!("unexpected character '{c}'"))),
        };
        // Multi-char scanners advance `i` themselves and report width 0.
        lx.i += width;
        out.push(Token { tok, pos });
    }
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn ident(&mut self) -> Tok {
        let start = self.i;
        while self
            .peek(0)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.i += 1;
        }
        let word: String = self.chars[start..self.i].iter().collect();
        match word.as_str() {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            "in" => Tok::In,
            _ => Tok::Ident(word),
        }
    }

    fn digits(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn number(&mut self) -> Result<Tok, FilterError> {
        let start = self.i;
        self.digits();
        let mut is_float = false;
        // Only a '.' followed by a digit belongs to the number: `items[0].x`
        // must lex as `0` `.` `x`.
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.i += 1;
            self.digits();
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                self.i += 1 + sign;
                self.digits();
            }
        }
        let text: String = self.chars[start..self.i].iter().collect();
        if is_float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
                _ => Err(err(start, "float literal out of range")),
            }
        } else {
            text.parse::<u64>()
                .map(Tok::Int)
                .map_err(|_| err(start, "integer literal out of range"))
        }
    }

    fn string(&mut self, quote: char) -> Result<Tok, FilterError> {
        let start = self.i;
        self.i += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(err(start, "unterminated string"));
            };
            self.i += 1;
            if c == quote {
                return Ok(Tok::Str(s));
            }
            if c != '\\' {
                s.push(c);
                continue;
            }
            let esc_pos = self.i - 1;
            let Some(e) = self.peek(0) else {
                return Err(err(start, "unterminated string"));
            };
            self.i += 1;
            match e {
                '"' | '\'' | '\\' | '/' => s.push(e),
                'n' => s.push('\n'),
                't' => s.push('\t'),
                'r' => s.push('\r'),
                'u' => s.push(self.unicode_escape(esc_pos)?),
                other => return Err(err(esc_pos, format!("invalid escape '\\{other}'"))),
            }
        }
    }

    /// Reads the 4 hex digits after `\u`; a UTF-16 high surrogate must be
    /// followed by a `\uXXXX` low surrogate so JSON-style escapes of emoji work.
    fn unicode_escape(&mut self, esc_pos: usize) -> Result<char, FilterError> {
        let bad = || err(esc_pos, "invalid unicode escape");
        let hi = self.hex4().ok_or_else(bad)?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.peek(0) != Some('\\') || self.peek(1) != Some('u') {
                return Err(bad());
            }
            self.i += 2;
            let lo = self.hex4().ok_or_else(bad)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(bad());
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(bad)
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self.peek(0)?.to_digit(16)?;
            v = v * 16 + d;
            self.i += 1;
        }
        Some(v)
    }
}
