//! Tokens of the subset, with their positions.

use crate::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A name: a member, a keyword, a range variable.
    Name(String),
    String(String),
    Number(String),
    DateTime(String),
    Date(String),
    Guid(String),
    Open,
    Close,
    Slash,
    Colon,
    Comma,
}

impl Token {
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Name(name) => format!("`{name}`"),
            Token::String(text) => format!("the string {}", crate::quote(text)),
            Token::Number(text) | Token::DateTime(text) | Token::Date(text) | Token::Guid(text) => {
                format!("`{text}`")
            }
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
            Token::Slash => "`/`".into(),
            Token::Colon => "`:`".into(),
            Token::Comma => "`,`".into(),
        }
    }
}

/// A token and the 0-based character offset where it starts.
pub(crate) type Spanned = (Token, usize);

pub(crate) fn tokens(text: &str) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        let start = at;
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            at += 1;
            continue;
        }
        let (token, end) = if let Some(token) = punctuation(c) {
            (token, at + 1)
        } else if c == '\'' {
            string_at(&chars, at)?
        } else if guid_at(&chars, at) {
            (Token::Guid(chars[at..at + 36].iter().collect()), at + 36)
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(at + 1).is_some_and(char::is_ascii_digit))
        {
            number_at(&chars, at)?
        } else if c.is_alphabetic() || c == '_' || c == '@' || c == '$' {
            name_at(&chars, at)
        } else {
            return Err(ParseError {
                position: start + 1,
                message: format!("unexpected character `{c}`"),
            });
        };
        at = end;
        out.push((token, start));
    }
    Ok(out)
}

/// The token of a character that is a token alone.
fn punctuation(c: char) -> Option<Token> {
    Some(match c {
        '(' => Token::Open,
        ')' => Token::Close,
        '/' => Token::Slash,
        ':' => Token::Colon,
        ',' => Token::Comma,
        _ => return None,
    })
}

/// The string literal that starts with the quote at `start` (a quote inside is written `''`),
/// and where it ends.
fn string_at(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    let mut at = start + 1;
    let mut value = String::new();
    loop {
        match chars.get(at) {
            None => {
                return Err(ParseError {
                    position: start + 1,
                    message:
                        "a string literal that is never closed (a quote inside one is written '')"
                            .into(),
                });
            }
            Some('\'') if chars.get(at + 1) == Some(&'\'') => {
                value.push('\'');
                at += 2;
            }
            Some('\'') => return Ok((Token::String(value), at + 1)),
            Some(other) => {
                value.push(*other);
                at += 1;
            }
        }
    }
}

/// The date, date-time or number at `start`, and where it ends.
fn number_at(chars: &[char], start: usize) -> Result<(Token, usize), ParseError> {
    if let Some(length) = date_time_at(chars, start) {
        let end = start + length;
        let text: String = chars[start..end].iter().collect();
        let token = if text.contains('T') {
            Token::DateTime(text)
        } else {
            Token::Date(text)
        };
        return Ok((token, end));
    }
    let end = number_end(chars, start).ok_or_else(|| ParseError {
        position: start + 1,
        message: "a malformed number".into(),
    })?;
    Ok((Token::Number(chars[start..end].iter().collect()), end))
}

/// The name at `start` (letters, digits, `_`, `.`, `@`, `$`), and where it ends.
fn name_at(chars: &[char], start: usize) -> (Token, usize) {
    let mut at = start;
    while at < chars.len()
        && (chars[at].is_alphanumeric() || matches!(chars[at], '_' | '.' | '@' | '$'))
    {
        at += 1;
    }
    (Token::Name(chars[start..at].iter().collect()), at)
}

fn guid_at(chars: &[char], at: usize) -> bool {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut index = at;
    for (number, length) in GROUPS.iter().enumerate() {
        for _ in 0..*length {
            if !chars.get(index).is_some_and(char::is_ascii_hexdigit) {
                return false;
            }
            index += 1;
        }
        if number < 4 {
            if chars.get(index) != Some(&'-') {
                return false;
            }
            index += 1;
        }
    }
    // A GUID ends where a name would not go on.
    !chars
        .get(index)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The length of a date (`2020-10-30`) or date-time (`2020-10-30T21:03:00.5Z`) at `at`.
fn date_time_at(chars: &[char], at: usize) -> Option<usize> {
    let digits = |from: usize, count: usize| {
        (from..from + count).all(|i| chars.get(i).is_some_and(char::is_ascii_digit))
    };
    if !(digits(at, 4)
        && chars.get(at + 4) == Some(&'-')
        && digits(at + 5, 2)
        && chars.get(at + 7) == Some(&'-')
        && digits(at + 8, 2))
    {
        return None;
    }
    let mut end = at + 10;
    if chars.get(end) != Some(&'T') {
        return Some(end - at);
    }
    end += 1;
    if !(digits(end, 2) && chars.get(end + 2) == Some(&':') && digits(end + 3, 2)) {
        return None;
    }
    end += 5;
    if chars.get(end) == Some(&':') {
        if !digits(end + 1, 2) {
            return None;
        }
        end += 3;
        if chars.get(end) == Some(&'.') {
            end += 1;
            let start = end;
            while chars.get(end).is_some_and(char::is_ascii_digit) {
                end += 1;
            }
            if end == start {
                return None;
            }
        }
    }
    match chars.get(end) {
        Some('Z') => end += 1,
        Some('+' | '-')
            if digits(end + 1, 2) && chars.get(end + 3) == Some(&':') && digits(end + 4, 2) =>
        {
            end += 6
        }
        _ => return None,
    }
    Some(end - at)
}

fn number_end(chars: &[char], mut at: usize) -> Option<usize> {
    if chars.get(at) == Some(&'-') {
        at += 1;
    }
    let start = at;
    while chars.get(at).is_some_and(char::is_ascii_digit) {
        at += 1;
    }
    if at == start {
        return None;
    }
    if chars.get(at) == Some(&'.') {
        at += 1;
        let start = at;
        while chars.get(at).is_some_and(char::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    if matches!(chars.get(at), Some('e' | 'E')) {
        at += 1;
        if matches!(chars.get(at), Some('+' | '-')) {
            at += 1;
        }
        let start = at;
        while chars.get(at).is_some_and(char::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    // `12abc` is not a number followed by a name.
    if chars
        .get(at)
        .is_some_and(|c| c.is_alphabetic() || *c == '_')
    {
        return None;
    }
    Some(at)
}
