//! One line of JSON, parsed just enough to check it against the format.
//!
//! serde_json's own `Value` cannot tell an integer beyond `u64` from a float, and a derived
//! struct would report a type error in serde's words. [`Json`] keeps what the rules need (an
//! integer that fits in `i64`, one that does not, a number with a fraction or exponent) and
//! borrows strings from the line, so an object line costs two small allocations. [`Fields`]
//! then answers "the key `refs`, as an array" with a typed [`ReadError`] naming the line.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{excerpt, printable, ErrorKind, ReadError};

/// The entries of a JSON object, in the line's order.
pub(crate) type Entries<'a> = Vec<(Cow<'a, str>, Json<'a>)>;

/// A JSON value with borrowed strings and integers kept apart from floats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// An integer in the signed 64-bit range.
    Int(i64),
    /// An integer above `i64::MAX` that fits in `u64`.
    BigInt(u64),
    /// A number with a fraction or an exponent, or an integer beyond 64 bits.
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Entries<'a>),
}

impl Json<'_> {
    /// The JSON type, as an error message names it.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) | Json::BigInt(_) => "an integer",
            Json::Float(_) => "a number with a fraction or an exponent",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The same value as serde_json's `Value` (for the trailer's free-form `verify`).
    pub(crate) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::BigInt(u) => Value::from(*u),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// A string that borrows from the input when it has no escapes.
struct JsonStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Json::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Json::BigInt(v), Json::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Json::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Json::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Json::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Json::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((JsonStr(key), value)) =
                    map.next_entry::<JsonStr<'de>, Json<'de>>()?
                {
                    entries.push((key, value));
                }
                Ok(Json::Object(entries))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Lines with at most this many keys are checked for repeats pairwise (no allocation); longer
/// ones through a hash set, so that a line of many keys costs linear time, not quadratic.
const PAIRWISE_KEYS: usize = 32;

/// The first key of `entries` that repeats an earlier one, if any.
fn first_repeated_key<'e>(entries: &'e Entries<'_>) -> Option<&'e str> {
    if entries.len() <= PAIRWISE_KEYS {
        return entries
            .iter()
            .enumerate()
            .find(|&(i, (key, _))| entries[..i].iter().any(|(earlier, _)| earlier == key))
            .map(|(_, (key, _))| &**key);
    }
    let mut seen = HashSet::with_capacity(entries.len());
    entries
        .iter()
        .map(|(key, _)| &**key)
        .find(|&key| !seen.insert(key))
}

/// The first key that appears twice in one object anywhere in a line, named by its path
/// (`size`, `unmapped_types.list`, `a[2].k`; control characters escaped, long keys cut, as
/// error messages quote them). RFC 8259 leaves
/// repeated names to the reader; this one refuses them at every depth, since which value
/// would win is arbitrary. Only values that hold objects are visited: a line's `refs` costs a
/// scan of its items and nothing else. A path is written out only for the repeated key: each
/// visited value notes its step (key or index) and its parent's, so the walk costs memory in
/// proportion to the line, however long its keys and deep its nesting.
fn first_repeated_key_path(entries: &Entries<'_>) -> Option<String> {
    fn holds_objects(value: &Json<'_>) -> bool {
        match value {
            Json::Object(_) => true,
            Json::Array(items) => items
                .iter()
                .any(|v| matches!(v, Json::Object(_) | Json::Array(_))),
            _ => false,
        }
    }
    /// A step from a value to one it holds.
    enum Step<'e> {
        Key(&'e str),
        Index(usize),
    }
    /// The path of `steps[at]`: its steps from the line's object down.
    fn path(steps: &[(Option<usize>, Step<'_>)], at: usize) -> String {
        let mut chain = Vec::new();
        let mut next = Some(at);
        while let Some(i) = next {
            chain.push(&steps[i].1);
            next = steps[i].0;
        }
        let mut out = String::new();
        for (n, step) in chain.into_iter().rev().enumerate() {
            match step {
                Step::Key(key) => {
                    if n > 0 {
                        out.push('.');
                    }
                    out.push_str(&printable(&excerpt(key)));
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
    if let Some(key) = first_repeated_key(entries) {
        return Some(printable(&excerpt(key)));
    }
    // Each visited value's step and its parent's index in `steps`.
    let mut steps: Vec<(Option<usize>, Step<'_>)> = Vec::new();
    let mut stack: Vec<(usize, &Json<'_>)> = Vec::new();
    for (k, v) in entries.iter().rev().filter(|(_, v)| holds_objects(v)) {
        steps.push((None, Step::Key(k)));
        stack.push((steps.len() - 1, v));
    }
    while let Some((at, value)) = stack.pop() {
        match value {
            Json::Object(inner) => {
                if let Some(key) = first_repeated_key(inner) {
                    return Some(format!("{}.{}", path(&steps, at), printable(&excerpt(key))));
                }
                for (k, v) in inner.iter().rev().filter(|(_, v)| holds_objects(v)) {
                    steps.push((Some(at), Step::Key(k)));
                    stack.push((steps.len() - 1, v));
                }
            }
            Json::Array(items) => {
                for (i, v) in items.iter().enumerate().rev() {
                    if holds_objects(v) {
                        steps.push((Some(at), Step::Index(i)));
                        stack.push((steps.len() - 1, v));
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// 2^63: integers at or beyond it (in absolute value) are outside `i64`, give or take the
/// rounding of `-2^63 - 1` to a float, which is outside too.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// The keys of one line, with typed getters whose errors name the line.
pub(crate) struct Fields<'a> {
    line: u64,
    entries: Entries<'a>,
}

impl<'a> Fields<'a> {
    /// Parses a line (without its LF) that must be one JSON object with distinct keys, in it
    /// and in every object it holds.
    pub(crate) fn parse(text: &'a str, line: u64) -> Result<Self, ReadError> {
        let value: Json<'a> = serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            let message = match message.strip_suffix(&position) {
                Some(bare) => format!("{bare} at column {}", e.column()),
                None => message,
            };
            ReadError::new(line, ErrorKind::Json { message })
        })?;
        let Json::Object(entries) = value else {
            return Err(ReadError::new(
                line,
                ErrorKind::NotAnObject {
                    found: value.describe(),
                },
            ));
        };
        if let Some(key) = first_repeated_key_path(&entries) {
            return Err(ReadError::new(line, ErrorKind::DuplicateKey { key }));
        }
        Ok(Self { line, entries })
    }

    /// An error on this line.
    pub(crate) fn error(&self, kind: ErrorKind) -> ReadError {
        ReadError::new(self.line, kind)
    }

    /// The value of a key, if present.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.entries
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// The value of a required key.
    pub(crate) fn required(&self, key: &'static str) -> Result<&Json<'a>, ReadError> {
        self.get(key)
            .ok_or_else(|| self.error(ErrorKind::MissingKey { key }))
    }

    /// A required string.
    pub(crate) fn string(&self, key: &'static str) -> Result<&str, ReadError> {
        self.as_str(self.required(key)?, key)
    }

    /// An optional string.
    pub(crate) fn opt_string(&self, key: &'static str) -> Result<Option<&str>, ReadError> {
        self.get(key).map(|v| self.as_str(v, key)).transpose()
    }

    /// A required boolean.
    pub(crate) fn boolean(&self, key: &'static str) -> Result<bool, ReadError> {
        match self.required(key)? {
            Json::Bool(b) => Ok(*b),
            other => Err(self.wrong_type(key, "a boolean", other)),
        }
    }

    /// A required integer.
    pub(crate) fn int(&self, key: &'static str) -> Result<i64, ReadError> {
        self.as_int(self.required(key)?, key)
    }

    /// A required count (an integer, never negative).
    pub(crate) fn count(&self, key: &'static str) -> Result<u64, ReadError> {
        self.as_count(self.required(key)?, key)
    }

    /// An optional count.
    pub(crate) fn opt_count(&self, key: &'static str) -> Result<Option<u64>, ReadError> {
        self.get(key).map(|v| self.as_count(v, key)).transpose()
    }

    /// A required array.
    pub(crate) fn array(&self, key: &'static str) -> Result<&[Json<'a>], ReadError> {
        self.as_array(self.required(key)?, key)
    }

    /// An optional array.
    pub(crate) fn opt_array(&self, key: &'static str) -> Result<Option<&[Json<'a>]>, ReadError> {
        self.get(key).map(|v| self.as_array(v, key)).transpose()
    }

    /// An optional object.
    pub(crate) fn opt_object(&self, key: &'static str) -> Result<Option<&Entries<'a>>, ReadError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Object(entries)) => Ok(Some(entries)),
            Some(other) => Err(self.wrong_type(key, "an object", other)),
        }
    }

    /// `value` as a string.
    pub(crate) fn as_str<'v>(&self, value: &'v Json<'a>, key: &str) -> Result<&'v str, ReadError> {
        match value {
            Json::Str(s) => Ok(s),
            other => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// `value` as an array.
    pub(crate) fn as_array<'v>(
        &self,
        value: &'v Json<'a>,
        key: &str,
    ) -> Result<&'v [Json<'a>], ReadError> {
        match value {
            Json::Array(items) => Ok(items),
            other => Err(self.wrong_type(key, "an array", other)),
        }
    }

    /// `value` as a JSON integer in the signed 64-bit range.
    pub(crate) fn as_int(&self, value: &Json<'a>, key: &str) -> Result<i64, ReadError> {
        match value {
            Json::Int(i) => Ok(*i),
            Json::BigInt(_) => Err(self.error(ErrorKind::OutOfRange { key: key.into() })),
            // An integer written without fraction or exponent but beyond 64 bits reaches us as
            // a float; so does 1e30. Both are outside the range an integer may take. Below
            // 2^63 a float was written with a fraction or an exponent (9.2e18): a wrong type.
            Json::Float(f) if f.fract() == 0.0 && f.abs() >= TWO_POW_63 => {
                Err(self.error(ErrorKind::OutOfRange { key: key.into() }))
            }
            other => Err(self.wrong_type(key, "an integer", other)),
        }
    }

    /// `value` as a count: an integer that is not negative.
    pub(crate) fn as_count(&self, value: &Json<'a>, key: &str) -> Result<u64, ReadError> {
        let int = self.as_int(value, key)?;
        u64::try_from(int).map_err(|_| {
            self.error(ErrorKind::Negative {
                key: key.into(),
                value: int,
            })
        })
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &Json<'_>) -> ReadError {
        self.error(ErrorKind::WrongType {
            key: key.into(),
            expected,
            found: found.describe(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_nature() {
        let f = Fields::parse(
            r#"{"a":1,"b":-1,"c":9223372036854775808,"d":1.5,"e":1e3,"f":1e30}"#,
            7,
        )
        .unwrap();
        assert_eq!(f.get("a"), Some(&Json::Int(1)));
        assert_eq!(f.get("b"), Some(&Json::Int(-1)));
        assert_eq!(f.get("c"), Some(&Json::BigInt(1 << 63)));
        assert!(matches!(f.get("d"), Some(Json::Float(_))));
        assert!(matches!(
            f.int("e").unwrap_err().kind,
            ErrorKind::WrongType { .. }
        ));
        assert!(matches!(
            f.int("f").unwrap_err().kind,
            ErrorKind::OutOfRange { .. }
        ));
        assert!(matches!(
            f.int("c").unwrap_err().kind,
            ErrorKind::OutOfRange { .. }
        ));
        assert_eq!(f.count("b").unwrap_err().line, 7);
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let f = Fields::parse(r#"{"plain":"abc","escaped":"a\"b"}"#, 1).unwrap();
        assert!(matches!(
            f.get("plain"),
            Some(Json::Str(Cow::Borrowed("abc")))
        ));
        assert!(matches!(f.get("escaped"), Some(Json::Str(Cow::Owned(s))) if s == "a\"b"));
    }

    #[test]
    fn json_errors_name_the_column_not_a_line() {
        let e = Fields::parse(r#"{"a" 1}"#, 3).err().unwrap();
        assert_eq!(
            e.to_string(),
            "line 3: invalid JSON: expected `:` at column 6"
        );
    }
}
