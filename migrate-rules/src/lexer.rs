//! Just enough of SQLite's lexical rules to find comments and the start of
//! a statement. This is not a statement splitter: statements are split by
//! SQLite itself when they run. It only tells comments and whitespace apart
//! from SQL, honouring string literals and quoted identifiers, so that a
//! `--` inside `'...'` is not taken for a comment.

/// The byte offset of the first character at or after `from` that is not
/// whitespace, a comment or a `;` (an empty statement). Returns `sql.len()`
/// when only such characters remain.
pub fn skip_trivia(sql: &str, from: usize) -> usize {
    let bytes = sql.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b';' => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = end_of_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = end_of_block(bytes, i),
            _ => return i,
        }
    }
    bytes.len()
}

/// The 1-based line number of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The keywords (runs of ASCII letters) of the statement starting at
/// `from`, as written, skipping comments between them; it ends at the first
/// thing that is not a keyword. Used to recognize transaction-control
/// statements in a statement SQLite has delimited (compare with
/// `eq_ignore_ascii_case`).
pub fn keywords(sql: &str, from: usize) -> impl Iterator<Item = &str> {
    let bytes = sql.as_bytes();
    let mut i = from;
    std::iter::from_fn(move || {
        i = skip_trivia(sql, i);
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        (i > start).then(|| &sql[start..i])
    })
}

/// If the statement starting at `from` is a `PRAGMA` that sets a value
/// (`PRAGMA [schema.]name = value` or `PRAGMA [schema.]name(value)`), the
/// pragma's name as written (without its quotes, if quoted). A pragma that
/// only reads (`PRAGMA journal_mode;`) gives `None`.
pub fn pragma_assignment(sql: &str, from: usize) -> Option<&str> {
    let bytes = sql.as_bytes();
    let start = skip_space(bytes, from);
    let end = start
        + bytes
            .get(start..)?
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
    if !sql[start..end].eq_ignore_ascii_case("PRAGMA") {
        return None;
    }
    let (mut name, mut next) = name_at(sql, skip_space(bytes, end))?;
    let after = skip_space(bytes, next);
    if bytes.get(after) == Some(&b'.') {
        (name, next) = name_at(sql, skip_space(bytes, after + 1))?;
    }
    let after = skip_space(bytes, next);
    matches!(bytes.get(after), Some(b'=' | b'(')).then_some(name)
}

/// Skips whitespace and comments (not `;`).
fn skip_space(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = end_of_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = end_of_block(bytes, i),
            _ => break,
        }
    }
    i
}

/// The name (identifier) at `from`, unquoted, and where it ends.
fn name_at(sql: &str, from: usize) -> Option<(&str, usize)> {
    let bytes = sql.as_bytes();
    let close = match bytes.get(from)? {
        b'"' => b'"',
        b'`' => b'`',
        b'[' => b']',
        b'\'' => b'\'',
        _ => {
            let len = bytes[from..]
                .iter()
                .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80)
                .count();
            return (len > 0).then(|| (&sql[from..from + len], from + len));
        }
    };
    let end = end_of_quoted(bytes, from, close);
    let inner = sql.get(from + 1..end.saturating_sub(1).max(from + 1))?;
    Some((inner, end))
}

fn end_of_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p + 1)
}

fn end_of_block(bytes: &[u8], from: usize) -> usize {
    let body = from + 2;
    bytes
        .get(body..)
        .and_then(|rest| rest.windows(2).position(|w| w == b"*/"))
        .map_or(bytes.len(), |p| body + p + 2)
}

fn end_of_quoted(bytes: &[u8], from: usize, close: u8) -> usize {
    let mut i = from + 1;
    while i < bytes.len() {
        if bytes[i] == close {
            // A doubled quote is an escaped quote ('it''s'), except for `]`.
            if close != b']' && bytes.get(i + 1) == Some(&close) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// A `--` comment: its text after the dashes, without the line end.
pub(crate) struct LineComment<'a> {
    pub offset: usize,
    pub text: &'a str,
}

/// Every `--` comment of the text, outside string literals, quoted
/// identifiers and block comments.
pub(crate) fn line_comments(sql: &str) -> Vec<LineComment<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                let end = end_of_line(bytes, i);
                let text = sql[i + 2..end].trim_end_matches(['\n', '\r']);
                out.push(LineComment { offset: i, text });
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = end_of_block(bytes, i),
            b'\'' => i = end_of_quoted(bytes, i, b'\''),
            b'"' => i = end_of_quoted(bytes, i, b'"'),
            b'`' => i = end_of_quoted(bytes, i, b'`'),
            b'[' => i = end_of_quoted(bytes, i, b']'),
            _ => i += 1,
        }
    }
    out
}
