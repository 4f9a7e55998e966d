//! A streaming TOML 1.1 reader for inventory files.
//!
//! Why not `toml` + serde: on a 100,000-key inventory (26 MB) `toml::from_str` built a full
//! document tree and then a second copy as `Spanned<…>` spec types, taking over a second and
//! half a gigabyte. `toml-spanner` parses faster but its arena and global key index alone
//! take ~225 MB on that file, over the whole 200 MB budget (DESIGN section 12).
//!
//! This reader implements all of TOML 1.1 (it passes the toml-test suite, see the tests) and
//! builds the same kind of tree, with one difference that keeps memory flat: an element of a
//! top-level array of tables (`[[keys]]`) is handed to a [`Sink`] as soon as the next element
//! of the same array starts, because TOML can no longer reach it from then on. So at most one
//! element per array is held, and the caller turns it into the model and drops it.
//!
//! Strings without escapes borrow from the input; spans are byte offsets into it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Byte offsets into the text, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    String(Cow<'a, str>),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(Datetime),
    Array(Array<'a>),
    Table(Table<'a>),
}

impl Value<'_> {
    /// What the value is, for "expected X, found Y" messages.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Boolean(_) => "boolean",
            Value::Datetime(_) => "datetime",
            Value::Array(a) if a.of_tables => "array of tables",
            Value::Array(_) => "array",
            Value::Table(_) => "table",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item<'a> {
    pub value: Value<'a>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key<'a> {
    pub name: Cow<'a, str>,
    pub span: Span,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Array<'a> {
    pub items: Vec<Item<'a>>,
    /// Made by `[[name]]` headers (extensible), rather than written as a `[...]` value.
    pub of_tables: bool,
}

/// Tables stay small in an inventory; past this many entries a hash index keeps lookups
/// O(1) so that a pathological file with one huge table is not quadratic.
const INDEX_AFTER: usize = 16;

#[derive(Debug, Clone, Default)]
pub(crate) struct Table<'a> {
    pub entries: Vec<(Key<'a>, Item<'a>)>,
    /// Boxed: most tables never need it, and every value is as large as its largest kind
    /// (a bare `HashMap` would add 40 bytes to every value of every table).
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<Cow<'a, str>, usize>>>,
    /// Created on the way to a deeper table (`[a.b]` creates `a`), not defined yet.
    implicit: bool,
    /// Created by a dotted key (`a.b = 1` creates `a`).
    dotted: bool,
    /// Written as `{ ... }`: closed for extension.
    inline: bool,
}

impl PartialEq for Table<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<'a> Table<'a> {
    fn with_flags(implicit: bool, dotted: bool, inline: bool) -> Self {
        Self {
            entries: Vec::new(),
            index: None,
            implicit,
            dotted,
            inline,
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.entries.iter().position(|(k, _)| k.name == name),
        }
    }

    fn push(&mut self, key: Key<'a>, item: Item<'a>) -> usize {
        let i = self.entries.len();
        if let Some(index) = &mut self.index {
            index.insert(key.name.clone(), i);
        } else if i + 1 > INDEX_AFTER {
            let mut index: HashMap<Cow<'a, str>, usize> = self
                .entries
                .iter()
                .enumerate()
                .map(|(j, (k, _))| (k.name.clone(), j))
                .collect();
            index.insert(key.name.clone(), i);
            self.index = Some(Box::new(index));
        }
        self.entries.push((key, item));
        i
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn into_entries(self) -> Vec<(Key<'a>, Item<'a>)> {
        self.entries
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Time {
    pub hour: u8,
    pub minute: u8,
    /// TOML 1.1 allows `07:32` without seconds.
    pub second: Option<u8>,
    pub nanosecond: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offset {
    Z,
    Minutes(i16),
}

/// Any of TOML's four date-time forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Datetime {
    pub date: Option<Date>,
    pub time: Option<Time>,
    pub offset: Option<Offset>,
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.date {
            write!(f, "{:04}-{:02}-{:02}", d.year, d.month, d.day)?;
            if self.time.is_some() {
                f.write_str("T")?;
            }
        }
        if let Some(t) = self.time {
            write!(f, "{:02}:{:02}", t.hour, t.minute)?;
            if let Some(s) = t.second {
                write!(f, ":{s:02}")?;
            }
            if let Some(ns) = t.nanosecond {
                let digits = format!("{ns:09}");
                write!(f, ".{}", digits.trim_end_matches('0').max("0"))?;
            }
        }
        match self.offset {
            Some(Offset::Z) => f.write_str("Z")?,
            Some(Offset::Minutes(m)) => {
                let sign = if m < 0 { '-' } else { '+' };
                let m = m.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)?;
            }
            None => {}
        }
        Ok(())
    }
}

/// A document that is not TOML. Reading stops at the first one: after a syntax error the
/// rest of the file cannot be read reliably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub at: usize,
    pub message: String,
}

/// Receives the document as it is read.
pub(crate) trait Sink<'a> {
    /// A finished element of the top-level array of tables `name`, in document order.
    fn element(&mut self, name: &Key<'a>, element: Item<'a>);
    /// The root table at the end. Top-level arrays of tables are in it, emptied: all their
    /// elements went to `element`.
    fn root(&mut self, root: Table<'a>);
}

/// Read `text`, streaming top-level array-of-tables elements to `sink`.
pub(crate) fn read<'a>(text: &'a str, sink: &mut impl Sink<'a>) -> Result<(), SyntaxError> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        i: 0,
        root: Table::default(),
        current: Vec::new(),
        depth: 0,
        element_size: 0,
    };
    r.document(sink)?;
    // Hand over the last element of every top-level array of tables, then the root.
    let mut root = std::mem::take(&mut r.root);
    for (key, item) in &mut root.entries {
        if let Value::Array(a) = &mut item.value
            && a.of_tables
        {
            for element in a.items.drain(..) {
                sink.element(key, element);
            }
        }
    }
    sink.root(root);
    Ok(())
}

/// Arrays and inline tables nest by recursion; past this depth a document is refused rather
/// than risking the stack.
const MAX_DEPTH: usize = 128;

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    root: Table<'a>,
    /// Entry indices from the root to the table that key/value lines go to. An entry that is
    /// an array of tables stands for its last element.
    current: Vec<usize>,
    depth: usize,
    /// Entries in the last streamed element: the next one is allocated that large at once
    /// instead of growing entry by entry (elements of an array tend to look alike).
    element_size: usize,
}

type R<T> = Result<T, SyntaxError>;

fn is_bare_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// May appear in a comment or a string: tab, and everything but the control characters.
fn is_text_char(c: u8) -> bool {
    c == b'\t' || (c >= 0x20 && c != 0x7f)
}

fn describe_byte(text: &str, at: usize) -> String {
    match text.get(at..).and_then(|s| s.chars().next()) {
        None => "the end of the file".into(),
        Some('\n') | Some('\r') => "the end of the line".into(),
        Some(c) if c.is_control() => format!("control character {:?}", c),
        Some(c) => format!("`{c}`"),
    }
}

impl<'a> Reader<'a> {
    /// From `at` to the end of its line (for recognizing what an unquoted value is).
    fn rest_of_line(&self, at: usize) -> &'a str {
        let rest = self.text.get(at..).unwrap_or("");
        rest.find(['\n', '\r']).map_or(rest, |n| &rest[..n])
    }

    fn err<T>(&self, at: usize, message: impl Into<String>) -> R<T> {
        Err(SyntaxError {
            at,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.b.get(self.i + n).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A comment, if one starts here, up to (not including) the end of the line.
    fn skip_comment(&mut self) -> R<()> {
        if self.peek() != Some(b'#') {
            return Ok(());
        }
        self.i += 1;
        while let Some(c) = self.peek() {
            if c == b'\n' {
                return Ok(());
            }
            if c == b'\r' {
                return if self.peek_at(1) == Some(b'\n') {
                    Ok(())
                } else {
                    self.err(
                        self.i,
                        "carriage return in a comment must be followed by a newline",
                    )
                };
            }
            if !is_text_char(c) {
                return self.err(
                    self.i,
                    format!(
                        "{} is not allowed in a comment",
                        describe_byte(self.text, self.i)
                    ),
                );
            }
            self.i += 1;
        }
        Ok(())
    }

    /// A newline here (`\n` or `\r\n`)? Consumes it.
    fn newline(&mut self) -> R<bool> {
        match self.peek() {
            Some(b'\n') => {
                self.i += 1;
                Ok(true)
            }
            Some(b'\r') if self.peek_at(1) == Some(b'\n') => {
                self.i += 2;
                Ok(true)
            }
            Some(b'\r') => self.err(self.i, "carriage return must be followed by a newline"),
            _ => Ok(false),
        }
    }

    /// Whitespace, comments and newlines, as allowed inside arrays and inline tables.
    fn skip_ws_comments_newlines(&mut self) -> R<()> {
        loop {
            self.skip_ws();
            self.skip_comment()?;
            if !self.newline()? {
                return Ok(());
            }
        }
    }

    /// After a key/value pair or a header: only a comment may follow on the line.
    fn end_of_line(&mut self, after: &str) -> R<()> {
        self.skip_ws();
        self.skip_comment()?;
        if self.i == self.b.len() || self.newline()? {
            Ok(())
        } else {
            self.err(
                self.i,
                format!(
                    "expected a newline after {after}, found {}",
                    describe_byte(self.text, self.i)
                ),
            )
        }
    }

    fn document(&mut self, sink: &mut impl Sink<'a>) -> R<()> {
        if self.text.starts_with('\u{feff}') {
            self.i = 3;
        }
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Ok(()),
                Some(b'\n' | b'\r') => {
                    self.newline()?;
                }
                Some(b'#') => {
                    self.skip_comment()?;
                }
                Some(b'[') => {
                    self.header(sink)?;
                    self.end_of_line("the table header")?;
                }
                Some(_) => {
                    self.key_value_line()?;
                    self.end_of_line("the value")?;
                }
            }
        }
    }

    fn key_value_line(&mut self) -> R<()> {
        let (keys, last) = self.dotted_key()?;
        self.expect_equals()?;
        self.skip_ws();
        let item = self.value()?;
        let mut table = match table_at(&mut self.root, &self.current) {
            Some(t) => t,
            None => return self.err(last.span.start, "internal error: lost the current table"),
        };
        for key in keys {
            table = descend_dotted(table, key, self.text)?;
        }
        insert_value(table, last, item, self.text)
    }

    fn expect_equals(&mut self) -> R<()> {
        self.skip_ws();
        if self.peek() == Some(b'=') {
            self.i += 1;
            Ok(())
        } else {
            self.err(
                self.i,
                format!(
                    "expected `=` after the key, found {}",
                    describe_byte(self.text, self.i)
                ),
            )
        }
    }

    /// `a`, `"a b"`, `a.b.'c'`: the leading parts and the last one, with whitespace allowed
    /// around the dots. The leading parts are usually none, and then nothing is allocated
    /// (this runs for every line of the file).
    fn dotted_key(&mut self) -> R<(Vec<Key<'a>>, Key<'a>)> {
        let mut leading = Vec::new();
        let mut last = self.simple_key()?;
        loop {
            self.skip_ws();
            if self.peek() != Some(b'.') {
                return Ok((leading, last));
            }
            self.i += 1;
            self.skip_ws();
            let next = self.simple_key()?;
            leading.push(std::mem::replace(&mut last, next));
        }
    }

    fn simple_key(&mut self) -> R<Key<'a>> {
        let start = self.i;
        let name = match self.peek() {
            Some(b'"') => {
                if self.b[self.i..].starts_with(b"\"\"\"") {
                    return self.err(start, "a key cannot be a multi-line string");
                }
                self.basic_string()?
            }
            Some(b'\'') => {
                if self.b[self.i..].starts_with(b"'''") {
                    return self.err(start, "a key cannot be a multi-line string");
                }
                self.literal_string()?
            }
            Some(c) if is_bare_key_char(c) => {
                while self.peek().is_some_and(is_bare_key_char) {
                    self.i += 1;
                }
                Cow::Borrowed(&self.text[start..self.i])
            }
            _ => {
                return self.err(
                    start,
                    format!(
                        "expected a key (letters, digits, `-`, `_` or a quoted string), found {}",
                        describe_byte(self.text, start)
                    ),
                );
            }
        };
        Ok(Key {
            name,
            span: Span::new(start, self.i),
        })
    }

    /// `[a.b]` or `[[a.b]]`: make it the current table.
    fn header(&mut self, sink: &mut impl Sink<'a>) -> R<()> {
        let start = self.i;
        let of_tables = self.peek_at(1) == Some(b'[');
        self.i += if of_tables { 2 } else { 1 };
        self.skip_ws();
        let (keys, last) = self.dotted_key()?;
        self.skip_ws();
        let close: &[u8] = if of_tables { b"]]" } else { b"]" };
        if !self.b[self.i..].starts_with(close) {
            return self.err(
                self.i,
                format!(
                    "expected `{}` to close the table header, found {}",
                    if of_tables { "]]" } else { "]" },
                    describe_byte(self.text, self.i)
                ),
            );
        }
        self.i += close.len();
        let span = Span::new(start, self.i);

        let text = self.text;
        let element_size = self.element_size;
        let mut path = Vec::with_capacity(keys.len() + 1);
        let mut table = &mut self.root;
        for key in keys {
            let (i, t) = descend_header(table, key, text)?;
            path.push(i);
            table = t;
        }
        let i = match table.find(&last.name) {
            None => {
                let value = if of_tables {
                    Value::Array(Array {
                        items: vec![new_element(span, element_size)],
                        of_tables: true,
                    })
                } else {
                    Value::Table(Table::default())
                };
                table.push(last, Item { value, span })
            }
            Some(i) => {
                let (key, existing) = &mut table.entries[i];
                match (&mut existing.value, of_tables) {
                    (Value::Table(t), false) if t.implicit && !t.dotted && !t.inline => {
                        t.implicit = false;
                        existing.span = span;
                    }
                    (Value::Array(a), true) if a.of_tables => {
                        if path.is_empty() {
                            // The previous elements cannot be reached any more: stream them.
                            for element in a.items.drain(..) {
                                if let Value::Table(t) = &element.value {
                                    self.element_size = t.entries.len();
                                }
                                sink.element(key, element);
                            }
                        }
                        a.items.push(new_element(span, self.element_size));
                    }
                    (v, _) => {
                        let what = match v {
                            Value::Table(t) if t.inline => "an inline table".to_string(),
                            Value::Table(t) if t.dotted => {
                                "a table (made by dotted keys)".to_string()
                            }
                            Value::Table(_) => "a table".to_string(),
                            other => format!("a value of type {}", other.type_name()),
                        };
                        let line = line_of(text, existing.span.start);
                        return self.err(
                            last.span.start,
                            format!(
                                "duplicate key `{}`: already defined as {what} on line {line}",
                                last.name
                            ),
                        );
                    }
                }
                i
            }
        };
        path.push(i);
        self.current = path;
        Ok(())
    }

    fn value(&mut self) -> R<Item<'a>> {
        let start = self.i;
        let value = match self.peek() {
            Some(b'"') => {
                if self.b[self.i..].starts_with(b"\"\"\"") {
                    Value::String(self.ml_basic_string()?)
                } else {
                    Value::String(self.basic_string()?)
                }
            }
            Some(b'\'') => {
                if self.b[self.i..].starts_with(b"'''") {
                    Value::String(self.ml_literal_string()?)
                } else {
                    Value::String(self.literal_string()?)
                }
            }
            Some(b'[') => Value::Array(self.array()?),
            Some(b'{') => Value::Table(self.inline_table()?),
            Some(b't') if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Value::Boolean(true)
            }
            Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Value::Boolean(false)
            }
            Some(c) if c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'i' | b'n') => {
                self.number_or_datetime()?
            }
            Some(c) if c.is_ascii_alphabetic() => {
                // Most likely a string written without its quotes.
                let word_end = self.b[start..]
                    .iter()
                    .position(|&c| !is_bare_key_char(c))
                    .map_or(self.b.len(), |n| start + n);
                let word = &self.text[start..word_end];
                return self.err(start, unquoted(word, self.rest_of_line(start)));
            }
            _ => {
                return self.err(
                    start,
                    format!(
                        "expected a value (string, number, boolean, date, array or inline table), found {}",
                        describe_byte(self.text, start)
                    ),
                );
            }
        };
        Ok(Item {
            value,
            span: Span::new(start, self.i),
        })
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(
                self.i,
                format!("arrays and inline tables nested deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn array(&mut self) -> R<Array<'a>> {
        let open = self.i;
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws_comments_newlines()?;
            match self.peek() {
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                None => return self.err(self.i, unclosed("array", "]", self.text, open)),
                _ => {}
            }
            items.push(self.value()?);
            self.skip_ws_comments_newlines()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                None => return self.err(self.i, unclosed("array", "]", self.text, open)),
                _ => {
                    return self.err(
                        self.i,
                        format!(
                            "expected `,` or `]` in the array, found {}",
                            describe_byte(self.text, self.i)
                        ),
                    );
                }
            }
        }
        self.depth -= 1;
        Ok(Array {
            items,
            of_tables: false,
        })
    }

    /// `{ a = 1, b.c = 2 }`; TOML 1.1 allows newlines, comments and a trailing comma.
    fn inline_table(&mut self) -> R<Table<'a>> {
        let open = self.i;
        self.enter()?;
        self.i += 1;
        let mut table = Table::with_flags(false, false, true);
        loop {
            self.skip_ws_comments_newlines()?;
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                None => return self.err(self.i, unclosed("inline table", "}", self.text, open)),
                _ => {}
            }
            let (keys, last) = self.dotted_key()?;
            // Like the `toml` crate (and so like keyfire before this reader), newlines are
            // accepted around `=` inside an inline table.
            self.skip_ws_comments_newlines()?;
            self.expect_equals()?;
            self.skip_ws_comments_newlines()?;
            let item = self.value()?;
            let mut t = &mut table;
            for key in keys {
                t = descend_dotted(t, key, self.text)?;
            }
            insert_value(t, last, item, self.text)?;
            self.skip_ws_comments_newlines()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                None => return self.err(self.i, unclosed("inline table", "}", self.text, open)),
                _ => {
                    return self.err(
                        self.i,
                        format!(
                            "expected `,` or `}}` in the inline table, found {}",
                            describe_byte(self.text, self.i)
                        ),
                    );
                }
            }
        }
        self.depth -= 1;
        Ok(table)
    }

    /// `"..."`: borrowed when there is no escape.
    fn basic_string(&mut self) -> R<Cow<'a, str>> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        // Fast path: no escapes.
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    let s = &self.text[start..self.i];
                    self.i += 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                c if is_text_char(c) => self.i += 1,
                _ => break,
            }
        }
        let mut out = String::from(&self.text[start..self.i]);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(c) if is_text_char(c) => {
                    let run = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c != b'"' && c != b'\\' && is_text_char(c))
                    {
                        self.i += 1;
                    }
                    out.push_str(&self.text[run..self.i]);
                }
                Some(b'\n' | b'\r') | None => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid basic string: the string opened on line {} needs a closing `\"` before the end of the line",
                            line_of(self.text, open)
                        ),
                    );
                }
                Some(_) => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid basic string: {} is not allowed in a string (write it as an escape like \\u0001)",
                            describe_byte(self.text, self.i)
                        ),
                    );
                }
            }
        }
    }

    /// At a backslash in a basic string: append what it stands for.
    fn escape(&mut self, out: &mut String) -> R<()> {
        let at = self.i;
        self.i += 1;
        let c = match self.peek() {
            Some(b'b') => '\u{8}',
            Some(b't') => '\t',
            Some(b'n') => '\n',
            Some(b'f') => '\u{c}',
            Some(b'r') => '\r',
            Some(b'e') => '\u{1b}',
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'x') => return self.hex_escape(at, 2, out),
            Some(b'u') => return self.hex_escape(at, 4, out),
            Some(b'U') => return self.hex_escape(at, 8, out),
            _ => {
                return self.err(
                    at,
                    "invalid escape: expected \\b, \\t, \\n, \\f, \\r, \\e, \\\", \\\\, \\xHH, \\uXXXX or \\UXXXXXXXX",
                );
            }
        };
        self.i += 1;
        out.push(c);
        Ok(())
    }

    fn hex_escape(&mut self, at: usize, digits: usize, out: &mut String) -> R<()> {
        let start = self.i + 1;
        let hex = self.b.get(start..start + digits);
        let code = hex
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        let Some(code) = code else {
            return self.err(at, format!("invalid escape: expected {digits} hex digits"));
        };
        let Some(c) = char::from_u32(code) else {
            return self.err(
                at,
                format!("invalid escape: {code:X} is not a Unicode scalar value"),
            );
        };
        out.push(c);
        self.i = start + digits;
        Ok(())
    }

    /// `"""..."""`
    fn ml_basic_string(&mut self) -> R<Cow<'a, str>> {
        let open = self.i;
        self.i += 3;
        // A newline right after the opening delimiter is trimmed.
        self.newline()?;
        let mut out: Option<String> = None;
        let mut run = self.i;
        loop {
            match self.peek() {
                None => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid multi-line basic string: the string opened on line {} needs a closing `\"\"\"`",
                            line_of(self.text, open)
                        ),
                    );
                }
                Some(b'"') => {
                    let quotes = self.b[self.i..].iter().take_while(|&&c| c == b'"').count();
                    if quotes < 3 {
                        self.i += quotes;
                        continue;
                    }
                    if quotes > 5 {
                        return self.err(
                            self.i,
                            "invalid multi-line basic string: too many quotes at its end",
                        );
                    }
                    // Up to two quotes may sit right before the closing delimiter.
                    let end = self.i + quotes - 3;
                    self.i += quotes;
                    let tail = &self.text[run..end];
                    return Ok(match out {
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(tail),
                    });
                }
                Some(b'\\') => {
                    let s = out.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..self.i]);
                    // A backslash at the end of a line trims the newline and the whitespace
                    // and newlines after it.
                    let mut j = self.i + 1;
                    while let Some(b' ' | b'\t') = self.b.get(j) {
                        j += 1;
                    }
                    if matches!(self.b.get(j), Some(b'\n' | b'\r')) {
                        self.i = j;
                        loop {
                            self.skip_ws();
                            if !self.newline()? {
                                break;
                            }
                        }
                    } else {
                        self.escape(s)?;
                    }
                    run = self.i;
                }
                Some(b'\n') => self.i += 1,
                Some(b'\r') => {
                    if !self.newline()? {
                        return self.err(self.i, "carriage return must be followed by a newline");
                    }
                }
                Some(c) if is_text_char(c) => self.i += 1,
                Some(_) => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid multi-line basic string: {} is not allowed in a string",
                            describe_byte(self.text, self.i)
                        ),
                    );
                }
            }
        }
    }

    /// `'...'`: no escapes.
    fn literal_string(&mut self) -> R<Cow<'a, str>> {
        let open = self.i;
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                Some(b'\'') => {
                    let s = &self.text[start..self.i];
                    self.i += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(c) if is_text_char(c) => self.i += 1,
                Some(b'\n' | b'\r') | None => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid literal string: the string opened on line {} needs a closing `'` before the end of the line",
                            line_of(self.text, open)
                        ),
                    );
                }
                Some(_) => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid literal string: {} is not allowed in a string",
                            describe_byte(self.text, self.i)
                        ),
                    );
                }
            }
        }
    }

    /// `'''...'''`
    fn ml_literal_string(&mut self) -> R<Cow<'a, str>> {
        let open = self.i;
        self.i += 3;
        self.newline()?;
        let start = self.i;
        loop {
            match self.peek() {
                None => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid multi-line literal string: the string opened on line {} needs a closing `'''`",
                            line_of(self.text, open)
                        ),
                    );
                }
                Some(b'\'') => {
                    let quotes = self.b[self.i..].iter().take_while(|&&c| c == b'\'').count();
                    if quotes < 3 {
                        self.i += quotes;
                        continue;
                    }
                    if quotes > 5 {
                        return self.err(
                            self.i,
                            "invalid multi-line literal string: too many quotes at its end",
                        );
                    }
                    let end = self.i + quotes - 3;
                    self.i += quotes;
                    return Ok(Cow::Borrowed(&self.text[start..end]));
                }
                Some(b'\n') => self.i += 1,
                Some(b'\r') => {
                    if !self.newline()? {
                        return self.err(self.i, "carriage return must be followed by a newline");
                    }
                }
                Some(c) if is_text_char(c) => self.i += 1,
                Some(_) => {
                    return self.err(
                        self.i,
                        format!(
                            "invalid multi-line literal string: {} is not allowed in a string",
                            describe_byte(self.text, self.i)
                        ),
                    );
                }
            }
        }
    }

    fn number_or_datetime(&mut self) -> R<Value<'a>> {
        let start = self.i;
        let digits = self.b[start..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 4 && self.b.get(start + 4) == Some(&b'-') {
            return self.datetime();
        }
        if digits == 2 && self.b.get(start + 2) == Some(&b':') {
            return self.datetime();
        }
        // A number runs to the next delimiter; its grammar is checked on the whole token.
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-'))
        {
            self.i += 1;
        }
        let token = &self.text[start..self.i];
        parse_number(token).ok_or_else(|| SyntaxError {
            at: start,
            message: if echoable(token, self.rest_of_line(start)) {
                format!(
                    "invalid number `{token}`: expected an integer like 42, 0x2A, 1_000 or a float like 3.14, 1e6, inf"
                )
            } else {
                format!(
                    "expected a value, found {} (not shown): an inventory holds hints like `sk-proj-...Q2x7`, never keys",
                    what_it_looks_like(self.rest_of_line(start))
                )
            },
        })
    }

    fn two_digits(&self, at: usize) -> Option<u8> {
        match self.b.get(at..at + 2) {
            Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => {
                Some((a - b'0') * 10 + (b - b'0'))
            }
            _ => None,
        }
    }

    fn datetime(&mut self) -> R<Value<'a>> {
        let start = self.i;
        let bad = |this: &Self, what: &str| -> R<Value<'a>> {
            let end = this.b[start..]
                .iter()
                .position(|&c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b':' | b'.' | b'+'))
                })
                .map_or(this.b.len(), |n| start + n);
            this.err(
                start,
                format!(
                    "invalid date-time `{}`: {what}",
                    &this.text[start..end.max(start)]
                ),
            )
        };
        let mut dt = Datetime {
            date: None,
            time: None,
            offset: None,
        };
        let mut i = start;
        if self.b.get(start + 2) != Some(&b':') {
            let year = self.b[i..i + 4]
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
            let (Some(month), Some(day)) = (
                self.b
                    .get(i + 5)
                    .filter(|_| self.b.get(i + 4) == Some(&b'-'))
                    .and_then(|_| self.two_digits(i + 5)),
                self.b
                    .get(i + 7)
                    .filter(|&&c| c == b'-')
                    .and_then(|_| self.two_digits(i + 8)),
            ) else {
                return bad(self, "expected a date like 2026-08-01");
            };
            if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
                return bad(self, "no such date");
            }
            dt.date = Some(Date { year, month, day });
            i += 10;
            if self.b.get(i).is_some_and(|c| c.is_ascii_digit()) {
                return bad(self, "expected a date like 2026-08-01");
            }
            // A time follows after `T`, or after a space when digits follow it.
            let time_follows = match self.b.get(i) {
                Some(b'T' | b't') => true,
                Some(b' ') => self.two_digits(i + 1).is_some() && self.b.get(i + 3) == Some(&b':'),
                _ => false,
            };
            if !time_follows {
                self.i = i;
                return Ok(Value::Datetime(dt));
            }
            i += 1;
        }
        let (Some(hour), Some(minute)) = (
            self.two_digits(i),
            self.b
                .get(i + 2)
                .filter(|&&c| c == b':')
                .and_then(|_| self.two_digits(i + 3)),
        ) else {
            return bad(self, "expected a time like 07:32:00");
        };
        i += 5;
        let mut second = None;
        let mut nanosecond = None;
        if self.b.get(i) == Some(&b':') {
            let Some(s) = self.two_digits(i + 1) else {
                return bad(self, "expected seconds after `:`");
            };
            second = Some(s);
            i += 3;
            if self.b.get(i) == Some(&b'.') {
                let digits = self.b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if digits == 0 {
                    return bad(self, "expected digits after `.`");
                }
                // Nanosecond precision; further digits are truncated.
                let mut ns = 0u32;
                for k in 0..9 {
                    let d = if k < digits {
                        self.b[i + 1 + k] - b'0'
                    } else {
                        0
                    };
                    ns = ns * 10 + u32::from(d);
                }
                nanosecond = Some(ns);
                i += 1 + digits;
            }
        }
        if hour > 23 || minute > 59 || second.is_some_and(|s| s > 60) {
            return bad(self, "no such time");
        }
        dt.time = Some(Time {
            hour,
            minute,
            second,
            nanosecond,
        });
        if dt.date.is_some() {
            match self.b.get(i) {
                Some(b'Z' | b'z') => {
                    dt.offset = Some(Offset::Z);
                    i += 1;
                }
                Some(&sign @ (b'+' | b'-')) => {
                    let (Some(h), Some(m)) = (
                        self.two_digits(i + 1),
                        self.b
                            .get(i + 3)
                            .filter(|&&c| c == b':')
                            .and_then(|_| self.two_digits(i + 4)),
                    ) else {
                        return bad(self, "expected an offset like +02:00");
                    };
                    if h > 23 || m > 59 {
                        return bad(self, "no such offset");
                    }
                    let minutes = i16::from(h) * 60 + i16::from(m);
                    dt.offset = Some(Offset::Minutes(if sign == b'-' {
                        -minutes
                    } else {
                        minutes
                    }));
                    i += 6;
                }
                _ => {}
            }
        }
        if self
            .b
            .get(i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'.' | b'+' | b'-'))
        {
            return bad(self, "unexpected characters after it");
        }
        self.i = i;
        Ok(Value::Datetime(dt))
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether an unquoted token may be quoted back in a message: not when it (or the rest of
/// its line) looks like a credential, nor when it is too long to be a typo.
fn echoable(token: &str, line: &str) -> bool {
    token.chars().count() <= 24 && !crate::secret::recognize::may_hold_secret(line)
}

fn what_it_looks_like(line: &str) -> String {
    match crate::secret::recognize::first_secret(line) {
        Ok(Some(f)) => format!("what looks like {}", f.what),
        _ => "a long unquoted word".into(),
    }
}

/// The message for a value written without quotes, which is how a pasted key often arrives.
fn unquoted(word: &str, line: &str) -> String {
    if echoable(word, line) {
        format!("expected a value, found `{word}`: strings need quotes, like \"{word}\"")
    } else {
        format!(
            "expected a value, found {} (not shown): strings need quotes, and an inventory holds hints like `sk-proj-...Q2x7`, never keys",
            what_it_looks_like(line)
        )
    }
}

fn unclosed(what: &str, close: &str, text: &str, open: usize) -> String {
    format!(
        "the {what} opened on line {} needs a closing `{close}`",
        line_of(text, open)
    )
}

/// 1-based line of a byte offset. Only used on error paths, so a scan is fine.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

fn new_element<'a>(span: Span, capacity: usize) -> Item<'a> {
    let mut table = Table::default();
    table.entries.reserve_exact(capacity);
    Item {
        value: Value::Table(table),
        span,
    }
}

/// Digits with single underscores between them (`1_000`), in the given radix.
fn digits_ok(s: &str, radix: u32) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.chars().all(|c| c == '_' || c.is_digit(radix))
}

fn parse_number<'a>(token: &str) -> Option<Value<'a>> {
    let (sign, body) = match token.as_bytes().first()? {
        b'+' | b'-' => (&token[..1], &token[1..]),
        _ => ("", token),
    };
    match body {
        "inf" => {
            return Some(Value::Float(if sign == "-" {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }));
        }
        "nan" => {
            return Some(Value::Float(if sign == "-" { -f64::NAN } else { f64::NAN }));
        }
        _ => {}
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = body.strip_prefix(prefix) {
            if !sign.is_empty() || !digits_ok(digits, radix) {
                return None;
            }
            let digits = digits.replace('_', "");
            return i64::from_str_radix(&digits, radix).ok().map(Value::Integer);
        }
    }
    // Decimal: int-part, then optionally `.frac` and/or an exponent.
    let int_end = body.find(['.', 'e', 'E']).unwrap_or(body.len());
    let int_part = &body[..int_end];
    if !digits_ok(int_part, 10) || (int_part.len() > 1 && int_part.starts_with('0')) {
        return None;
    }
    let clean = |s: &str| -> String { s.replace('_', "") };
    if int_end == body.len() {
        return format!("{sign}{}", clean(int_part))
            .parse::<i64>()
            .ok()
            .map(Value::Integer);
    }
    let mut rest = &body[int_end..];
    if let Some(after_dot) = rest.strip_prefix('.') {
        let frac_end = after_dot.find(['e', 'E']).unwrap_or(after_dot.len());
        if !digits_ok(&after_dot[..frac_end], 10) {
            return None;
        }
        rest = &after_dot[frac_end..];
    }
    if !rest.is_empty() {
        let exp = &rest[1..];
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if !digits_ok(exp, 10) {
            return None;
        }
    }
    // A finite literal that overflows to infinity is refused, as the `toml` crate does.
    format!("{sign}{}", clean(body))
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::Float)
}

/// The table at `path` from `root` (an array of tables stands for its last element).
fn table_at<'t, 'a>(mut table: &'t mut Table<'a>, path: &[usize]) -> Option<&'t mut Table<'a>> {
    for &i in path {
        table = match &mut table.entries.get_mut(i)?.1.value {
            Value::Table(t) => t,
            Value::Array(a) => match &mut a.items.last_mut()?.value {
                Value::Table(t) => t,
                _ => return None,
            },
            _ => return None,
        };
    }
    Some(table)
}

fn cannot_extend(key: &Key<'_>, existing: &Item<'_>, text: &str) -> SyntaxError {
    let what = match &existing.value {
        Value::Table(t) if t.inline => "an inline table, which cannot be extended".to_string(),
        Value::Table(_) => "a table defined by a header".to_string(),
        Value::Array(a) if !a.of_tables => "an array, which cannot be extended".to_string(),
        other => format!("a value of type {}", other.type_name()),
    };
    SyntaxError {
        at: key.span.start,
        message: format!(
            "duplicate key `{}`: already defined as {what} on line {}",
            key.name,
            line_of(text, existing.span.start)
        ),
    }
}

/// One step of a header path `[a.b.c]` (not the last key).
fn descend_header<'t, 'a>(
    table: &'t mut Table<'a>,
    key: Key<'a>,
    text: &str,
) -> R<(usize, &'t mut Table<'a>)> {
    let i = match table.find(&key.name) {
        Some(i) => i,
        None => {
            let span = key.span;
            table.push(
                key.clone(),
                Item {
                    value: Value::Table(Table::with_flags(true, false, false)),
                    span,
                },
            )
        }
    };
    let existing = &mut table.entries[i].1;
    let ok = match &existing.value {
        Value::Table(t) => !t.inline,
        Value::Array(a) => a.of_tables,
        _ => false,
    };
    if !ok {
        return Err(cannot_extend(&key, &table.entries[i].1, text));
    }
    let span = existing.span;
    match &mut table.entries[i].1.value {
        Value::Table(t) => Ok((i, t)),
        Value::Array(a) => match a.items.last_mut().map(|x| &mut x.value) {
            Some(Value::Table(t)) => Ok((i, t)),
            _ => Err(SyntaxError {
                at: span.start,
                message: "internal error: empty array of tables".into(),
            }),
        },
        _ => Err(SyntaxError {
            at: span.start,
            message: "internal error: not a table".into(),
        }),
    }
}

/// One step of a dotted key `a.b.c = 1` (not the last key): only tables made by dotted keys
/// (or not defined yet) may be extended this way.
fn descend_dotted<'t, 'a>(
    table: &'t mut Table<'a>,
    key: Key<'a>,
    text: &str,
) -> R<&'t mut Table<'a>> {
    let inline = table.inline;
    let i = match table.find(&key.name) {
        Some(i) => i,
        None => {
            let span = key.span;
            table.push(
                key.clone(),
                Item {
                    value: Value::Table(Table::with_flags(true, true, false)),
                    span,
                },
            )
        }
    };
    let existing = &table.entries[i].1;
    let ok = match &existing.value {
        // Inside an inline table, only tables made by its own dotted keys.
        Value::Table(t) if inline => t.dotted && !t.inline,
        Value::Table(t) => t.implicit && !t.inline,
        _ => false,
    };
    if !ok {
        return Err(cannot_extend(&key, existing, text));
    }
    match &mut table.entries[i].1.value {
        Value::Table(t) => {
            t.dotted = true;
            Ok(t)
        }
        _ => Err(SyntaxError {
            at: key.span.start,
            message: "internal error: not a table".into(),
        }),
    }
}

fn insert_value<'a>(table: &mut Table<'a>, key: Key<'a>, item: Item<'a>, text: &str) -> R<()> {
    if let Some(i) = table.find(&key.name) {
        return Err(cannot_extend(&key, &table.entries[i].1, text));
    }
    table.push(key, item);
    Ok(())
}

#[cfg(test)]
mod tests;
