//! Paging of query results (RFC 7644 §3.4.2.4) and the ListResponse body (RFC 7644 §3.4.2).

use serde_json::{Value, json};

use crate::{LIST_RESPONSE_SCHEMA, ScimError};

/// Validated paging parameters of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based index of the first result to return.
    pub start_index: usize,
    /// Maximum number of results to return; 0 requests only `totalResults`.
    pub count: usize,
}

impl ListQuery {
    /// Parses the `startIndex` and `count` query parameters.
    ///
    /// RFC 7644 §3.4.2.4 makes out-of-range values valid: a `startIndex` below 1 means 1 and a
    /// negative `count` means 0. A `count` above `max_count` is capped, as the RFC lets the
    /// service provider return fewer results than requested. A missing `count` becomes
    /// `default_count`, also capped. Values that are not integers are rejected with 400
    /// `invalidValue`.
    pub fn from_params(
        start_index: Option<&str>,
        count: Option<&str>,
        max_count: usize,
        default_count: usize,
    ) -> Result<ListQuery, ScimError> {
        let start_index = match start_index {
            None => 1,
            Some(text) => match parse_integer("startIndex", text)? {
                Integer::Negative => 1,
                Integer::NonNegative(value) => value.max(1),
            },
        };
        let count = match count {
            None => default_count,
            Some(text) => match parse_integer("count", text)? {
                Integer::Negative => 0,
                Integer::NonNegative(value) => value,
            },
        };
        Ok(ListQuery {
            start_index,
            count: count.min(max_count),
        })
    }

    /// Returns the 0-based offset of the first result, for slicing or SQL `OFFSET`.
    pub fn offset(&self) -> usize {
        self.start_index.saturating_sub(1)
    }
}

enum Integer {
    Negative,
    NonNegative(usize),
}

/// Parses an optionally signed decimal integer. Values too large for `usize` saturate, because
/// the callers cap them anyway and a huge number is not a client error.
fn parse_integer(name: &str, text: &str) -> Result<Integer, ScimError> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ScimError::invalid_value(format!(
            "query parameter '{name}' must be an integer, got '{}'",
            truncate_for_message(text)
        )));
    }

    let all_zero = digits.bytes().all(|byte| byte == b'0');
    if negative && !all_zero {
        return Ok(Integer::Negative);
    }
    Ok(Integer::NonNegative(
        digits.parse::<usize>().unwrap_or(usize::MAX),
    ))
}

/// Shortens client input quoted in an error detail so that a huge parameter does not produce
/// a huge response.
fn truncate_for_message(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    if text.chars().count() <= MAX_CHARS {
        return text.to_owned();
    }
    let mut shortened: String = text.chars().take(MAX_CHARS).collect();
    shortened.push('…');
    shortened
}

/// Builds a ListResponse body. `start_index` is echoed back as given, and `itemsPerPage` is the
/// number of resources on this page.
pub fn list_response(resources: Vec<Value>, total_results: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;

    fn query(start_index: Option<&str>, count: Option<&str>) -> Result<ListQuery, ScimError> {
        ListQuery::from_params(start_index, count, 200, 100)
    }

    #[test]
    fn from_params_defaults_when_absent() {
        assert_eq!(
            query(None, None),
            Ok(ListQuery {
                start_index: 1,
                count: 100
            })
        );
    }

    #[test]
    fn from_params_accepts_valid_values() {
        assert_eq!(
            query(Some("6"), Some("5")),
            Ok(ListQuery {
                start_index: 6,
                count: 5
            })
        );
    }

    #[test]
    fn from_params_clamps_start_index_below_one() {
        assert_eq!(query(Some("0"), None).map(|q| q.start_index), Ok(1));
        assert_eq!(query(Some("-7"), None).map(|q| q.start_index), Ok(1));
    }

    #[test]
    fn from_params_clamps_negative_count_to_zero() {
        assert_eq!(query(None, Some("-1")).map(|q| q.count), Ok(0));
        assert_eq!(query(None, Some("-0")).map(|q| q.count), Ok(0));
    }

    #[test]
    fn from_params_caps_huge_count() {
        assert_eq!(query(None, Some("1000")).map(|q| q.count), Ok(200));
        assert_eq!(
            query(None, Some("99999999999999999999999999")).map(|q| q.count),
            Ok(200)
        );
    }

    #[test]
    fn from_params_caps_default_count() {
        let result = ListQuery::from_params(None, None, 50, 100);

        assert_eq!(result.map(|q| q.count), Ok(50));
    }

    #[test]
    fn from_params_saturates_huge_start_index() {
        let result = query(Some("99999999999999999999999999"), None);

        assert_eq!(result.map(|q| q.start_index), Ok(usize::MAX));
    }

    #[test]
    fn from_params_rejects_non_numeric() {
        for text in ["abc", "", "1.5", "1e3", "--1", " "] {
            let error = query(None, Some(text)).err();
            assert_eq!(
                error.as_ref().map(|e| e.status),
                Some(400),
                "count {text:?}"
            );
            assert_eq!(
                error.and_then(|e| e.scim_type),
                Some(ScimType::InvalidValue),
                "count {text:?}"
            );
        }
        let error = query(Some("x"), None).err();
        assert_eq!(error.map(|e| e.detail.contains("startIndex")), Some(true));
    }

    #[test]
    fn offset_is_zero_based() {
        assert_eq!(
            ListQuery {
                start_index: 6,
                count: 5
            }
            .offset(),
            5
        );
        assert_eq!(
            ListQuery {
                start_index: 1,
                count: 5
            }
            .offset(),
            0
        );
    }

    #[test]
    fn list_response_counts_items_on_page() {
        let body = list_response(vec![json!({"id": "a"}), json!({"id": "b"})], 12, 6);

        assert_eq!(body["schemas"], json!([LIST_RESPONSE_SCHEMA]));
        assert_eq!(body["totalResults"], json!(12));
        assert_eq!(body["startIndex"], json!(6));
        assert_eq!(body["itemsPerPage"], json!(2));
        assert_eq!(body["Resources"][1]["id"], json!("b"));
    }

    #[test]
    fn list_response_empty_has_empty_resources() {
        let body = list_response(Vec::new(), 0, 1);

        assert_eq!(body["totalResults"], json!(0));
        assert_eq!(body["Resources"], json!([]));
    }
}
