//! The filter grammar of RFC 7644 §3.4.2.2, parsed into an AST, and its evaluation against
//! SCIM JSON.
//!
//! The parser is a recursive-descent parser over a token list. Only grouping (`(`, `not (`
//! and `[`) recurses, and [`MAX_FILTER_DEPTH`] bounds it. `and` and `or` chains are built
//! in a loop, so their length is bounded only by [`MAX_FILTER_LENGTH`].

use std::fmt;

use serde_json::Number;

use crate::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, ScimError, ScimType, USER_SCHEMA};

mod evaluate;
mod parser;

/// Maximum length of a filter or PATCH path in bytes. Identity providers send filters of a few
/// dozen bytes. The limit bounds parsing time, the length of `and`/`or` chains and so the
/// recursion depth when a filter is evaluated or dropped.
pub const MAX_FILTER_LENGTH: usize = 4096;

/// Maximum nesting of parentheses, `not (...)` and value filters `[...]`.
pub const MAX_FILTER_DEPTH: usize = 64;

/// Schemas whose attributes sit at the top level of a resource rather than in an extension
/// object.
const CORE_SCHEMAS: [&str; 2] = [USER_SCHEMA, GROUP_SCHEMA];

/// Schemas recognized as the prefix of an attribute path. Knowing them lets a path that is just
/// the schema URN name the extension object itself.
const KNOWN_SCHEMAS: [&str; 3] = [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA];

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath op value`.
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `attrPath pr`: the attribute has a non-empty value.
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attrPath[filter]`: some value of a multi-valued attribute matches `filter`, whose paths
    /// are relative to that value. The non-standard form `emails[type eq "work"].value eq "x"`,
    /// which Entra ID sends, is parsed as `emails[type eq "work" and value eq "x"]`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

/// A comparison operator (RFC 7644 §3.4.2.2, table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Parses an operator name in any case.
    pub fn parse(text: &str) -> Option<CompareOp> {
        const OPERATORS: [(&str, CompareOp); 9] = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ];
        OPERATORS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, op)| *op)
    }

    /// Returns the operator name in lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// The literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

/// An attribute path: `[schema ":"] attribute ["." subAttribute]`.
///
/// Names are kept as the client wrote them. Compare them with [`AttrPath::eq_ignore_case`],
/// [`AttrPath::matches_name`] or [`AttrPath::normalized`], because attribute names are
/// case-insensitive (RFC 7643 §2.1).
///
/// A path that is exactly a known schema URN, such as the enterprise extension's, has no
/// `schema` and the URN as its `attribute`, because that is the key of the extension object in
/// the resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub attribute: String,
    pub sub_attribute: Option<String>,
}

impl AttrPath {
    /// Creates a path to a top-level attribute without a schema prefix.
    pub fn new(attribute: impl Into<String>) -> AttrPath {
        AttrPath {
            schema: None,
            attribute: attribute.into(),
            sub_attribute: None,
        }
    }

    /// Parses a path such as `userName`, `name.givenName` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    /// Errors are 400 `invalidPath`.
    pub fn parse(text: &str) -> Result<AttrPath, ScimError> {
        parse_attr_path(text).map_err(|message| {
            ScimError::bad_request(
                ScimType::InvalidPath,
                format!("invalid attribute path: {message}"),
            )
        })
    }

    /// Compares two paths ignoring ASCII case in every part.
    pub fn eq_ignore_case(&self, other: &AttrPath) -> bool {
        let schemas_equal = match (&self.schema, &other.schema) {
            (None, None) => true,
            (Some(left), Some(right)) => left.eq_ignore_ascii_case(right),
            _ => false,
        };
        let sub_attributes_equal = match (&self.sub_attribute, &other.sub_attribute) {
            (None, None) => true,
            (Some(left), Some(right)) => left.eq_ignore_ascii_case(right),
            _ => false,
        };
        schemas_equal
            && sub_attributes_equal
            && self.attribute.eq_ignore_ascii_case(&other.attribute)
    }

    /// Checks the attribute and sub-attribute names ignoring case and ignoring the schema, as in
    /// `path.matches_name("emails", Some("value"))`.
    pub fn matches_name(&self, attribute: &str, sub_attribute: Option<&str>) -> bool {
        let sub_attributes_equal = match (&self.sub_attribute, sub_attribute) {
            (None, None) => true,
            (Some(left), Some(right)) => left.eq_ignore_ascii_case(right),
            _ => false,
        };
        sub_attributes_equal && self.attribute.eq_ignore_ascii_case(attribute)
    }

    /// Checks whether the path carries `schema` as its prefix, ignoring case.
    pub fn schema_is(&self, schema: &str) -> bool {
        self.schema
            .as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(schema))
    }

    /// Returns the path in lowercase, as written otherwise (`schema:attribute.sub`), for use as
    /// a lookup key.
    pub fn normalized(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// Checks whether the attribute lives at the top level of a resource: no schema prefix or
    /// the core User or Group schema.
    pub(crate) fn is_core(&self) -> bool {
        match &self.schema {
            None => true,
            Some(schema) => CORE_SCHEMAS
                .iter()
                .any(|core| core.eq_ignore_ascii_case(schema)),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(formatter, "{schema}:")?;
        }
        formatter.write_str(&self.attribute)?;
        if let Some(sub_attribute) = &self.sub_attribute {
            write!(formatter, ".{sub_attribute}")?;
        }
        Ok(())
    }
}

/// Parses an attribute path; the error is a message without the "invalid" prefix.
fn parse_attr_path(text: &str) -> Result<AttrPath, String> {
    if text.is_empty() {
        return Err("the path is empty".to_owned());
    }
    if KNOWN_SCHEMAS
        .iter()
        .any(|schema| schema.eq_ignore_ascii_case(text))
    {
        return Ok(AttrPath::new(text));
    }

    let (schema, rest) = split_schema(text)?;
    let (attribute, sub_attribute) = match rest.split_once('.') {
        Some((attribute, sub_attribute)) => (attribute, Some(sub_attribute)),
        None => (rest, None),
    };
    validate_attribute_name(attribute, text)?;
    if let Some(sub_attribute) = sub_attribute {
        validate_attribute_name(sub_attribute, text)?;
    }

    Ok(AttrPath {
        schema: schema.map(str::to_owned),
        attribute: attribute.to_owned(),
        sub_attribute: sub_attribute.map(str::to_owned),
    })
}

/// Splits a URN prefix off an attribute path. Schema URNs contain dots (`2.0`), so a known
/// schema is matched as a whole first. An unknown URN ends at its last colon.
fn split_schema(text: &str) -> Result<(Option<&str>, &str), String> {
    for schema in KNOWN_SCHEMAS {
        let prefix_matches = text
            .get(..schema.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(schema));
        if prefix_matches && text.as_bytes().get(schema.len()) == Some(&b':') {
            return Ok((Some(&text[..schema.len()]), &text[schema.len() + 1..]));
        }
    }
    match text.rsplit_once(':') {
        None => Ok((None, text)),
        Some((schema, rest)) if !schema.is_empty() && !rest.is_empty() => Ok((Some(schema), rest)),
        Some(_) => Err(format!(
            "'{}' has an empty schema or attribute name",
            shorten(text)
        )),
    }
}

/// Checks `ATTRNAME = ALPHA *(nameChar)` (RFC 7643 §2.1), also allowing a leading `$` for
/// `$ref`.
fn validate_attribute_name(name: &str, path: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_is_valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '$');
    let rest_is_valid = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if first_is_valid && rest_is_valid {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid attribute name in '{}'",
            shorten(name),
            shorten(path)
        ))
    }
}

/// Shortens client input quoted in an error detail.
pub(crate) fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    if text.chars().count() <= MAX_CHARS {
        return text.to_owned();
    }
    let mut shortened: String = text.chars().take(MAX_CHARS).collect();
    shortened.push('…');
    shortened
}

/// Parses a filter expression (RFC 7644 §3.4.2.2).
///
/// Operators, `and`/`or`/`not`, `pr`, `true`/`false`/`null` and attribute names are matched
/// in any case. Strings use JSON escapes. Precedence is `not` over `and` over `or`, and
/// parentheses group. Errors are 400 `invalidFilter` and give the 1-based character position.
pub fn parse_filter(input: &str) -> Result<Filter, ScimError> {
    let invalid = |message: String| {
        ScimError::bad_request(
            ScimType::InvalidFilter,
            format!("invalid filter: {message}"),
        )
    };
    if input.len() > MAX_FILTER_LENGTH {
        return Err(invalid(format!(
            "the filter is longer than {MAX_FILTER_LENGTH} bytes"
        )));
    }
    parser::parse_filter_expression(input).map_err(|error| invalid(error.to_string()))
}

/// Parses a PATCH path (RFC 7644 §3.5.2): `attrPath` or
/// `attrPath "[" valFilter "]" ["." subAttr]`. Errors are 400 `invalidPath`.
pub(crate) fn parse_patch_path(
    input: &str,
) -> Result<(AttrPath, Option<Filter>, Option<String>), ScimError> {
    let invalid = |message: String| {
        ScimError::bad_request(
            ScimType::InvalidPath,
            format!("invalid path '{}': {message}", shorten(input)),
        )
    };
    if input.len() > MAX_FILTER_LENGTH {
        return Err(invalid(format!(
            "the path is longer than {MAX_FILTER_LENGTH} bytes"
        )));
    }
    parser::parse_patch_path_expression(input).map_err(|error| invalid(error.to_string()))
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
