//! SCIM filters (RFC 7644 §3.4.2.2) translated to parameterised SQL, and `sortBy`.
//!
//! Every value from the filter becomes a bind parameter; only column expressions from the
//! attribute tables below are written into the SQL text. String comparisons follow each
//! attribute's `caseExact`: `userName`, names and emails compare case-insensitively (RFC 7643
//! §4.1), `id` and `externalId` exactly.

use scim::{AttrPath, CompValue, CompareOp, Filter, ScimError, ScimType};

/// Which resource a filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

/// A filter as SQL: a boolean expression over the resource table aliased `r`, and its binds,
/// numbered from `first_bind`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    pub clause: String,
    pub binds: Vec<String>,
}

/// How a scalar attribute reads in SQL, and how its values compare.
#[derive(Debug, Clone, Copy)]
enum ValueKind {
    Text {
        case_exact: bool,
    },
    /// Text stored lower-cased: compared case-insensitively by lower-casing only the value, so
    /// an index on the column applies (see the `user_name_lower` migration).
    LowerText,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone)]
enum Target {
    /// A single-valued attribute: an SQL expression of type text, boolean or timestamptz.
    Scalar { sql: String, kind: ValueKind },
    /// A multi-valued complex attribute stored as a JSON array in the resource.
    JsonArray { sql: String },
    /// Group membership, stored in `group_members`.
    Members,
    /// A sub-attribute of each element of a JSON array: compared as "some element matches".
    Element {
        array: String,
        alias: String,
        expression: String,
        kind: ValueKind,
    },
}

/// Turns a condition on one value into a condition on the resource.
type Wrapper<'a> = Box<dyn Fn(String) -> String + 'a>;

impl Target {
    /// Returns the expression to compare and the wrapper for conditions on it.
    fn parts(&self) -> Option<(String, ValueKind, Wrapper<'_>)> {
        match self {
            Target::Scalar { sql, kind } => {
                Some((sql.clone(), *kind, Box::new(|condition| condition)))
            }
            Target::Element {
                array,
                alias,
                expression,
                kind,
            } => Some((
                expression.clone(),
                *kind,
                Box::new(move |condition| {
                    format!(
                        "EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce({array}, '[]'::jsonb)) AS {alias} WHERE {condition})"
                    )
                }),
            )),
            Target::Members => Some((
                "pm.user_id::text".to_owned(),
                ValueKind::Text { case_exact: true },
                Box::new(|condition| {
                    format!(
                        "EXISTS (SELECT 1 FROM group_members pm WHERE pm.tenant_id = r.tenant_id AND pm.group_id = r.group_id AND {condition})"
                    )
                }),
            )),
            Target::JsonArray { .. } => None,
        }
    }
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user";

fn text(sql: &str, case_exact: bool) -> Target {
    Target::Scalar {
        sql: sql.to_owned(),
        kind: ValueKind::Text { case_exact },
    }
}

fn json_text(key: &str) -> Target {
    text(&format!("(r.resource ->> '{key}')"), false)
}

/// Resolves an attribute path of the resource root. `None` means the attribute is unknown.
fn resolve(kind: ResourceKind, path: &AttrPath) -> Option<Target> {
    let schema = path.schema.as_deref().map(str::to_ascii_lowercase);
    let attribute = path.attribute.to_ascii_lowercase();
    let sub = path.sub_attribute.as_deref().map(str::to_ascii_lowercase);

    if schema.as_deref() == Some(ENTERPRISE) {
        if kind != ResourceKind::User {
            return None;
        }
        let container = format!("(r.resource -> '{}')", scim::ENTERPRISE_USER_SCHEMA);
        let key = match attribute.as_str() {
            "employeenumber" => "employeeNumber",
            "costcenter" => "costCenter",
            "organization" => "organization",
            "division" => "division",
            "department" => "department",
            "manager" => {
                return match sub.as_deref() {
                    None | Some("value") => Some(text(
                        &format!("({container} -> 'manager' ->> 'value')"),
                        true,
                    )),
                    Some("displayname") => Some(text(
                        &format!("({container} -> 'manager' ->> 'displayName')"),
                        false,
                    )),
                    _ => None,
                };
            }
            _ => return None,
        };
        return sub
            .is_none()
            .then(|| text(&format!("({container} ->> '{key}')"), false));
    }

    let common = match (attribute.as_str(), sub.as_deref()) {
        ("id", None) => Some(match kind {
            ResourceKind::User => text("r.user_id::text", true),
            ResourceKind::Group => text("r.group_id::text", true),
        }),
        ("externalid", None) => Some(text("r.external_id", true)),
        ("meta", Some("created")) => Some(Target::Scalar {
            sql: "r.created_at".into(),
            kind: ValueKind::Timestamp,
        }),
        ("meta", Some("lastmodified")) => Some(Target::Scalar {
            sql: "r.updated_at".into(),
            kind: ValueKind::Timestamp,
        }),
        ("meta", Some("resourcetype")) => Some(text(
            match kind {
                ResourceKind::User => "'User'",
                ResourceKind::Group => "'Group'",
            },
            true,
        )),
        _ => None,
    };
    if common.is_some() {
        return common;
    }

    match kind {
        ResourceKind::User => match (attribute.as_str(), sub.as_deref()) {
            ("username", None) => Some(Target::Scalar {
                sql: "r.user_name_lower".into(),
                kind: ValueKind::LowerText,
            }),
            ("active", None) => Some(Target::Scalar {
                sql: "r.active".into(),
                kind: ValueKind::Boolean,
            }),
            ("displayname", None) => Some(json_text("displayName")),
            ("title", None) => Some(json_text("title")),
            ("nickname", None) => Some(json_text("nickName")),
            ("profileurl", None) => Some(json_text("profileUrl")),
            ("usertype", None) => Some(json_text("userType")),
            ("preferredlanguage", None) => Some(json_text("preferredLanguage")),
            ("locale", None) => Some(json_text("locale")),
            ("timezone", None) => Some(json_text("timezone")),
            ("name", Some(sub)) => {
                let key = match sub {
                    "formatted" => "formatted",
                    "familyname" => "familyName",
                    "givenname" => "givenName",
                    "middlename" => "middleName",
                    "honorificprefix" => "honorificPrefix",
                    "honorificsuffix" => "honorificSuffix",
                    _ => return None,
                };
                Some(text(&format!("(r.resource -> 'name' ->> '{key}')"), false))
            }
            ("emails" | "phonenumbers" | "roles", _) => {
                let key = match attribute.as_str() {
                    "emails" => "emails",
                    "phonenumbers" => "phoneNumbers",
                    _ => "roles",
                };
                Some(Target::JsonArray {
                    sql: format!("(r.resource -> '{key}')"),
                })
            }
            _ => None,
        },
        ResourceKind::Group => match (attribute.as_str(), sub.as_deref()) {
            ("displayname", None) => Some(text("r.display_name", false)),
            ("members", None | Some("value")) => Some(Target::Members),
            _ => None,
        },
    }
}

/// The sub-attributes of `emails`, `phoneNumbers` and `roles` elements.
fn element_target(element: &str, sub: &str) -> Option<Target> {
    let (key, kind) = match sub {
        "value" => ("value", ValueKind::Text { case_exact: false }),
        "type" => ("type", ValueKind::Text { case_exact: false }),
        "display" => ("display", ValueKind::Text { case_exact: false }),
        "primary" => ("primary", ValueKind::Boolean),
        _ => return None,
    };
    let sql = match kind {
        ValueKind::Boolean => format!("coalesce(({element} ->> '{key}')::boolean, false)"),
        _ => format!("({element} ->> '{key}')"),
    };
    Some(Target::Scalar { sql, kind })
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidFilter, detail)
}

struct Translator {
    kind: ResourceKind,
    binds: Vec<String>,
    first_bind: usize,
    /// Nesting of EXISTS subqueries, for unique aliases.
    depth: usize,
}

impl Translator {
    fn bind(&mut self, value: String) -> String {
        self.binds.push(value);
        format!("${}", self.first_bind + self.binds.len() - 1)
    }

    fn translate(&mut self, filter: &Filter, element: Option<&str>) -> Result<String, ScimError> {
        match filter {
            Filter::And(left, right) => Ok(format!(
                "({} AND {})",
                self.translate(left, element)?,
                self.translate(right, element)?
            )),
            Filter::Or(left, right) => Ok(format!(
                "({} OR {})",
                self.translate(left, element)?,
                self.translate(right, element)?
            )),
            Filter::Not(inner) => Ok(format!(
                "(NOT coalesce({}, false))",
                self.translate(inner, element)?
            )),
            Filter::Present(path) => {
                let target = self.target(path, element)?;
                self.present(&target)
            }
            Filter::Compare { path, op, value } => {
                let target = self.target(path, element)?;
                self.compare(&target, *op, value, path)
            }
            Filter::ValuePath { path, filter } => {
                if element.is_some() {
                    return Err(invalid("value filters cannot be nested"));
                }
                match resolve(
                    self.kind,
                    &AttrPath {
                        sub_attribute: None,
                        ..path.clone()
                    },
                ) {
                    Some(Target::JsonArray { sql }) => {
                        self.depth += 1;
                        let alias = format!("e{}", self.depth);
                        let inner = self.translate(filter, Some(&alias))?;
                        Ok(format!(
                            "EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce({sql}, '[]'::jsonb)) AS {alias} WHERE {inner})"
                        ))
                    }
                    Some(Target::Members) => {
                        self.depth += 1;
                        let alias = format!("m{}", self.depth);
                        let inner = self.translate_member(filter, &alias)?;
                        Ok(format!(
                            "EXISTS (SELECT 1 FROM group_members {alias} WHERE {alias}.tenant_id = r.tenant_id AND {alias}.group_id = r.group_id AND {inner})"
                        ))
                    }
                    _ => Err(invalid(format!(
                        "attribute {} is not multi-valued, so it cannot take a value filter",
                        path.normalized()
                    ))),
                }
            }
        }
    }

    /// Translates a filter inside `members[...]`, where only `value` is known.
    fn translate_member(&mut self, filter: &Filter, alias: &str) -> Result<String, ScimError> {
        match filter {
            Filter::And(left, right) => Ok(format!(
                "({} AND {})",
                self.translate_member(left, alias)?,
                self.translate_member(right, alias)?
            )),
            Filter::Or(left, right) => Ok(format!(
                "({} OR {})",
                self.translate_member(left, alias)?,
                self.translate_member(right, alias)?
            )),
            Filter::Not(inner) => Ok(format!("(NOT {})", self.translate_member(inner, alias)?)),
            Filter::Compare { path, op, value } if path.attribute.eq_ignore_ascii_case("value") => {
                let target = text(&format!("{alias}.user_id::text"), true);
                self.compare(&target, *op, value, path)
            }
            _ => Err(invalid("inside members[...] only value can be compared")),
        }
    }

    fn target(&mut self, path: &AttrPath, element: Option<&str>) -> Result<Target, ScimError> {
        let unknown = || {
            invalid(format!(
                "unknown or unsupported attribute {} in filter",
                path.normalized()
            ))
        };
        if let Some(element) = element {
            // Inside a value filter, names are relative to one element.
            let name = path
                .sub_attribute
                .as_deref()
                .unwrap_or(&path.attribute)
                .to_ascii_lowercase();
            return element_target(element, &name).ok_or_else(unknown);
        }
        match resolve(self.kind, path).ok_or_else(unknown)? {
            Target::JsonArray { sql } => {
                // `emails co "x"` means `emails.value co "x"` (RFC 7644 §3.4.2.2).
                self.depth += 1;
                let alias = format!("e{}", self.depth);
                let sub = path
                    .sub_attribute
                    .as_deref()
                    .unwrap_or("value")
                    .to_ascii_lowercase();
                match element_target(&alias, &sub) {
                    Some(Target::Scalar {
                        sql: expression,
                        kind,
                    }) => Ok(Target::Element {
                        array: sql,
                        alias,
                        expression,
                        kind,
                    }),
                    _ => Err(unknown()),
                }
            }
            other => Ok(other),
        }
    }

    fn present(&mut self, target: &Target) -> Result<String, ScimError> {
        if let Target::JsonArray { sql } = target {
            return Ok(format!(
                "(jsonb_array_length(coalesce({sql}, '[]'::jsonb)) > 0)"
            ));
        }
        let Some((expression, kind, wrap)) = target.parts() else {
            return Err(invalid("unsupported presence test"));
        };
        Ok(wrap(match kind {
            ValueKind::Text { .. } | ValueKind::LowerText => {
                format!("({expression} IS NOT NULL AND {expression} <> '')")
            }
            _ => format!("({expression} IS NOT NULL)"),
        }))
    }

    fn compare(
        &mut self,
        target: &Target,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, ScimError> {
        let Some((sql, kind, wrap)) = target.parts() else {
            return Err(invalid(
                "compare a sub-attribute of a multi-valued attribute",
            ));
        };
        let name = path.normalized();
        let condition = match (kind, value) {
            (_, CompValue::Null) => match op {
                CompareOp::Eq => wrap(format!("({sql} IS NULL)")),
                CompareOp::Ne => wrap(format!("({sql} IS NOT NULL)")),
                _ => {
                    return Err(invalid(format!(
                        "null can only be compared with eq or ne ({name})"
                    )));
                }
            },
            (ValueKind::Boolean, CompValue::Bool(flag)) => {
                let bind = self.bind(flag.to_string());
                match op {
                    CompareOp::Eq => wrap(format!("({sql} = {bind}::boolean)")),
                    CompareOp::Ne => wrap(format!("({sql} IS DISTINCT FROM {bind}::boolean)")),
                    _ => return Err(invalid(format!("{name} is boolean: use eq or ne"))),
                }
            }
            (ValueKind::Boolean, _) => {
                return Err(invalid(format!(
                    "{name} is boolean: compare it with true or false"
                )));
            }
            (ValueKind::Timestamp, CompValue::String(raw)) => {
                let parsed = chrono::DateTime::parse_from_rfc3339(raw).map_err(|_| {
                    invalid(format!("{name} needs an RFC 3339 date-time, got {raw:?}"))
                })?;
                let bind = self.bind(parsed.to_rfc3339());
                let operator = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Ne => "<>",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    _ => {
                        return Err(invalid(format!(
                            "{name} is a date-time: co, sw and ew do not apply"
                        )));
                    }
                };
                wrap(format!("({sql} {operator} {bind}::timestamptz)"))
            }
            (ValueKind::Timestamp, _) => {
                return Err(invalid(format!(
                    "{name} is a date-time: compare it with a string"
                )));
            }
            (kind @ (ValueKind::Text { .. } | ValueKind::LowerText), CompValue::String(raw)) => {
                let bind = self.bind(raw.clone());
                let (left, right) = match kind {
                    ValueKind::Text { case_exact: true } => (sql.clone(), bind),
                    ValueKind::LowerText => (sql.clone(), format!("lower({bind})")),
                    _ => (format!("lower({sql})"), format!("lower({bind})")),
                };
                wrap(match op {
                    CompareOp::Eq => format!("({left} = {right})"),
                    // An absent attribute is "not equal" to any value.
                    CompareOp::Ne => format!("({sql} IS NULL OR {left} <> {right})"),
                    CompareOp::Co => format!("(strpos({left}, {right}) > 0)"),
                    CompareOp::Sw => format!("starts_with({left}, {right})"),
                    CompareOp::Ew => format!("(right({left}, length({right})) = {right})"),
                    CompareOp::Gt => format!("({left} > {right})"),
                    CompareOp::Ge => format!("({left} >= {right})"),
                    CompareOp::Lt => format!("({left} < {right})"),
                    CompareOp::Le => format!("({left} <= {right})"),
                })
            }
            (ValueKind::Text { .. } | ValueKind::LowerText, _) => {
                return Err(invalid(format!(
                    "{name} is a string: compare it with a quoted string"
                )));
            }
        };
        Ok(condition)
    }
}

/// Translates a parsed filter. Bind numbering starts at `first_bind`, so the caller can put its
/// own parameters (the tenant) first.
pub fn filter_to_sql(
    kind: ResourceKind,
    filter: &Filter,
    first_bind: usize,
) -> Result<SqlFilter, ScimError> {
    let mut translator = Translator {
        kind,
        binds: Vec::new(),
        first_bind,
        depth: 0,
    };
    let clause = translator.translate(filter, None)?;
    Ok(SqlFilter {
        clause,
        binds: translator.binds,
    })
}

/// The `ORDER BY` expression for `sortBy`, which must name a single-valued attribute.
pub fn sort_expression(kind: ResourceKind, sort_by: &str) -> Result<String, ScimError> {
    let path = AttrPath::parse(sort_by).map_err(|_| {
        ScimError::bad_request(
            ScimType::InvalidValue,
            format!("sortBy {sort_by:?} is not an attribute path"),
        )
    })?;
    match resolve(kind, &path) {
        Some(Target::Scalar {
            sql,
            kind: ValueKind::Text { case_exact: false },
        }) => Ok(format!("lower({sql})")),
        Some(Target::Scalar { sql, .. }) => Ok(sql),
        _ => Err(ScimError::bad_request(
            ScimType::InvalidValue,
            format!("sortBy {sort_by:?} must name a known single-valued attribute"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(filter: &str) -> SqlFilter {
        filter_to_sql(ResourceKind::User, &scim::parse_filter(filter).unwrap(), 2).unwrap()
    }

    #[test]
    fn user_name_eq_uses_indexed_expression() {
        let translated = sql("userName eq \"Bjensen\"");
        assert_eq!(translated.clause, "(r.user_name_lower = lower($2))");
        assert_eq!(translated.binds, vec!["Bjensen".to_owned()]);
    }

    #[test]
    fn values_never_enter_sql_text() {
        let translated =
            sql("name.familyName co \"O'Malley\" or title sw \"x'); DROP TABLE users; --\"");
        assert!(!translated.clause.contains("Malley"));
        assert!(!translated.clause.contains("DROP"));
        assert_eq!(translated.binds.len(), 2);
    }

    #[test]
    fn value_filter_becomes_exists() {
        let translated = sql("emails[type eq \"work\" and value co \"@example.com\"]");
        assert!(
            translated
                .clause
                .starts_with("EXISTS (SELECT 1 FROM jsonb_array_elements")
        );
        assert_eq!(
            translated.binds,
            vec!["work".to_owned(), "@example.com".to_owned()]
        );
    }

    #[test]
    fn unknown_attribute_is_invalid_filter() {
        let error = filter_to_sql(
            ResourceKind::User,
            &scim::parse_filter("shoeSize gt 9").unwrap(),
            1,
        )
        .unwrap_err();
        assert_eq!(error.status, 400);
        assert_eq!(error.scim_type, Some(ScimType::InvalidFilter));
    }

    #[test]
    fn boolean_needs_boolean_value() {
        assert!(
            filter_to_sql(
                ResourceKind::User,
                &scim::parse_filter("active eq \"yes\"").unwrap(),
                1
            )
            .is_err()
        );
        assert_eq!(sql("active eq true").binds, vec!["true".to_owned()]);
    }

    #[test]
    fn enterprise_attribute_by_urn() {
        let translated = sql(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Sales\"",
        );
        assert!(
            translated.clause.contains("department"),
            "{}",
            translated.clause
        );
    }

    #[test]
    fn date_needs_rfc3339() {
        assert!(
            filter_to_sql(
                ResourceKind::User,
                &scim::parse_filter("meta.lastModified gt \"yesterday\"").unwrap(),
                1
            )
            .is_err()
        );
        assert!(
            sql("meta.lastModified gt \"2011-05-13T04:42:34Z\"")
                .clause
                .contains("timestamptz")
        );
    }
}
